using System.Net.Sockets;
using System.Text;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>echo_environ.py with gunicorn's default limits and a small body limit; calls counted per port.</summary>
public sealed class LimitsServerFixture : IDisposable
{
    public const int BodyLimit = 1000;
    private readonly string _callsFile =
        Path.Combine(Path.GetTempPath(), $"sharpwsgi-limits-calls-{Guid.NewGuid():N}.log");
    private readonly Lazy<ServerProcess> _server;

    public LimitsServerFixture() => _server = new(() => Start(_callsFile, "--limit-request-body", $"{BodyLimit}"));

    public static ServerProcess Start(string callsFile, params string[] args) =>
        ServerProcess.Start(args.Append(Path.Combine(ServerProcess.AppsDir, "echo_environ.py")),
            new Dictionary<string, string?> { ["ECHO_ENVIRON_CALLS"] = callsFile });

    public ServerProcess Server => _server.Value;

    public void Dispose()
    {
        if (_server.IsValueCreated) _server.Value.Dispose();
        File.Delete(_callsFile);
    }
}

/// <summary>
/// --limit-request-line, --limit-request-fields, --limit-request-field_size, --limit-request-body, --header-timeout,
/// --max-connections and the checks stricter than Kestrel's, over real sockets (HTTP/1.1) and prior-knowledge h2c
/// (curl): each limit just under and just over; over it, a plain answer naming the limit, the app not called, and
/// (HTTP/1.1) the connection closed.
/// </summary>
public sealed class LimitsTests : IClassFixture<LimitsServerFixture>
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);
    private readonly LimitsServerFixture _fixture;
    private readonly ITestOutputHelper _out;

    public LimitsTests(LimitsServerFixture fixture, ITestOutputHelper output) { _fixture = fixture; _out = output; }

    private int Port => _fixture.Server.Port;

    // ---- HTTP/1.1 -------------------------------------------------------------------------------------------

    /// <summary>Sends one request on a fresh connection; returns the response and the app calls it caused.</summary>
    private (RawResponse Response, int Calls, bool Closed) Send(string request, int? port = null)
    {
        var target = port ?? Port;
        using var conn = new RawHttp(target, ReadTimeout);
        var before = CallsFrom(target, conn);
        conn.Send(Encoding.Latin1.GetBytes(request));
        var response = conn.ReadResponse();
        var closed = response.Status != 200 && conn.IsClosedByServer();
        return (response, CallsFrom(target, conn) - before, closed);
    }

    private static int CallsFrom(int port, RawHttp conn)
    {
        var local = ((System.Net.IPEndPoint)conn.Socket.LocalEndPoint!).Port;
        return Http.Json(Http.Get(port, $"/__calls?port={local}")).GetProperty("calls").GetInt32();
    }

    private static int TotalCalls(int port) =>
        Http.Json(Http.Get(port, "/__calls?port=0")).GetProperty("total").GetInt32();

    private static void AssertServed((RawResponse Response, int Calls, bool Closed) r)
    {
        Assert.True(r.Response.Status == 200, $"expected the app's 200, got {r.Response.StatusLine}: " +
            r.Response.BodyText);
        Assert.Equal(1, r.Calls);
    }

    private static void AssertRefused((RawResponse Response, int Calls, bool Closed) r, int status, string text)
    {
        Assert.True(r.Response.Status == status, $"expected {status}, got {r.Response.StatusLine}: " +
            r.Response.BodyText);
        Assert.StartsWith("text/plain", r.Response.Header("Content-Type"));
        Assert.Contains(text, r.Response.BodyText);
        Assert.Equal(0, r.Calls);
        Assert.True(r.Closed, "the connection stayed open after a refused request");
    }

    private static string Get(string target, string headers = "") =>
        $"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n";

    /// <summary>A target that makes "GET target HTTP/1.1" exactly length bytes.</summary>
    private static string TargetForLine(int length) => "/" + new string('a', length - "GET / HTTP/1.1".Length);

    [Fact]
    public void RequestLine_AtTheLimit_Served() => AssertServed(Send(Get(TargetForLine(4094))));

    [Fact]
    public void RequestLine_OneOver_414NamingTheLimit() =>
        AssertRefused(Send(Get(TargetForLine(4095))), 414, "request line is 4095 bytes (--limit-request-line 4094)");

    [Fact]
    public void RequestLine_PastKestrelsBackstop_BodilessKestrel414()
    {
        // 64 KiB is Kestrel's cap for the default limit: Kestrel answers itself, without a body.
        var r = Send(Get(TargetForLine(70_000)));
        Assert.Equal(414, r.Response.Status);
        Assert.Empty(r.Response.Body);
        Assert.Equal(0, r.Calls);
        Assert.True(r.Closed);
    }

    private static string Fields(int n) => string.Concat(Enumerable.Range(0, n).Select(i => $"X-F{i}: v\r\n"));

    [Fact]
    public void HeaderFields_AtTheLimit_Served() => AssertServed(Send(Get("/", Fields(99)))); // + Host

    [Fact]
    public void HeaderFields_OneOver_431NamingTheLimit() =>
        AssertRefused(Send(Get("/", Fields(100))), 431, "101 header fields (--limit-request-fields 100)");

    /// <summary>"X-Big: value\r\n" exactly size bytes.</summary>
    private static string FieldOfSize(int size) => $"X-Big: {new string('b', size - "X-Big: \r\n".Length)}\r\n";

    [Fact]
    public void HeaderFieldSize_AtTheLimit_Served() => AssertServed(Send(Get("/", FieldOfSize(8190))));

    [Fact]
    public void HeaderFieldSize_OneOver_431NamingTheFieldAndTheLimit() =>
        AssertRefused(Send(Get("/", FieldOfSize(8191))), 431,
            "header field X-Big is 8191 bytes (--limit-request-field_size 8190)");

    [Fact]
    public void HeaderValue_Bel_400BeforeTheApp() =>
        AssertRefused(Send(Get("/", "X-V: a\u0007b\r\n")), 400, "X-V has the control character 0x07");

    [Fact]
    public void HeaderValue_Del_400BeforeTheApp() =>
        AssertRefused(Send(Get("/", "X-V: a\u007fb\r\n")), 400, "X-V has the control character 0x7F");

    [Fact]
    public void HeaderValue_HtabAndObsText_Served()
    {
        var r = Send(Get("/", "X-V: a\tb\u00e9\r\n"));
        AssertServed(r);
        Assert.Equal("a\tb\u00e9", Http.Environ(r.Response).Str("HTTP_X_V"));
    }

    [Fact]
    public void BareLineFeed_InTheHead_400BeforeTheApp()
    {
        var r = Send("GET / HTTP/1.1\nHost: x\n\n");
        Assert.Equal(400, r.Response.Status);
        Assert.Equal(0, r.Calls);
        Assert.True(r.Closed);
    }

    [Fact]
    public void Http10_TransferEncoding_400BeforeTheAppAndClosed() =>
        AssertRefused(Send("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 400,
            "Transfer-Encoding on an HTTP/1.0 request");

    [Fact]
    public void Http11_TransferEncodingChunked_Served() =>
        AssertServed(Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));

    [Theory]
    [InlineData("Content-Length: 99")]
    [InlineData("Host: evil.example")]
    [InlineData("Transfer-Encoding: chunked")]
    [InlineData("Authorization: Basic Zm9vOmJhcg==")]
    public void ChunkedTrailer_ForbiddenField_400BeforeTheAppAndClosed(string trailer) =>
        AssertRefused(Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
            trailer + "\r\n\r\n"), 400,
            $"the trailer section carries {trailer.Split(':')[0]}, which a trailer may not");

    [Fact]
    public void ChunkedTrailer_ContentType_Served() =>
        AssertServed(Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
            "Content-Type: text/plain\r\n\r\n"));

    [Fact]
    public void ProxyHeader_NeverBecomesHttpProxy()
    {
        var r = Send(Get("/", "Proxy: http://attacker.example:3128\r\n"));
        AssertServed(r);
        var environ = Http.Environ(r.Response);
        Assert.False(environ.TryGetProperty("HTTP_PROXY", out _), "httpoxy: HTTP_PROXY reached the app");
    }

    private static string Post(int length) =>
        $"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{new string('d', length)}";

    private static string Chunked(int length) =>
        $"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{length:x}\r\n{new string('d', length)}" +
        "\r\n0\r\n\r\n";

    [Fact]
    public void Body_ContentLengthAtTheLimit_Served() => AssertServed(Send(Post(LimitsServerFixture.BodyLimit)));

    [Fact]
    public void Body_ContentLengthOver_413BeforeTheApp() =>
        AssertRefused(Send(Post(LimitsServerFixture.BodyLimit + 1)), 413,
            "request body exceeds --limit-request-body 1000 (Content-Length: 1001)");

    [Fact]
    public void Body_ChunkedAtTheLimit_Served() => AssertServed(Send(Chunked(LimitsServerFixture.BodyLimit)));

    [Fact]
    public void Body_ChunkedOver_413BeforeTheApp() =>
        AssertRefused(Send(Chunked(LimitsServerFixture.BodyLimit + 1)), 413,
            "request body exceeds --limit-request-body 1000");

    /// <summary>Bodies streamed to the app (--body-buffer-size 0): the limit and framing errors are found while the
    /// app reads wsgi.input; its OSError becomes the client's 4xx, never a 500.</summary>
    [Fact]
    public void StreamedBody_OverTheLimitOrBadChunkSize_4xxNotA500AndClosed()
    {
        var calls = Path.Combine(Path.GetTempPath(), $"sharpwsgi-limits-stream-{Guid.NewGuid():N}.log");
        try
        {
            using var server = LimitsServerFixture.Start(calls, "--limit-request-body", "1000", "--body-buffer-size",
                "0");
            var over = Send(Chunked(1001), server.Port);
            Assert.True(over.Response.Status == 413, over.Response.StatusLine + ": " + over.Response.BodyText);
            Assert.Contains("request body exceeds --limit-request-body 1000", over.Response.BodyText);
            Assert.Equal(1, over.Calls); // the app ran, and its read raised
            Assert.True(over.Closed);

            var overflow = Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n", server.Port);
            Assert.True(overflow.Response.Status == 400,
                overflow.Response.StatusLine + ": " + overflow.Response.BodyText);
            Assert.Contains("malformed request body", overflow.Response.BodyText);
            Assert.True(overflow.Closed);

            var signed = Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                "-5\r\nhello\r\n0\r\n\r\n", server.Port);
            Assert.Equal(400, signed.Response.Status);
            Assert.True(signed.Closed);
            _out.WriteLine(server.Output);
            Assert.DoesNotContain("Error handling request", server.Output); // the gateway's 500 log line
        }
        finally { File.Delete(calls); }
    }

    [Fact]
    public void HeaderTimeout_HalfAHead_408ThenClosed()
    {
        var calls = Path.Combine(Path.GetTempPath(), $"sharpwsgi-limits-timeout-{Guid.NewGuid():N}.log");
        try
        {
            using var server = LimitsServerFixture.Start(calls, "--header-timeout", "1.5");
            using var conn = new RawHttp(server.Port, ReadTimeout);
            conn.Send("GET / HTTP/1.1\r\nHost: x\r\n");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var rest = Encoding.Latin1.GetString(conn.ReadToEnd()); // returns when the server closes
            _out.WriteLine($"after {clock.Elapsed}: {rest}");
            Assert.StartsWith("HTTP/1.1 408 ", rest);
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
            Assert.Equal(0, TotalCalls(server.Port));
        }
        finally { File.Delete(calls); }
    }

    [Fact]
    public void MaxConnections_AtTheLimit_NextWaitsInTheBacklogUntilOneCloses()
    {
        var calls = Path.Combine(Path.GetTempPath(), $"sharpwsgi-limits-conns-{Guid.NewGuid():N}.log");
        try
        {
            using var server = LimitsServerFixture.Start(calls, "--max-connections", "2", "--workers", "1");
            var first = new RawHttp(server.Port, ReadTimeout);
            using var second = new RawHttp(server.Port, ReadTimeout);
            foreach (var conn in new[] { first, second })
            {
                conn.Send(Get("/"));
                Assert.Equal(200, conn.ReadResponse().Status); // accepted, and kept alive
            }
            using var third = new RawHttp(server.Port, ReadTimeout); // the kernel completes the handshake
            third.Send(Get("/"));
            // Not accepted: nothing comes back while two connections are open (a bounded negative check).
            Assert.False(third.Socket.Poll(TimeSpan.FromMilliseconds(700), SelectMode.SelectRead),
                "a third connection was served while --max-connections 2 were open");
            first.Dispose();
            Assert.Equal(200, third.ReadResponse().Status);
        }
        finally { File.Delete(calls); }
    }

    // ---- HTTP/2 (prior-knowledge h2c with curl) ----------------------------------------------------------------

    /// <summary>One curl request over h2c; the status, body, and the app calls it caused.</summary>
    private (int Status, string Body, int Calls) Curl2(string path, params string[] extra)
    {
        var before = TotalCalls(Port);
        var args = new List<string>
            { "-sS", "--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_code} %{http_version}" };
        args.AddRange(extra);
        args.Add($"http://127.0.0.1:{Port}{path}");
        var result = Proc.Run("curl", args, TimeSpan.FromSeconds(30));
        var output = result.Stdout;
        var cut = output.LastIndexOf('\n');
        var tail = output[(cut + 1)..].Split(' ');
        _out.WriteLine($"h2 {path[..Math.Min(path.Length, 40)]}: {tail[0]} (HTTP {tail[^1]}) {output[..cut]}" +
            (tail[0] == "000" ? $" curl exit {result.ExitCode}: {result.Stderr.Trim()}" : ""));
        if (tail[0] != "000") Assert.Equal("2", tail[^1]);
        return (int.Parse(tail[0]), output[..cut], TotalCalls(Port) - before); // /__calls is not counted
    }

    [Fact]
    public void Http2_RequestLine_MeasuredAsHttp11_414OneOver()
    {
        // No request line in HTTP/2: method, :path and "HTTP/1.1" are measured as HTTP/1.1's would be.
        Assert.Equal(200, Curl2(TargetForLine(4094)).Status);
        var over = Curl2(TargetForLine(4095));
        Assert.Equal(414, over.Status);
        Assert.Contains("(--limit-request-line 4094)", over.Body);
        Assert.Equal(0, over.Calls);
    }

    [Fact]
    public void Http2_HeaderFieldSize_JustUnderAndOver()
    {
        Assert.Equal(200, Curl2("/", "-H", FieldOfSize(8190).TrimEnd()).Status);
        var over = Curl2("/", "-H", FieldOfSize(8191).TrimEnd());
        Assert.Equal(431, over.Status);
        Assert.Contains("header field x-big is 8191 bytes (--limit-request-field_size 8190)", over.Body);
        Assert.Equal(0, over.Calls);
    }

    [Fact]
    public void Http2_HeaderFields_OneOver_431()
    {
        // curl adds Host (from :authority), User-Agent and Accept: three fields.
        static string[] Many(int n) =>
            Enumerable.Range(0, n).SelectMany(i => new[] { "-H", $"X-F{i}: v" }).ToArray();
        Assert.Equal(200, Curl2("/", Many(97)).Status);
        var over = Curl2("/", Many(98));
        Assert.Equal(431, over.Status);
        Assert.Contains("(--limit-request-fields 100)", over.Body);
        Assert.Equal(0, over.Calls);
    }

    [Fact]
    public void Http2_HeaderValueControlCharacter_400()
    {
        var r = Curl2("/", "-H", "X-V: a\u0007b");
        Assert.Equal(400, r.Status);
        Assert.Contains("control character 0x07", r.Body);
        Assert.Equal(0, r.Calls);
    }

    [Fact]
    public void Http2_Body_JustUnderAndOverWithAndWithoutContentLength()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, Enumerable.Repeat((byte)'d', LimitsServerFixture.BodyLimit).ToArray());
            Assert.Equal(200, Curl2("/", "--data-binary", "@" + file).Status);
            Assert.Equal(200, Curl2("/", "-X", "POST", "-T", file, "-H", "Content-Length:").Status);
            File.AppendAllText(file, "d");
            // The 413 goes out while curl is still sending the body. Kestrel's own cap (the same limit) must not
            // reset the stream first: that reset used to overtake the answer under load ("Stream error in the
            // HTTP/2 framing layer", with the 413 in the server's log).
            var declared = Curl2("/", "--data-binary", "@" + file);
            if (declared.Status != 413) _out.WriteLine("server output:\n" + _fixture.Server.Output);
            Assert.Equal(413, declared.Status);
            Assert.Contains("(Content-Length: 1001)", declared.Body);
            Assert.Equal(0, declared.Calls);
            // No Content-Length: Kestrel stops the body as it crosses the limit, before the app (prefetch).
            var streamed = Curl2("/", "-X", "POST", "-T", file, "-H", "Content-Length:");
            Assert.Equal(413, streamed.Status);
            Assert.Contains("request body exceeds --limit-request-body 1000", streamed.Body);
            Assert.Equal(0, streamed.Calls);
        }
        finally { File.Delete(file); }
    }
}
