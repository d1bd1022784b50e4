using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Two servers of tests/apps/h2_app.py with one Python thread each (so a request that is answered proves the thread
/// is free): cleartext (HTTP/1.1 and prior-knowledge h2c on one port) and TLS (h2 by ALPN).
/// </summary>
public sealed class Http2Servers : IDisposable
{
    public TestCertificates Certificates { get; } = new();
    public ServerProcess Cleartext { get; }
    public ServerProcess Tls { get; }

    public Http2Servers()
    {
        Cleartext = Http2Tests.StartApp("--threads", "1");
        Tls = Http2Tests.StartApp("--threads", "1", "--bind", "https://127.0.0.1:0",
            "--certfile", Certificates.ServerCert, "--keyfile", Certificates.ServerKey);
    }

    public ServerProcess For(bool tls) => tls ? Tls : Cleartext;

    public void Dispose()
    {
        Cleartext.Dispose();
        Tls.Dispose();
        Certificates.Dispose();
    }
}

/// <summary>
/// PEP 3333 over HTTP/2 against the real server: curl (--http2, --http2-prior-knowledge), raw frames from
/// tests/clients/h2_raw.py (Python h2) and h2load. Each raw scenario prints one JSON object.
/// </summary>
public sealed class Http2Tests : IClassFixture<Http2Servers>
{
    private static readonly string Client = Path.Combine(ServerProcess.RepoRoot, "tests", "clients", "h2_raw.py");
    private static readonly string App = Path.Combine(ServerProcess.AppsDir, "h2_app.py");
    private readonly Http2Servers _servers;
    private readonly ITestOutputHelper _out;

    public Http2Tests(Http2Servers servers, ITestOutputHelper output)
    {
        _servers = servers;
        _out = output;
    }

    internal static ServerProcess StartApp(params string[] args) => ServerProcess.Start(args.Append(App));

    private JsonElement Raw(ServerProcess server, string scenario, params string[] args)
    {
        var all = new List<string> { Client, scenario, "--port", server.Port.ToString() };
        if (server.BaseUri.Scheme == "https") all.AddRange(new[] { "--ca", _servers.Certificates.CaCert });
        all.AddRange(args);
        var run = Proc.Run(Interpreters.SystemPython, all, TimeSpan.FromSeconds(60));
        _out.WriteLine($"h2_raw {scenario} {string.Join(' ', args)} -> {run.Stdout.Trim()} {run.Stderr.Trim()}");
        Assert.True(run.ExitCode == 0, $"h2_raw {scenario} failed: {run.Stderr}\n{server.Output}");
        return JsonDocument.Parse(run.Stdout).RootElement;
    }

    private Proc.Result Curl(ServerProcess server, params string[] args)
    {
        var all = new List<string> { "-sS", "--max-time", "20" };
        if (server.BaseUri.Scheme == "https") all.AddRange(new[] { "--cacert", _servers.Certificates.CaCert });
        all.AddRange(args);
        var run = Proc.Run("curl", all, TimeSpan.FromSeconds(30));
        _out.WriteLine($"curl {string.Join(' ', args)} -> {run.ExitCode} {run.Stdout} {run.Stderr}");
        return run;
    }

    private static string Url(ServerProcess server, string path) =>
        $"{server.BaseUri.Scheme}://{(server.BaseUri.Scheme == "https" ? "localhost" : "127.0.0.1")}:" +
        $"{server.Port}{path}";

    // ---- the environ ------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Environ_RawH2_ProtocolHostFromAuthorityCookiesJoinedNoPseudoOrHopHeaders(bool tls)
    {
        var server = _servers.For(tls);
        var r = Raw(server, "environ", "--authority", "example.test:1234");
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        var env = r.GetProperty("json");
        Assert.Equal("HTTP/2", env.Str("SERVER_PROTOCOL"));
        Assert.Equal("example.test:1234", env.Str("HTTP_HOST"));
        Assert.Equal("example.test", env.Str("SERVER_NAME"));
        Assert.Equal("1234", env.Str("SERVER_PORT"));
        Assert.Equal("a=1; b=2", env.Str("HTTP_COOKIE")); // two cookie fields, as h2 clients split them
        Assert.Equal(tls ? "https" : "http", env.Str("wsgi.url_scheme"));
        Assert.Equal("/environ", env.Str("PATH_INFO"));
        foreach (var key in env.EnumerateObject().Select(p => p.Name))
        {
            Assert.DoesNotContain(":", key); // no pseudo-header becomes a key
            Assert.DoesNotContain(key, new[] { "HTTP_CONNECTION", "HTTP_TRANSFER_ENCODING", "HTTP_KEEP_ALIVE",
                "HTTP_UPGRADE", "HTTP_PROXY_CONNECTION", "HTTP_HTTP2_SETTINGS" });
        }

        // A host header that disagrees with :authority: :authority wins (Kestrel replaces Host with it).
        var both = Raw(server, "environ", "--authority", "a.test", "--host", "b.test").GetProperty("json");
        Assert.Equal("a.test", both.Str("HTTP_HOST"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Environ_Curl_Http2AndOnCleartextAlsoHttp11(bool tls)
    {
        var server = _servers.For(tls);
        var flag = tls ? "--http2" : "--http2-prior-knowledge";
        var h2 = Curl(server, flag, "-H", "Cookie: a=1", "-H", "Cookie: b=2", Url(server, "/environ"));
        Assert.Equal(0, h2.ExitCode);
        var env = JsonDocument.Parse(h2.Stdout).RootElement;
        Assert.Equal("HTTP/2", env.Str("SERVER_PROTOCOL"));
        Assert.Equal(new Uri(Url(server, "/")).Authority, env.Str("HTTP_HOST"));
        Assert.Equal("a=1; b=2", env.Str("HTTP_COOKIE"));
        // The same port still speaks HTTP/1.1 to a client that does not ask for HTTP/2.
        var h1 = Curl(server, "--http1.1", Url(server, "/environ"));
        Assert.Equal("HTTP/1.1", JsonDocument.Parse(h1.Stdout).RootElement.Str("SERVER_PROTOCOL"));
    }

    // ---- responses ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HopByHopResponseHeaders_OverH2_RefusedOrDroppedConnectionSurvives(bool tls)
    {
        var server = _servers.For(tls);
        var r = Raw(server, "paths", "--paths", "/hop?name=Connection&value=close",
            "/hop?name=Connection&value=keep-alive", "/hop?name=Keep-Alive&value=timeout=5",
            "/hop?name=Transfer-Encoding&value=chunked", "/hop?name=Upgrade&value=h2c",
            "/hop?name=Proxy-Connection&value=close", "/environ").GetProperty("results").EnumerateArray().ToList();
        // Connection: close is the one the gateway honours; on HTTP/2 it is simply not sent.
        Assert.Equal(200, r[0].GetProperty("status").GetInt32());
        Assert.False(r[0].GetProperty("headers").TryGetProperty("connection", out _));
        // The others are the app's error (PEP 3333): a 500 on this stream only.
        foreach (var refused in r.Skip(1).Take(5))
        {
            Assert.Equal(500, refused.GetProperty("status").GetInt32());
            Assert.Equal(JsonValueKind.Null, refused.GetProperty("reset").ValueKind);
        }
        Assert.Equal(200, r[6].GetProperty("status").GetInt32());
        // Kestrel strips connection headers from h2 responses with a warning: none may reach it.
        Assert.DoesNotContain("invalid for HTTP/2", server.Output);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ContentLength_OverH2_ShortBodyResetsStreamSurplusDroppedConnectionSurvives(bool tls)
    {
        var server = _servers.For(tls);
        var r = Raw(server, "paths", "--paths", "/short", "/long", "/environ")
            .GetProperty("results").EnumerateArray().ToList();
        // Never a stream left hanging: reset (the head waited for the body, so it was never sent).
        Assert.Equal("INTERNAL_ERROR", r[0].GetProperty("reset").GetString());
        Assert.Equal(JsonValueKind.Null, r[1].GetProperty("reset").ValueKind);
        Assert.Equal("5", r[1].GetProperty("headers").Str("content-length"));
        Assert.Equal(5, r[1].GetProperty("length").GetInt32());
        Assert.Equal(200, r[2].GetProperty("status").GetInt32()); // same connection, no GOAWAY after the overrun
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BodylessResponses_OverH2_HeadAnd204And304WithoutBody(bool tls)
    {
        var server = _servers.For(tls);
        var r = Raw(server, "paths", "--paths", "HEAD:/status?code=200", "/status?code=204", "/status?code=304",
            "/status?code=200").GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(new[] { 200, 204, 304, 200 }, r.Select(x => x.GetProperty("status").GetInt32()));
        Assert.Equal(new[] { 0, 0, 0, 5 }, r.Select(x => x.GetProperty("length").GetInt32()));
        Assert.All(r, x => Assert.Equal(JsonValueKind.Null, x.GetProperty("reset").ValueKind));
        Assert.Equal("5", r[0].GetProperty("headers").Str("content-length")); // HEAD keeps the GET's length
        Assert.False(r[1].GetProperty("headers").TryGetProperty("content-length", out _)); // never on a 204
    }

    // ---- request bodies -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData(false, false, false, 300_000)]
    [InlineData(false, true, true, 300_000)]
    [InlineData(false, false, true, 3_000_000)] // past --body-buffer-size: spooled
    [InlineData(true, false, true, 300_000)]
    [InlineData(true, true, false, 300_000)]
    public void RequestBody_DataFrames_ReachWsgiInputTrailersIgnored(bool tls, bool contentLength, bool trailers,
        int size)
    {
        var args = new List<string> { "--size", size.ToString() };
        if (contentLength) args.Add("--content-length");
        if (trailers) args.Add("--trailers");
        var r = Raw(_servers.For(tls), "post", args.ToArray());
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        var echo = r.GetProperty("json");
        var body = Enumerable.Range(0, size).Select(i => (byte)(i % 251)).ToArray();
        Assert.Equal(size, echo.GetProperty("len").GetInt32());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), echo.Str("sha256"));
        if (contentLength) Assert.Equal(size.ToString(), echo.Str("content_length"));
        else Assert.Equal(JsonValueKind.Null, echo.GetProperty("content_length").ValueKind);
        // Trailers are neither body nor environ.
        Assert.Equal(new[] { "HTTP_HOST" }, echo.GetProperty("http_keys").EnumerateArray().Select(k => k.GetString()));
    }

    // ---- RST_STREAM, limits, flow control -------------------------------------------------------------------

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void RstStream_MidResponse_CloseCalledOnceAndTheOnlyThreadFree(bool tls, bool live)
    {
        var server = _servers.For(tls);
        // An endless stream: live, its thread waits on the stream's flow control; else it fills the spool.
        var r = live ? Raw(server, "rst", "--live", "--read", "65536") : Raw(server, "rst", "--read", "65536");
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        Assert.True(r.GetProperty("received").GetInt32() >= 65536);
        // With one Python thread, /closes runs only after the streaming request let the thread go.
        Assert.Equal(200, r.GetProperty("after_status").GetInt32());
        var closes = r.GetProperty("closes");
        Assert.True(closes.GetProperty("stream_started").GetInt32() >= 1);
        Assert.Equal(closes.GetProperty("stream_started").GetInt32(), closes.GetProperty("stream_closed").GetInt32());
        // And no second close() later.
        var again = JsonDocument.Parse(Curl(server, tls ? "--http2" : "--http2-prior-knowledge",
            Url(server, "/closes")).Stdout).RootElement;
        Assert.Equal(closes.GetProperty("stream_closed").GetInt32(), again.GetProperty("stream_closed").GetInt32());
    }

    [Fact]
    public void MaxConcurrentStreams_ClientOpensMore_ExcessRefusedConnectionAndServerGoOn()
    {
        // A fifth thread answers /release while the four held streams take the other four.
        using var server = StartApp("--threads", "5", "--http2-max-concurrent-streams", "4");
        // Four streams meet at a barrier and are held open until the other six have their fate: none can slip in
        // because an early one already finished.
        var r = Raw(server, "streams", "--streams", "10", "--path", "/hold?n=4", "--held", "4",
            "--release", "/release");
        var outcomes = r.GetProperty("outcomes").EnumerateArray().ToList();
        Assert.All(outcomes.Take(4), o => Assert.Equal(200, o.GetProperty("status").GetInt32()));
        Assert.All(outcomes.Skip(4), o => Assert.Equal("REFUSED_STREAM", o.GetProperty("reset").GetString()));
        Assert.Equal(4, r.GetProperty("max_concurrent_streams").GetInt32()); // what SETTINGS announced
        Assert.Equal(200, r.GetProperty("after_status").GetInt32()); // the same connection serves on
        Assert.Equal(0, Curl(server, "--http2-prior-knowledge", Url(server, "/environ")).ExitCode);
        Assert.False(server.HasExited);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SlowReader_StreamWindowShut_SpooledThreadFreeOtherStreamsAndConnectionsAnswered(bool tls)
    {
        var server = _servers.For(tls);
        var r = Raw(server, "slow", "--kb", "8192", "--side", "/closes");
        Assert.Equal(200, r.GetProperty("a_status").GetInt32());
        Assert.True(r.GetProperty("stalled_at").GetInt32() < 8 << 20);
        // The only Python thread finished the 8 MiB into the spool and called close() while A took nothing.
        var same = r.GetProperty("same_connection");
        Assert.Equal(200, same.GetProperty("status").GetInt32());
        var closes = same.GetProperty("json");
        Assert.Equal(closes.GetProperty("stream_started").GetInt32(), closes.GetProperty("stream_closed").GetInt32());
        Assert.Equal(200, r.GetProperty("other_connection").GetProperty("status").GetInt32());
        // Then A is read at full speed: everything spooled arrives.
        Assert.Equal(8 << 20, r.GetProperty("a_length").GetInt32());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("a_reset").ValueKind);
    }

    [Fact]
    public void SlowReader_LiveStreamWindowShut_HoldsOnlyItsOwnThread()
    {
        using var server = StartApp("--threads", "2");
        var r = Raw(server, "slow", "--kb", "0", "--live", "--side", "/closes");
        // A live stream is not spooled: its thread waits for A's window, the other thread serves everyone else.
        var same = r.GetProperty("same_connection");
        Assert.Equal(200, same.GetProperty("status").GetInt32());
        Assert.Equal(0, same.GetProperty("json").GetProperty("stream_closed").GetInt32());
        Assert.Equal(200, r.GetProperty("other_connection").GetProperty("status").GetInt32());
        // RST_STREAM frees it: close() once.
        var after = r.GetProperty("after_reset").GetProperty("json");
        Assert.Equal(1, after.GetProperty("stream_started").GetInt32());
        Assert.Equal(1, after.GetProperty("stream_closed").GetInt32());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ConnectionSpecificRequestHeader_OverH2_ConnectionErrorServerServesOn(bool tls)
    {
        var server = _servers.For(tls);
        var r = Raw(server, "badheader");
        // Kestrel treats it as a connection error (GOAWAY PROTOCOL_ERROR) rather than a stream error.
        Assert.Equal("PROTOCOL_ERROR", r.GetProperty("bad").GetProperty("connection_error").GetString());
        Assert.Equal(200, r.GetProperty("good_status").GetInt32());
    }

    // ---- --http2 off, h2load ----------------------------------------------------------------------------------

    [Fact]
    public void Http2Off_PriorKnowledgeRefusedAndAlpnOffersOnlyHttp11()
    {
        using var certs = new TestCertificates();
        using var cleartext = StartApp("--http2", "off");
        using (var raw = new TcpClient("127.0.0.1", cleartext.Port))
        {
            var stream = raw.GetStream();
            stream.ReadTimeout = 10_000;
            stream.Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8);
            var answer = new MemoryStream();
            stream.CopyTo(answer); // the server closes after it
            // Kestrel's HTTP/1.1 parser knows the preface and answers in HTTP/2 terms: GOAWAY (type 7, 8 bytes of
            // payload on stream 0) with HTTP_1_1_REQUIRED (0xd), then closes. No request reaches the app.
            var frame = answer.ToArray();
            Assert.True(frame.Length >= 17, Convert.ToHexString(frame));
            Assert.Equal(new byte[] { 0, 0, 8, 7, 0, 0, 0, 0, 0 }, frame[..9]);
            Assert.Equal(new byte[] { 0, 0, 0, 0x0d }, frame[13..17]);
        }
        var h1 = Curl(cleartext, "--http2-prior-knowledge", Url(cleartext, "/environ"));
        Assert.NotEqual(0, h1.ExitCode);

        using var tls = StartApp("--http2", "off", "--bind", "https://127.0.0.1:0",
            "--certfile", certs.ServerCert, "--keyfile", certs.ServerKey);
        var alpn = Proc.Run(Interpreters.SystemPython, new[] { Client, "alpn", "--port", tls.Port.ToString(),
            "--ca", certs.CaCert });
        Assert.Equal("http/1.1", JsonDocument.Parse(alpn.Stdout).RootElement.Str("alpn"));
        var curl = Proc.Run("curl", new[] { "-sS", "--http2", "--cacert", certs.CaCert, "-o", "/dev/null",
            "-w", "%{http_version}", Url(tls, "/environ") });
        Assert.Equal("1.1", curl.Stdout.Trim());
    }

    [Fact]
    public void AlpnOnByDefault_OffersH2()
    {
        var alpn = Raw(_servers.Tls, "alpn");
        Assert.Equal("h2", alpn.Str("alpn"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void H2load_ShortRun_NoErrors(bool tls)
    {
        var server = _servers.For(tls);
        var run = Proc.Run("h2load", new[] { "-n", "2000", "-c", "4", "-m", "10", Url(server, "/status?code=200") },
            TimeSpan.FromSeconds(120));
        _out.WriteLine(run.Stdout);
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("2000 succeeded, 0 failed, 0 errored", run.Stdout);
        Assert.Contains("status codes: 2000 2xx", run.Stdout);
        if (tls) Assert.Contains("Application protocol: h2", run.Stdout);
    }
}
