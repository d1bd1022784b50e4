using System.Text;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Servers for <see cref="ContentLengthTests"/>, each started when first used: echo_environ.py on cleartext (HTTP/1.1
/// and h2c, access log on stdout, calls counted per client port) and on TLS; probe.py with every body streamed to the
/// app (--body-buffer-size 0), so a route can leave a chunked body unread.
/// </summary>
public sealed class ContentLengthServers : IDisposable
{
    private static string Echo => Path.Combine(ServerProcess.AppsDir, "echo_environ.py");
    private readonly string _callsFile =
        Path.Combine(Path.GetTempPath(), $"sharpwsgi-cl-calls-{Guid.NewGuid():N}.log");
    private readonly Lazy<TestCertificates> _certificates = new(() => new TestCertificates());
    private readonly Lazy<ServerProcess> _cleartext, _tls, _streaming;

    public ContentLengthServers()
    {
        var calls = new Dictionary<string, string?> { ["ECHO_ENVIRON_CALLS"] = _callsFile };
        _cleartext = new(() => ServerProcess.Start(new[] { "--access-logfile", "-", Echo }, calls));
        _tls = new(() => ServerProcess.Start(new[] { "--bind", "https://127.0.0.1:0", "--certfile",
            Certificates.ServerCert, "--keyfile", Certificates.ServerKey, Echo }, calls));
        _streaming = new(() => ServerProcess.Start(new[] { "--body-buffer-size", "0",
            Path.Combine(ServerProcess.AppsDir, "probe.py") }));
    }

    public TestCertificates Certificates => _certificates.Value;
    public ServerProcess Cleartext => _cleartext.Value;
    public ServerProcess Tls => _tls.Value;
    public ServerProcess Streaming => _streaming.Value;

    public void Dispose()
    {
        foreach (var server in new[] { _cleartext, _tls, _streaming })
            if (server.IsValueCreated) server.Value.Dispose();
        if (_certificates.IsValueCreated) _certificates.Value.Dispose();
        File.Delete(_callsFile);
    }
}

/// <summary>
/// A Content-Length must be digits only (optional SP/HTAB around): Kestrel itself refuses most malformed values, and
/// SharpWsgi refuses what Kestrel's number parser lets through (a sign: "+5", "-0") with a plain 400 before the app,
/// closing the connection. Each head of a keep-alive or pipelined HTTP/1.1 connection is checked,
/// over TLS too; bodies never are; HTTP/2 is not touched.
/// </summary>
public sealed class ContentLengthTests : IClassFixture<ContentLengthServers>
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);
    private readonly ContentLengthServers _servers;
    private readonly ITestOutputHelper _out;

    public ContentLengthTests(ContentLengthServers servers, ITestOutputHelper output)
    {
        _servers = servers;
        _out = output;
    }

    private int Port => _servers.Cleartext.Port;

    private static string Post(string path, string contentLength, string body = "hello", string extra = "") =>
        $"POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length:{contentLength}\r\n\r\n{body}";

    private static string Chunked(string path, string body = "hello") =>
        $"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body.Length:x}\r\n{body}\r\n0\r\n\r\n";

    private static string Get(string path) => $"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n";

    private RawHttp Open(int? port = null) => new(port ?? Port, ReadTimeout);

    /// <summary>Requests of this connection that reached the app (asked on another connection).</summary>
    private int Calls(RawHttp conn)
    {
        var local = ((System.Net.IPEndPoint)conn.Socket.LocalEndPoint!).Port;
        return Http.Json(Http.Get(Port, $"/__calls?port={local}")).GetProperty("calls").GetInt32();
    }

    private static void AssertServed(RawResponse response, string path)
    {
        Assert.True(response.Status == 200, $"{path}: expected 200, got {response.StatusLine}: {response.BodyText}");
        Assert.Equal(path, Http.Environ(response).Str("PATH_INFO"));
    }

    private static void AssertOurRefusal(RawResponse response, string shownValue)
    {
        Assert.True(response.Status == 400, $"expected 400, got {response.StatusLine}: {response.BodyText}");
        Assert.StartsWith("text/plain", response.Header("Content-Type"));
        Assert.Equal($"400 Bad Request: Content-Length must be digits only (got '{shownValue}')\n",
            response.BodyText);
        Assert.Equal("close", response.Header("Connection"));
    }

    // ---- one request ------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(" +5", "+5")]
    [InlineData(" -0", "-0")]
    [InlineData("+5", "+5")]
    [InlineData(" +0005", "+0005")]
    public void SignedValue_Plain400BeforeTheAppAndClosed(string value, string shown)
    {
        using var conn = Open();
        conn.Send(Post("/signed", value));
        AssertOurRefusal(conn.ReadResponse(), shown);
        Assert.True(conn.IsClosedByServer(), "the connection stayed open after the refusal");
        Assert.Equal(0, Calls(conn));
    }

    /// <summary>What Kestrel refuses itself (a bodiless 400) before SharpWsgi looks: asserted so that a Kestrel
    /// that stops refusing one of them shows up here.</summary>
    [Theory]
    [InlineData("Content-Length: 5 5\r\n")]
    [InlineData("Content-Length: 1 2\r\n")]
    [InlineData("Content-Length: 0x5\r\n")]
    [InlineData("Content-Length: 5,5\r\n")]
    [InlineData("Content-Length: 5, 5\r\n")]
    [InlineData("Content-Length: -5\r\n")]
    [InlineData("Content-Length: + 5\r\n")]
    [InlineData("Content-Length:\r\n")]
    [InlineData("Content-Length: 5\r\nContent-Length: 6\r\n")]
    [InlineData("Content-Length: 5\r\nContent-Length: 5\r\n")] // identical repeats too
    [InlineData("Content-Length: \u000b5\r\n")] // VT and FF: white space to .NET's string parser, not Kestrel's
    [InlineData("Content-Length: 5\u000c\r\n")]
    [InlineData("Content-Length: 5\u00e9\r\n")]
    [InlineData("Content-Length: 99999999999999999999\r\n")]
    public void RefusedByKestrelItself_400AndClosed(string fields)
    {
        using var conn = Open();
        conn.Send($"POST /kestrel HTTP/1.1\r\nHost: x\r\n{fields}\r\nhello");
        var response = conn.ReadResponse();
        Assert.True(response.Status == 400, $"expected 400, got {response.StatusLine}: {response.BodyText}");
        Assert.True(conn.IsClosedByServer(), "the connection stayed open after the refusal");
        Assert.Equal(0, Calls(conn));
    }

    [Theory]
    [InlineData(" 5")]
    [InlineData("5")]
    [InlineData(" 05")]
    [InlineData("\t5\t")]
    [InlineData("   5   ")]
    [InlineData(" 0000000000000000000000000000000000000005")] // past 20 bytes: once an aborted connection
    public void DigitsWithOptionalWhitespace_ServedAndKeptAlive(string value)
    {
        using var conn = Open();
        conn.Send(Post("/digits", value));
        var response = conn.ReadResponse();
        AssertServed(response, "/digits");
        Assert.Equal("hello", Encoding.Latin1.GetString(Convert.FromBase64String(
            Http.Json(response).GetProperty("body_b64").GetString()!)));
        Assert.Equal("5", Http.Environ(response).Str("CONTENT_LENGTH"));
        conn.Send(Get("/again"));
        AssertServed(conn.ReadResponse(), "/again");
    }

    [Fact]
    public void Refusal_ReachesTheAccessLog()
    {
        using var conn = Open();
        conn.Send(Post("/logged-refusal", " +5"));
        Assert.Equal(400, conn.ReadResponse().Status);
        _servers.Cleartext.WaitForOutput(@"""POST /logged-refusal HTTP/1\.1"" 400 ");
    }

    // ---- keep-alive and pipelining ----------------------------------------------------------------------------

    /// <summary>
    /// A signed Content-Length as the 2nd or 3rd request of a connection, after requests with a Content-Length or a
    /// chunked body, sent one at a time or all in one write: the requests before it are served, it gets the 400.
    /// </summary>
    [Theory]
    [InlineData("length", 2, false)]
    [InlineData("length", 3, false)]
    [InlineData("chunked", 2, false)]
    [InlineData("chunked", 3, false)]
    [InlineData("length", 2, true)]
    [InlineData("length", 3, true)]
    [InlineData("chunked", 2, true)]
    [InlineData("chunked", 3, true)]
    [InlineData("none", 3, true)]
    public void KeepAlive_SignedValueOnALaterRequest_OnlyThatRequestRefused(string earlierBody, int position,
        bool pipelined)
    {
        var earlier = Enumerable.Range(1, position - 1).Select(i => earlierBody switch
        {
            "length" => Post($"/r{i}", $" {5 + i}", new string('b', 5 + i)),
            "chunked" => Chunked($"/r{i}", new string('c', 5 + i)),
            _ => Get($"/r{i}"),
        }).ToList();
        var signed = Post("/signed", " +5");
        using var conn = Open();
        if (pipelined) conn.Send(string.Concat(earlier) + signed);
        for (var i = 0; i < earlier.Count; i++)
        {
            if (!pipelined) conn.Send(earlier[i]);
            AssertServed(conn.ReadResponse(), $"/r{i + 1}");
        }
        if (!pipelined) conn.Send(signed);
        AssertOurRefusal(conn.ReadResponse(), "+5");
        Assert.True(conn.IsClosedByServer(), "the connection stayed open after the refusal");
        Assert.Equal(position - 1, Calls(conn));
    }

    [Fact]
    public void KeepAlive_ManyRequestsWithBodies_EveryOneServedOnOneConnection()
    {
        const int Rounds = 40;
        var round = Post("/cl", " 5") + Chunked("/chunked") + Get("/get") + "\r\n"; // a stray CRLF is skipped
        using var conn = Open();
        conn.Send(string.Concat(Enumerable.Repeat(round, Rounds)) + Post("/last", " -0", ""));
        for (var i = 0; i < Rounds; i++)
            foreach (var path in new[] { "/cl", "/chunked", "/get" })
                AssertServed(conn.ReadResponse(), path);
        AssertOurRefusal(conn.ReadResponse(), "-0");
        Assert.Equal(3 * Rounds, Calls(conn));
    }

    [Theory]
    [InlineData("length")]
    [InlineData("chunked")]
    public void Body_HoldingASignedContentLengthLine_NeverScanned(string framing)
    {
        const string body = "\r\nContent-Length: +5\r\n\r\nGET /smuggled HTTP/1.1\r\nContent-Length: -0\r\n\r\n";
        using var conn = Open();
        conn.Send((framing == "length" ? Post("/carrier", $" {body.Length}", body) : Chunked("/carrier", body)) +
            Get("/after"));
        var carrier = conn.ReadResponse();
        AssertServed(carrier, "/carrier");
        Assert.Equal(body, Encoding.Latin1.GetString(Convert.FromBase64String(
            Http.Json(carrier).GetProperty("body_b64").GetString()!)));
        AssertServed(conn.ReadResponse(), "/after");
        Assert.Equal(2, Calls(conn));
    }

    [Fact]
    public void ExpectContinue_BodySentAfterThe100_NextHeadStillChecked()
    {
        using var conn = Open();
        conn.Send(Post("/expect", " 5", "", "Expect: 100-continue\r\n"));
        Assert.Equal(100, conn.ReadResponse().Status);
        conn.Send("hello" + Post("/signed", " +5"));
        AssertServed(conn.ReadResponse(), "/expect");
        AssertOurRefusal(conn.ReadResponse(), "+5");
        Assert.Equal(1, Calls(conn));
    }

    [Fact]
    public void UpgradeRequest_NotUpgraded_NextHeadStillChecked()
    {
        using var conn = Open();
        conn.Send("GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
            Post("/signed", " +5"));
        AssertServed(conn.ReadResponse(), "/upgrade");
        AssertOurRefusal(conn.ReadResponse(), "+5");
    }

    // ---- TLS and HTTP/2 ---------------------------------------------------------------------------------------

    [Fact]
    public void Tls_SignedValueAfterServedRequests_RefusedAndClosed()
    {
        using var tls = TlsConnection.Open(_servers.Tls.Port, _servers.Certificates);
        tls.Send(Post("/tls-length", " 5") + Chunked("/tls-chunked"));
        AssertServed(tls.Read(), "/tls-length");
        AssertServed(tls.Read(), "/tls-chunked");
        tls.Send(Post("/tls-signed", " +5"));
        AssertOurRefusal(tls.Read(), "+5");
        Assert.True(tls.IsClosedByServer(), "the TLS connection stayed open after the refusal");
    }

    private Proc.Result Curl(params string[] args)
    {
        var run = Proc.Run("curl", new[] { "-sS", "--max-time", "20", "--cacert", _servers.Certificates.CaCert }
            .Concat(args), TimeSpan.FromSeconds(30));
        _out.WriteLine($"curl {string.Join(' ', args)} -> {run.ExitCode} {run.Stdout} {run.Stderr}");
        return run;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Http2_BodiesServedUntouched(bool tls)
    {
        var url = tls ? $"https://localhost:{_servers.Tls.Port}/h2" : $"http://127.0.0.1:{Port}/h2";
        var run = Curl(tls ? "--http2" : "--http2-prior-knowledge", "--data-binary", "hello", url);
        Assert.Equal(0, run.ExitCode);
        var echo = JsonDocument.Parse(run.Stdout).RootElement;
        Assert.Equal("HTTP/2", echo.GetProperty("environ").Str("SERVER_PROTOCOL"));
        Assert.Equal(5, echo.GetProperty("body_len").GetInt32());
    }

    // ---- bodies streamed to the app -----------------------------------------------------------------------------

    [Fact]
    public void StreamedChunkedBody_NotReadByTheApp_ResponseClosesTheConnection()
    {
        // Kestrel would drain the body and read on; where it ends is not known, so the next head could not be found.
        using var conn = Open(_servers.Streaming.Port);
        conn.Send(Chunked("/single") + Get("/single"));
        var response = conn.ReadResponse();
        Assert.Equal(200, response.Status);
        Assert.Equal("close", response.Header("Connection"));
        Assert.True(conn.IsClosedByServer(), "the connection stayed open after a chunked body nobody read");
    }

    [Fact]
    public void StreamedChunkedBody_ReadToItsEnd_NextHeadChecked()
    {
        using var conn = Open(_servers.Streaming.Port);
        conn.Send(Chunked("/environ") + Post("/signed", " +5"));
        var response = conn.ReadResponse();
        Assert.Equal(200, response.Status);
        Assert.Null(response.Header("Connection"));
        AssertOurRefusal(conn.ReadResponse(), "+5");
    }

    [Fact]
    public void StreamedContentLengthBody_NotReadByTheApp_DrainedAndNextHeadChecked()
    {
        using var conn = Open(_servers.Streaming.Port);
        conn.Send(Post("/single", " 5") + Get("/single") + Post("/signed", " -0", ""));
        Assert.Equal(200, conn.ReadResponse().Status);
        Assert.Equal(200, conn.ReadResponse().Status);
        AssertOurRefusal(conn.ReadResponse(), "-0");
    }
}
