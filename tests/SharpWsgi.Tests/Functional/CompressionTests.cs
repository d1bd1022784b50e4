using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>tests/apps/compressible.py behind --compress (with an access log, and a static tree without siblings),
/// and a server with one Python thread and a small response buffer for the slow-client case.</summary>
public sealed class CompressionFixture : IDisposable
{
    public readonly string Dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-compress-{Guid.NewGuid():N}");
    private readonly Lazy<ServerProcess> _server, _oneThread;

    public CompressionFixture()
    {
        Directory.CreateDirectory(Dir);
        File.WriteAllText(Path.Combine(Dir, "site.css"),
            string.Concat(Enumerable.Repeat("body { margin: 0 }\n", 500)));
        var app = Path.Combine(ServerProcess.AppsDir, "compressible.py");
        _server = new(() => ServerProcess.Start(new[]
            { "--compress", "--access-logfile", "-", "--static", $"/static/={Dir}", app }));
        _oneThread = new(() => ServerProcess.Start(new[]
            { "--compress", "--threads", "1", "--response-buffer-size", "64k", app }));
    }

    public ServerProcess Server => _server.Value;
    public ServerProcess OneThread => _oneThread.Value;

    public void Dispose()
    {
        foreach (var server in new[] { _server, _oneThread })
            if (server.IsValueCreated) server.Value.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// --compress over real sockets: br or gzip by Accept-Encoding with q-values, Vary on every response that could be
/// compressed, Content-Length dropped and ETag weakened when compressed; never for small bodies, other types, bodies
/// the app encoded, no-transform, 206, HEAD, 304, HTTP/1.0 or live streams; a streamed body reaches the client while
/// the app still runs; a client that reads nothing does not hold the Python thread; HTTP/2; static files untouched;
/// the access log counts the bytes sent.
/// </summary>
public sealed class CompressionTests : IClassFixture<CompressionFixture>
{
    private static readonly byte[] Line =
        "<tr><td class=\"name\">row</td><td class=\"value\">a value that repeats, as HTML does</td></tr>\n"u8.ToArray();

    private readonly CompressionFixture _f;

    public CompressionTests(CompressionFixture fixture) => _f = fixture;

    /// <summary>What compressible.py sends for size (and a chunk's salt), byte for byte.</summary>
    private static byte[] Text(int size, int salt = 0)
    {
        var bytes = new byte[size];
        for (var i = 0; i < size; i++) bytes[i] = Line[i % Line.Length];
        if (salt != 0 && size >= 6) Encoding.ASCII.GetBytes($"r{salt % 100:00}").CopyTo(bytes, 21);
        return bytes;
    }

    private static RawResponse Get(ServerProcess server, string target, string headers = "", string method = "GET",
        string version = "HTTP/1.1") => RawHttp.Exchange(server.Port,
        $"{method} {target} {version}\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n",
        isHead: method == "HEAD");

    private static byte[] Decompress(string? coding, byte[] body)
    {
        using var input = new MemoryStream(body);
        using Stream decoder = coding switch
        {
            "br" => new BrotliStream(input, CompressionMode.Decompress),
            "gzip" => new GZipStream(input, CompressionMode.Decompress),
            _ => throw new InvalidOperationException($"not compressed: Content-Encoding {coding ?? "(none)"}"),
        };
        var output = new MemoryStream();
        decoder.CopyTo(output);
        return output.ToArray();
    }

    [Theory]
    [InlineData("gzip, deflate, br", "br")]
    [InlineData("br;q=0.5, gzip", "gzip")]
    [InlineData("gzip;q=0.8, br;q=0.8", "br")]
    [InlineData("gzip", "gzip")]
    [InlineData("*", "br")]
    public void Get_Html_CompressedByTheClientsPreference(string accept, string coding)
    {
        var r = Get(_f.Server, "/?size=100000", $"Accept-Encoding: {accept}\r\n");
        Assert.Equal(200, r.Status);
        Assert.Equal(coding, r.Header("Content-Encoding"));
        Assert.Equal("Accept-Encoding", r.Header("Vary"));
        Assert.Null(r.Header("Content-Length")); // chunked: the compressed length is known only at the end
        Assert.True(r.Chunked);
        Assert.Equal(Text(100_000), Decompress(coding, r.Body));
        Assert.True(r.Body.Length < 2000, $"{r.Body.Length} bytes");
    }

    [Fact]
    public void Get_NoAcceptableCoding_IdentityWithVaryAndLength()
    {
        foreach (var accept in new[]
                 { "", "Accept-Encoding: identity\r\n", "Accept-Encoding: gzip;q=0, br;q=0\r\n" })
        {
            var r = Get(_f.Server, "/?size=5000", accept);
            Assert.Null(r.Header("Content-Encoding"));
            Assert.Equal("Accept-Encoding", r.Header("Vary"));
            Assert.Equal("5000", r.Header("Content-Length"));
            Assert.Equal(Text(5000), r.Body);
        }
    }

    [Theory]
    [InlineData("/?size=1023", false)] // below --compress-min-size (1024)
    [InlineData("/?size=1024", true)]
    [InlineData("/?size=100&chunks=2", true)] // a stream of unknown length: compressed whatever its size
    [InlineData("/?size=5000&type=image/png", false)]
    [InlineData("/?size=5000&type=application/json", true)]
    [InlineData("/?size=5000&type=image/svg%2Bxml", true)]
    [InlineData("/?size=5000&encoding=gzip", false)] // the app's own encoding
    [InlineData("/?size=5000&cache=public,%20no-transform", false)]
    [InlineData("/?size=5000&status=206%20Partial%20Content", false)]
    [InlineData("/?size=5000&status=404%20Not%20Found", true)]
    [InlineData("/?size=5000&chunks=2&buffering=no", false)] // a live stream: each chunk at once
    [InlineData("/?size=5000&chunks=2&type=text/event-stream", false)]
    public void Get_WhatIsCompressed(string target, bool compressed)
    {
        var r = Get(_f.Server, target, "Accept-Encoding: br, gzip\r\n");
        var appEncoded = target.Contains("encoding=gzip");
        Assert.Equal(compressed ? "br" : appEncoded ? "gzip" : null, r.Header("Content-Encoding"));
        // Vary only where the answer depends on Accept-Encoding.
        Assert.Equal(compressed ? "Accept-Encoding" : null, r.Header("Vary"));
        Assert.NotEmpty(compressed ? Decompress("br", r.Body) : r.Body);
    }

    [Fact]
    public void Get_AppsEtagAndVary_WeakenedAndExtended()
    {
        var r = Get(_f.Server, "/?size=5000&etag=%22v1%22&vary=Cookie", "Accept-Encoding: gzip\r\n");
        Assert.Equal("gzip", r.Header("Content-Encoding"));
        Assert.Equal("W/\"v1\"", r.Header("ETag"));
        Assert.Equal("Cookie, Accept-Encoding", r.Header("Vary"));
        var identity = Get(_f.Server, "/?size=5000&etag=%22v1%22");
        Assert.Equal("\"v1\"", identity.Header("ETag"));
    }

    [Fact]
    public void HeadAndHttp10_NotCompressedButVary()
    {
        var head = Get(_f.Server, "/?size=5000", "Accept-Encoding: br\r\n", method: "HEAD");
        Assert.Null(head.Header("Content-Encoding"));
        Assert.Equal("5000", head.Header("Content-Length"));
        Assert.Equal("Accept-Encoding", head.Header("Vary"));
        // nginx's gzip_http_version 1.1: an HTTP/1.0 client has no chunked framing for an unknown length.
        var old = Get(_f.Server, "/?size=5000", "Accept-Encoding: br\r\n", version: "HTTP/1.0");
        Assert.Null(old.Header("Content-Encoding"));
        Assert.Equal(Text(5000), old.Body);
    }

    [Fact]
    public void Get_StreamedBody_ChunksReachTheClientWhileTheAppRuns()
    {
        // Three chunks; the app waits (on an event the test sets) before the third: what it has written must come
        // out of the compressor and reach the client before then.
        using var client = new HttpClient { BaseAddress = _f.Server.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/?size=10000&chunks=3&pause=30");
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "br");
        using var response = client.Send(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("br", response.Content.Headers.ContentEncoding.Single());
        using var body = new BrotliStream(response.Content.ReadAsStream(), CompressionMode.Decompress);
        var received = new MemoryStream();
        var buffer = new byte[8192];
        while (received.Length < 20_000)
        {
            var n = body.Read(buffer); // bounded by the client's 30 s timeout
            Assert.True(n > 0, "the stream ended early");
            received.Write(buffer, 0, n);
        }
        Assert.Equal(Text(10_000, 1).Concat(Text(10_000, 2)).ToArray(), received.ToArray()[..20_000]);
        Assert.Equal(204, Get(_f.Server, "/release").Status);
        body.CopyTo(received);
        Assert.Equal(Text(10_000, 3), received.ToArray()[20_000..]);
    }

    [Fact]
    public void SlowClient_LargeCompressedResponse_DoesNotHoldThePythonThread()
    {
        // About 10 MB on the wire once compressed; the client reads nothing at first.
        using var slow = new RawHttp(_f.OneThread.Port, TimeSpan.FromSeconds(60));
        slow.Socket.ReceiveBufferSize = 64 * 1024;
        slow.Send("GET /?size=1000000&chunks=20&random=1 HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n" +
            "Connection: close\r\n\r\n");
        // The only Python thread answers another request: the first response went to a spool, not the thread.
        var other = RawHttp.Exchange(_f.OneThread.Port, "GET /?size=100 HTTP/1.1\r\nHost: localhost\r\n" +
            "Connection: close\r\n\r\n");
        Assert.Equal(Text(100), other.Body);
        var r = slow.ReadResponse();
        Assert.Equal("gzip", r.Header("Content-Encoding"));
        Assert.Equal(20_000_000, Decompress("gzip", r.Body).Length);
    }

    [Fact]
    public void Http2Cleartext_Compressed()
    {
        var file = Path.Combine(_f.Dir, $"h2-{Guid.NewGuid():N}");
        var result = Proc.Run("curl", new[] { "-s", "--http2-prior-knowledge", "-H", "Accept-Encoding: br", "-o",
            file, "-D", file + ".head", "-w", "%{http_code} %{http_version}",
            $"http://127.0.0.1:{_f.Server.Port}/?size=50000&chunks=4" }, TimeSpan.FromSeconds(30));
        Assert.Equal("200 2", result.Stdout);
        Assert.Contains("content-encoding: br", File.ReadAllText(file + ".head"));
        var expected = Enumerable.Range(1, 4).SelectMany(i => Text(50_000, i)).ToArray();
        Assert.Equal(expected, Decompress("br", File.ReadAllBytes(file)));
    }

    [Fact]
    public void StaticFileWithoutSibling_NotCompressedOnTheFly()
    {
        var r = Get(_f.Server, "/static/site.css", "Accept-Encoding: br, gzip\r\n");
        Assert.Equal(200, r.Status);
        Assert.Null(r.Header("Content-Encoding"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_f.Dir, "site.css")), r.Body);
    }

    [Fact]
    public void AccessLog_CountsTheCompressedBytes()
    {
        var r = Get(_f.Server, "/?size=200000&chunks=3", "Accept-Encoding: gzip\r\n");
        Assert.Equal("gzip", r.Header("Content-Encoding"));
        _f.Server.WaitForOutput(new Regex(
            $@"""GET /\?size=200000&chunks=3 HTTP/1\.1"" 200 {r.Body.Length} "), TimeSpan.FromSeconds(10));
    }
}
