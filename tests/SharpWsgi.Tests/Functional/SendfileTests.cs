using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>A tree with a 1 MB and a 24 MB file (both past the 64 KiB sendfile threshold) and a small one, served
/// with sendfile (the default), with --no-sendfile, and over TLS; each with --metrics-bind for the sendfile counter.
/// </summary>
public sealed class SendfileFixture : IDisposable
{
    public readonly string Dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-sendfile-{Guid.NewGuid():N}");
    public string Root => Path.Combine(Dir, "root");
    public readonly byte[] Big = new byte[1 << 20];
    public readonly TestCertificates Certs = new();
    private readonly Lazy<ServerProcess> _on, _off, _tls;

    public SendfileFixture()
    {
        Directory.CreateDirectory(Root);
        new Random(11).NextBytes(Big);
        File.WriteAllBytes(Path.Combine(Root, "big.bin"), Big);
        var huge = new byte[24 << 20];
        new Random(12).NextBytes(huge);
        File.WriteAllBytes(Path.Combine(Root, "huge.bin"), huge);
        File.WriteAllText(Path.Combine(Root, "small.txt"), "small file");
        _on = new(() => Start());
        _off = new(() => Start("--no-sendfile"));
        _tls = new(() => Start("--certfile", Certs.ServerCert, "--keyfile", Certs.ServerKey));
    }

    private ServerProcess Start(params string[] extra) => ServerProcess.Start(new[]
        { "--static", $"/static/={Root}", "--metrics-bind", "127.0.0.1:0" }.Concat(extra)
        .Append(Path.Combine(ServerProcess.AppsDir, "echo_environ.py")));

    public ServerProcess On => _on.Value;
    public ServerProcess Off => _off.Value;
    public ServerProcess Tls => _tls.Value;

    private static readonly Regex MetricsLine = new(@"Metrics at: http://127\.0\.0\.1:(\d+)");

    /// <summary>sharpwsgi_static_sendfile_bytes_total as /metrics says it now.</summary>
    public static long SendfileBytes(ServerProcess server) => Metric(server, "sharpwsgi_static_sendfile_bytes_total");

    public static long Metric(ServerProcess server, string name)
    {
        var port = int.Parse(MetricsLine.Match(server.WaitForOutput(MetricsLine, TimeSpan.FromSeconds(30)))
            .Groups[1].Value);
        var page = Http.Get(port, "/metrics").BodyText;
        var line = page.Split('\n').Single(l => l.StartsWith(name + " "));
        return (long)double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A counter once it reaches at least the value (polled, bounded: a worker adds to it just after
    /// the client has its last byte).</summary>
    public static long MetricAtLeast(ServerProcess server, string name, long value)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        long seen;
        while ((seen = Metric(server, name)) < value && DateTime.UtcNow < deadline)
            Thread.Sleep(20); // poll interval: the counter is what is awaited
        return seen;
    }

    public static long SendfileBytesAtLeast(ServerProcess server, long value) =>
        MetricAtLeast(server, "sharpwsgi_static_sendfile_bytes_total", value);

    public void Dispose()
    {
        foreach (var server in new[] { _on, _off, _tls })
            if (server.IsValueCreated) server.Value.Dispose();
        Certs.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Static files by sendfile(2) on cleartext HTTP/1.1, over real sockets: byte-exact bodies and ranges, keep-alive and
/// pipelining after a sendfile response, a client gone mid-file, TLS and h2c still copied, --no-sendfile.
/// </summary>
public sealed class SendfileTests : IClassFixture<SendfileFixture>
{
    private readonly SendfileFixture _f;

    public SendfileTests(SendfileFixture fixture) => _f = fixture;

    private static string Request(string target, string extra = "") =>
        $"GET {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n";

    [Fact]
    public void Get_OneMegabyte_ByteExactBySendfile()
    {
        var before = SendfileFixture.SendfileBytes(_f.On);
        var r = Http.Get(_f.On.Port, "/static/big.bin");
        Assert.Equal(200, r.Status);
        Assert.Equal((1 << 20).ToString(), r.Header("Content-Length"));
        Assert.Equal(_f.Big, r.Body);
        Assert.Equal(before + (1 << 20), SendfileFixture.SendfileBytesAtLeast(_f.On, before + (1 << 20)));
    }

    [Fact]
    public void Get_RangeOfOneMegabyte_ByteExactBySendfile()
    {
        var before = SendfileFixture.SendfileBytes(_f.On);
        var r = Http.Get(_f.On.Port, "/static/big.bin", "Range: bytes=1000-700999\r\n");
        Assert.Equal(206, r.Status);
        Assert.Equal($"bytes 1000-700999/{_f.Big.Length}", r.Header("Content-Range"));
        Assert.Equal(_f.Big.AsSpan(1000, 700_000).ToArray(), r.Body);
        Assert.Equal(before + 700_000, SendfileFixture.SendfileBytesAtLeast(_f.On, before + 700_000));
    }

    [Fact]
    public void KeepAlive_PipelinedAfterSendfile_StayInStep()
    {
        using var conn = new RawHttp(_f.On.Port);
        // Three requests in one write: the sendfile body must come between the other two answers, in order.
        conn.Send(Request("/static/big.bin") + Request("/static/small.txt") + Request("/app?x=1") +
            Request("/static/big.bin", "Range: bytes=-5\r\n"));
        var big = conn.ReadResponse();
        Assert.Equal(200, big.Status);
        Assert.Equal(_f.Big, big.Body);
        Assert.Equal("small file", conn.ReadResponse().BodyText);
        var app = conn.ReadResponse();
        Assert.Equal(200, app.Status);
        Assert.Contains("\"environ\"", app.BodyText);
        Assert.Equal(_f.Big.AsSpan(_f.Big.Length - 5).ToArray(), conn.ReadResponse().Body);
        // And one more on the same connection after a pause.
        conn.Send(Request("/static/big.bin"));
        Assert.Equal(_f.Big, conn.ReadResponse().Body);
    }

    [Fact]
    public void ClientGoneMidFile_ServerKeepsServingAndLogsNoError()
    {
        const string done = "sharpwsgi_request_duration_seconds_count";
        var finished = SendfileFixture.Metric(_f.On, done);
        var sent = SendfileFixture.SendfileBytes(_f.On);
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            socket.Connect("127.0.0.1", _f.On.Port);
            socket.Send(Encoding.ASCII.GetBytes(Request("/static/huge.bin")));
            var buffer = new byte[65536];
            var got = 0;
            while (got < 256 * 1024) got += socket.Receive(buffer);
            socket.LingerState = new LingerOption(true, 0); // a reset, as a client killed mid-download
        }
        // Kestrel is done with the aborted request (the forwarder's own line about it is at debug level).
        Assert.True(SendfileFixture.MetricAtLeast(_f.On, done, finished + 1) >= finished + 1);
        Assert.Equal(sent, SendfileFixture.SendfileBytes(_f.On)); // an unfinished file is not counted
        Assert.Equal(_f.Big, Http.Get(_f.On.Port, "/static/big.bin").Body);
        var output = _f.On.Output;
        Assert.DoesNotContain("[ERROR]", output);
        Assert.DoesNotContain("Exception", output);
    }

    [Fact]
    public void Http2Cleartext_StaticFile_CopiedNotSendfile()
    {
        var file = Path.Combine(_f.Dir, $"h2-{Guid.NewGuid():N}.bin");
        var before = SendfileFixture.SendfileBytes(_f.On);
        var result = Proc.Run("curl", new[] { "-s", "--http2-prior-knowledge", "-o", file, "-w",
            "%{http_code} %{http_version}", $"http://127.0.0.1:{_f.On.Port}/static/big.bin" },
            TimeSpan.FromSeconds(30));
        Assert.Equal("200 2", result.Stdout);
        Assert.Equal(_f.Big, File.ReadAllBytes(file));
        Assert.Equal(before, SendfileFixture.SendfileBytes(_f.On));
    }

    [Fact]
    public void Tls_StaticFile_CopiedNotSendfile()
    {
        var file = Path.Combine(_f.Dir, $"tls-{Guid.NewGuid():N}.bin");
        string Curl(string output, params string[] extra) => Proc.Run("curl", new[] { "-sS", "--http1.1",
            "--cacert", _f.Certs.CaCert, "-o", output, "-w", "%{http_code}",
            $"https://localhost:{_f.Tls.Port}/static/big.bin" }.Concat(extra), TimeSpan.FromSeconds(30)).Stdout;
        Assert.Equal("200", Curl(file));
        Assert.Equal("206", Curl(file + ".range", "-H", "Range: bytes=10-"));
        Assert.Equal(_f.Big, File.ReadAllBytes(file));
        Assert.Equal(_f.Big.AsSpan(10).ToArray(), File.ReadAllBytes(file + ".range"));
        Assert.Equal(0, SendfileFixture.SendfileBytes(_f.Tls));
    }

    [Fact]
    public void SlowReader_BelowMinDownloadRate_IsDroppedDuringSendfile()
    {
        using var server = ServerProcess.Start(new[] { "--static", $"/static/={_f.Root}", "--min-download-rate",
            "1m", "--min-rate-grace", "2", "--log-level", "debug",
            Path.Combine(ServerProcess.AppsDir, "echo_environ.py") });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.ReceiveBufferSize = 64 * 1024;
        socket.Connect("127.0.0.1", server.Port);
        socket.Send(Encoding.ASCII.GetBytes(Request("/static/huge.bin")));
        // Nothing is read: once the socket buffers are full, a 256 KiB piece cannot go out within 2 s.
        server.WaitForOutput("below --min-download-rate", TimeSpan.FromSeconds(30));
        socket.ReceiveTimeout = 30_000;
        var buffer = new byte[1 << 20];
        long total = 0;
        try
        {
            int n;
            while ((n = socket.Receive(buffer)) > 0) total += n;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
        Assert.True(total < 24 << 20, $"the whole file arrived ({total} bytes)");
        Assert.Equal(200, Http.Get(server.Port, "/static/small.txt").Status);
    }

    [Fact]
    public void NoSendfile_StaticFile_CopiedWithKeepAlive()
    {
        using var conn = new RawHttp(_f.Off.Port);
        conn.Send(Request("/static/big.bin") + Request("/static/big.bin", "Range: bytes=100-199\r\n"));
        Assert.Equal(_f.Big, conn.ReadResponse().Body);
        Assert.Equal(_f.Big.AsSpan(100, 100).ToArray(), conn.ReadResponse().Body);
        Assert.Equal(0, SendfileFixture.SendfileBytes(_f.Off));
    }
}

/// <summary>What a --static path resolved to is cached; a file changed in place, replaced or removed must be
/// answered as it is now.</summary>
public sealed class StaticCacheTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"sharpwsgi-cache-{Guid.NewGuid():N}");
    private readonly ServerProcess _server;

    public StaticCacheTests()
    {
        Directory.CreateDirectory(_root);
        _server = ServerProcess.Start(new[] { "--static", $"/static/={_root}", "--static-fallthrough", "off",
            Path.Combine(ServerProcess.AppsDir, "echo_environ.py") });
    }

    public void Dispose()
    {
        _server.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private RawResponse Get(string name) => Http.Get(_server.Port, "/static/" + name);

    [Theory]
    [InlineData(10)]
    [InlineData(200_000)] // past the bytes cache: read per request
    public void ChangedFile_ServedFresh(int size)
    {
        var path = Path.Combine(_root, $"f{size}.txt");
        var a = Enumerable.Repeat((byte)'a', size).ToArray();
        var b = Enumerable.Repeat((byte)'b', size).ToArray();
        File.WriteAllBytes(path, a);
        var first = Get($"f{size}.txt");
        Assert.Equal(a, first.Body);
        Assert.Equal(a, Get($"f{size}.txt").Body); // a cached hit

        // In place, same size; the mtime is set apart so the test does not depend on timestamp granularity.
        File.WriteAllBytes(path, b);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(-5));
        var second = Get($"f{size}.txt");
        Assert.Equal(b, second.Body);
        Assert.NotEqual(first.Header("ETag"), second.Header("ETag"));

        // Replaced by a rename (how deploys swap files): a new inode.
        var next = path + ".next";
        File.WriteAllBytes(next, a.Concat("!"u8.ToArray()).ToArray());
        File.Move(next, path, overwrite: true);
        Assert.Equal(a.Concat("!"u8.ToArray()).ToArray(), Get($"f{size}.txt").Body);

        File.Delete(path);
        Assert.Equal(404, Get($"f{size}.txt").Status);
        File.WriteAllBytes(path, b);
        Assert.Equal(b, Get($"f{size}.txt").Body);
    }

    [Fact]
    public void EncodedVariantsOfOneName_AllServeTheFile()
    {
        File.WriteAllText(Path.Combine(_root, "abc.txt"), "abc");
        foreach (var name in new[] { "abc.txt", "%61bc.txt", "a%62c.txt", "ab%63.txt", "abc.txt?v=1" })
            Assert.Equal("abc", Get(name).BodyText);
    }
}
