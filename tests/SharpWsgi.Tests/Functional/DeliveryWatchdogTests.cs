using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using SharpWsgi.Tests.Workers;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The delivery watchdog (src/SharpWsgi/Hosting/Edge/DeliveryWatchdog.cs) over real sockets: clients that never
/// read, or read below --min-download-rate, are dropped by what their TCP acknowledged, whatever holds their bytes (a
/// response spool, Kestrel's buffer, a static file sent with or without sendfile, TLS), and their spool is freed at
/// once; a slow but steady reader keeps its connection.
/// </summary>
public sealed class DeliveryWatchdogTests
{
    private static readonly string App = Path.Combine(ServerProcess.AppsDir, "slow_clients.py");
    private static readonly Regex MetricsLine = new(@"Metrics at: http://127\.0\.0\.1:(\d+)");
    private const string Dropped = "Dropped a client that";
    private readonly ITestOutputHelper _out;

    public DeliveryWatchdogTests(ITestOutputHelper output) => _out = output;

    private static Socket Connect(int port, int receiveBuffer)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.ReceiveBufferSize = receiveBuffer; // set before connecting: it sizes the window the client offers
        socket.Connect("127.0.0.1", port);
        return socket;
    }

    private static int LocalPort(Socket socket) => ((System.Net.IPEndPoint)socket.LocalEndPoint!).Port;

    /// <summary>Bytes in the server's open spool files (unlinked, so reached through /proc/PID/fd). Opened with
    /// libc's open: .NET's own would take an advisory lock, which the server's handle refuses; and FileInfo.Length
    /// is the size of the /proc link itself.</summary>
    private static long SpoolBytes(ServerProcess server)
    {
        long total = 0;
        foreach (var fd in SpoolFiles.Open(server))
        {
            var handle = Open(fd, 0 /* O_RDONLY */);
            if (handle < 0) continue; // closed meanwhile
            total += Math.Max(0, Seek(handle, 0, 2 /* SEEK_END */));
            Close(handle);
        }
        return total;
    }

    [DllImport("libc", EntryPoint = "open")]
    private static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "lseek")]
    private static extern long Seek(int fd, long offset, int whence);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);

    private static (int Status, TimeSpan Elapsed) TimedFast(int port)
    {
        var clock = Stopwatch.StartNew();
        var r = Http.Get(port, "/fast");
        return (r.Status, clock.Elapsed);
    }

    private static JsonElement Stats(int port) => JsonDocument.Parse(Http.Get(port, "/stats").Body).RootElement.Clone();

    private static long Metric(ServerProcess server, string sample)
    {
        var port = int.Parse(MetricsLine.Match(server.WaitForOutput(MetricsLine, TimeSpan.FromSeconds(30)))
            .Groups[1].Value);
        var line = Http.Get(port, "/metrics").BodyText.Split('\n').Single(l => l.StartsWith(sample + " "));
        return long.Parse(line[(sample.Length + 1)..]);
    }

    private static long DroppedMetric(ServerProcess server, string reason) =>
        Metric(server, $"sharpwsgi_slow_clients_dropped_total{{reason=\"{reason}\"}}");

    private static string[] DropLines(ServerProcess server) =>
        server.Output.Split('\n').Where(l => l.Contains(Dropped)).ToArray();

    /// <summary>True once the server has closed the connection: what is left in the socket buffer is read (and
    /// thrown away) until the end or a reset. Polls only what is there: the caller's loop decides how long.</summary>
    private static bool ClosedByServer(Socket socket)
    {
        var sink = new byte[64 * 1024];
        try
        {
            while (socket.Poll(0, SelectMode.SelectRead))
                if (socket.Receive(sink) == 0) return true;
            return false;
        }
        catch (SocketException) { return true; } // reset
        catch (ObjectDisposedException) { return true; }
    }

    /// <summary>Polls until the condition holds; a poll interval, not synchronisation.</summary>
    private static void WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"{what} did not happen within {timeout}");
            Thread.Sleep(50); // poll interval of a bounded wait on the condition
        }
    }

    [Fact]
    public void NonReaders_WholeResponsesSpooled_DroppedAfterSendTimeoutWithOneLogLineEachAndCounted()
    {
        const int clients = 4;
        var tmp = WorkerTestSupport.TempDir("watchdog");
        try
        {
            using var server = ServerProcess.Start(new[]
            {
                "--threads", "4", "--send-timeout", "2", "--tmp-dir", tmp, "--metrics-bind", "127.0.0.1:0", App,
            });
            var sockets = Enumerable.Range(0, clients).Select(_ => Connect(server.Port, 4096)).ToList();
            try
            {
                var clock = Stopwatch.StartNew();
                foreach (var s in sockets)
                    s.Send(Encoding.ASCII.GetBytes("GET /stream?mb=8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
                // 8 MiB fits the spool: Python finishes every response and never waits; only the watchdog can
                // drop these clients.
                WaitUntil(() => Stats(server.Port).GetProperty("stream_closed").GetInt32() == clients,
                    TimeSpan.FromSeconds(30), "Python finishing the streams");
                var held = SpoolBytes(server);
                Assert.True(held > 4L << 20, $"the unread responses should be spooled, {held} bytes are");
                var slowest = TimeSpan.Zero;
                WaitUntil(() =>
                {
                    var (status, elapsed) = TimedFast(server.Port);
                    Assert.Equal(200, status);
                    if (elapsed > slowest) slowest = elapsed;
                    return SpoolBytes(server) == 0;
                }, TimeSpan.FromSeconds(20), "the spool files being closed");
                var freedAfter = clock.Elapsed;
                WaitUntil(() => sockets.All(ClosedByServer), TimeSpan.FromSeconds(10), "the connections closing");
                _out.WriteLine($"spool held {held / 1048576.0:F1} MiB, freed after {freedAfter.TotalSeconds:F1} s; " +
                    $"slowest side request {slowest.TotalMilliseconds:F0} ms");
                Assert.True(freedAfter > TimeSpan.FromSeconds(1.5), $"dropped after {freedAfter}: before the timeout");
                Assert.True(slowest < TimeSpan.FromSeconds(1), $"a side request took {slowest}");

                // One info line per connection, naming it, and the counter agrees.
                var lines = DropLines(server);
                _out.WriteLine(string.Join("\n", lines));
                Assert.Equal(clients, lines.Length);
                foreach (var s in sockets)
                    Assert.Single(lines, l => l.Contains("[INFO]") && l.Contains("(--send-timeout 2)") &&
                        l.EndsWith($"127.0.0.1:{LocalPort(s)}"));
                Assert.Equal(clients, DroppedMetric(server, "send_timeout"));
                Assert.Equal(0, DroppedMetric(server, "min_download_rate"));
            }
            finally
            {
                foreach (var s in sockets) s.Dispose();
            }
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    [Fact]
    public void NonReaders_PastTheSpoolTotal_HeldSpoolStaysWithinItFreedAfterSendTimeoutAndAReaderServed()
    {
        const int clients = 4;
        const long total = 16L << 20;
        var tmp = WorkerTestSupport.TempDir("watchdog-total");
        try
        {
            using var server = ServerProcess.Start(new[]
            {
                // Past the total a Python thread waits for its client (at most --send-timeout): two spare threads
                // answer the side requests meanwhile.
                "--threads", "6", "--send-timeout", "2", "--response-spool-total", "16m", "--tmp-dir", tmp,
                "--metrics-bind", "127.0.0.1:0", App,
            });
            var sockets = Enumerable.Range(0, clients).Select(_ => Connect(server.Port, 4096)).ToList();
            try
            {
                var clock = Stopwatch.StartNew();
                foreach (var s in sockets)
                    s.Send(Encoding.ASCII.GetBytes("GET /stream?mb=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
                // A client that reads, once the others hold the whole total: its response waits for room (not its
                // fault, so it is not dropped), and gets it when the watchdog drops them.
                WaitUntil(() => Metric(server, "sharpwsgi_buffered_response_bytes") > total - (1 << 20),
                    TimeSpan.FromSeconds(10), "the non-readers filling the spool total");
                var reader = Task.Run(() =>
                {
                    using var c = new RawHttp(server.Port, TimeSpan.FromSeconds(60));
                    c.Send("GET /stream?mb=32 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                    return c.ReadResponse().Body.LongLength;
                });
                long peak = 0, peakUnsent = 0;
                var slowest = TimeSpan.Zero;
                WaitUntil(() => (peak = Math.Max(peak, SpoolBytes(server))) > 0, TimeSpan.FromSeconds(10),
                    "spooling");
                WaitUntil(() =>
                {
                    var (status, elapsed) = TimedFast(server.Port);
                    Assert.Equal(200, status);
                    if (elapsed > slowest) slowest = elapsed;
                    var held = SpoolBytes(server);
                    peak = Math.Max(peak, held);
                    peakUnsent = Math.Max(peakUnsent, Metric(server, "sharpwsgi_buffered_response_bytes"));
                    return held == 0;
                }, TimeSpan.FromSeconds(20), "the spool files being closed");
                var freedAfter = clock.Elapsed;
                WaitUntil(() => sockets.All(ClosedByServer), TimeSpan.FromSeconds(10), "the connections closing");
                // Python gave up on all four (woken by the watchdog's abort), and finished the reader's.
                WaitUntil(() => Stats(server.Port).GetProperty("stream_closed").GetInt32() == clients + 1,
                    TimeSpan.FromSeconds(30), "Python closing the streams");
                Assert.Equal(32L << 20, reader.GetAwaiter().GetResult());
                _out.WriteLine($"peak spool {peak / 1048576.0:F2} MiB on disk, {peakUnsent / 1048576.0:F2} MiB " +
                    $"unsent; freed after {freedAfter.TotalSeconds:F1} s; slowest side request " +
                    $"{slowest.TotalMilliseconds:F0} ms\n{string.Join("\n", DropLines(server))}");
                // The cap counts bytes not sent yet. A spool file also keeps what its pump has already moved into
                // the connection's buffers (Kestrel's --response-buffer-size, the kernel's send buffer) until the
                // response ends.
                Assert.True(peakUnsent <= total, $"unsent spool {peakUnsent} bytes");
                var sendBuffer = long.Parse(File.ReadAllText("/proc/sys/net/ipv4/tcp_wmem").Split('\t')[2]);
                Assert.True(peak <= total + (clients + 1) * ((1 << 20) + sendBuffer), $"peak spool {peak} bytes");
                Assert.True(slowest < TimeSpan.FromSeconds(1), $"a side request took {slowest}");
                // The Python threads waiting for room in the total give the watchdog time to drop the clients that
                // hold it: each is logged and counted once.
                Assert.Equal(clients, DropLines(server).Length);
                Assert.Equal(clients, DroppedMetric(server, "send_timeout"));
            }
            finally
            {
                foreach (var s in sockets) s.Dispose();
            }
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    /// <summary>Reads a chunked response of mb MiB of 'x' in reads of at most `read` bytes, one every `pause`;
    /// returns the body bytes, or -1 when the server closed the connection first.</summary>
    private static long PacedRead(Socket socket, int read, TimeSpan pause, TimeSpan limit)
    {
        socket.ReceiveTimeout = (int)limit.TotalMilliseconds;
        var raw = new MemoryStream();
        var buffer = new byte[read];
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            int n;
            try { n = socket.Receive(buffer); }
            catch (SocketException) { return -1; }
            if (n == 0) return -1;
            raw.Write(buffer, 0, n);
            if (raw.Length >= 5 && raw.GetBuffer().AsSpan((int)raw.Length - 5, 5).SequenceEqual("0\r\n\r\n"u8))
                return Dechunk(raw.ToArray());
            Thread.Sleep(pause); // pacing of a slow reader (the behaviour under test), not a synchronisation
        }
        throw new TimeoutException($"the response did not end within {limit}");
    }

    private static long Dechunk(byte[] raw)
    {
        var text = Encoding.Latin1.GetString(raw);
        var at = text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4;
        Assert.StartsWith("HTTP/1.1 200", text);
        long body = 0;
        while (true)
        {
            var end = text.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = Convert.ToInt32(text[at..end], 16);
            if (size == 0) return body;
            Assert.True(text.AsSpan(end + 2, size).IndexOfAnyExcept('x') < 0, "the body should be the app's bytes");
            body += size;
            at = end + 2 + size + 2;
        }
    }

    [Fact]
    public void MinDownloadRate_SteadyReaderAboveItKeptAndSlowReaderBelowItDroppedAfterGrace()
    {
        using var server = ServerProcess.Start(new[]
        {
            "--threads", "2", "--min-download-rate", "32k", "--min-rate-grace", "2", "--send-timeout", "30",
            "--metrics-bind", "127.0.0.1:0", App,
        });
        // Keep-alive, so the server keeps the connection (and watches it) until the client has taken everything:
        // with Connection: close it would hand the last megabytes to the kernel and close, and they would no longer
        // be the worker's concern.
        const string request = "GET /stream?mb=4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        using var steady = Connect(server.Port, 64 << 10);
        using var slow = Connect(server.Port, 16 << 10); // little to read once dropped
        steady.Send(Encoding.ASCII.GetBytes(request));
        slow.Send(Encoding.ASCII.GetBytes(request));
        var clock = Stopwatch.StartNew();
        // ~400 KB/s against ~10 KiB/s, with 32 KB/s the limit.
        var steadyRead = Task.Run(() => PacedRead(steady, 64 << 10, TimeSpan.FromMilliseconds(100),
            TimeSpan.FromSeconds(60)));
        var slowRead = Task.Run(() => PacedRead(slow, 2 << 10, TimeSpan.FromMilliseconds(200),
            TimeSpan.FromSeconds(60)));
        Assert.Equal(-1, slowRead.GetAwaiter().GetResult());
        var slowGone = clock.Elapsed;
        Assert.Equal(4L << 20, steadyRead.GetAwaiter().GetResult());
        _out.WriteLine($"slow reader dropped after {slowGone.TotalSeconds:F1} s, steady reader done after " +
            $"{clock.Elapsed.TotalSeconds:F1} s\n{string.Join("\n", DropLines(server))}");
        var line = Assert.Single(DropLines(server));
        Assert.Contains("(--min-download-rate 32", line);
        Assert.EndsWith($"127.0.0.1:{LocalPort(slow)}", line);
        Assert.Equal(1, DroppedMetric(server, "min_download_rate"));
        Assert.Equal(0, DroppedMetric(server, "send_timeout"));
    }

    /// <summary>HTTP/2 (h2c with prior knowledge, and h2 by ALPN over TLS): a client that stops reading the whole
    /// connection is dropped by the connection rule (tests/clients/h2_raw.py nonreader).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Http2_ConnectionNonReader_DroppedAfterSendTimeout(bool tls)
    {
        using var certs = tls ? new TestCertificates() : null;
        var args = new List<string> { "--send-timeout", "2" };
        if (certs != null) args.AddRange(new[] { "--certfile", certs.ServerCert, "--keyfile", certs.ServerKey });
        args.Add(App);
        using var server = ServerProcess.Start(args);
        var client = new List<string>
        {
            Path.Combine(ServerProcess.RepoRoot, "tests", "clients", "h2_raw.py"), "nonreader",
            "--port", server.Port.ToString(), "--path", "/stream?mb=64", "--wait", "5",
        };
        if (certs != null) client.AddRange(new[] { "--ca", certs.CaCert });
        var run = Proc.Run(Interpreters.SystemPython, client, TimeSpan.FromSeconds(60));
        _out.WriteLine($"h2_raw nonreader -> {run.Stdout.Trim()} {run.Stderr.Trim()}");
        Assert.True(run.ExitCode == 0, $"h2_raw failed: {run.Stderr}\n{server.Output}");
        var result = JsonDocument.Parse(run.Stdout).RootElement;
        Assert.True(result.GetProperty("closed").GetBoolean(), "the server kept the connection");
        var port = result.GetProperty("port").GetInt32();
        var line = server.WaitForOutput(new Regex(Regex.Escape(Dropped) + @".*127\.0\.0\.1:" + port + "$"),
            TimeSpan.FromSeconds(10));
        Assert.Contains("(--send-timeout 2)", line);
    }

    /// <summary>A static file the client never reads: with sendfile, copied through Kestrel (--no-sendfile), and
    /// over TLS.</summary>
    [Theory]
    [InlineData("sendfile")]
    [InlineData("copy")]
    [InlineData("tls")]
    public void StaticFile_NonReader_DroppedAfterSendTimeout(string path)
    {
        var dir = WorkerTestSupport.TempDir("watchdog-static");
        using var certs = path == "tls" ? new TestCertificates() : null;
        try
        {
            using (var file = File.Create(Path.Combine(dir, "big.bin"))) file.SetLength(64L << 20);
            var args = new List<string> { "--send-timeout", "2", "--static", $"/static/={dir}" };
            if (path == "copy") args.Add("--no-sendfile");
            if (certs != null) args.AddRange(new[] { "--certfile", certs.ServerCert, "--keyfile", certs.ServerKey });
            args.Add(App);
            using var server = ServerProcess.Start(args);
            using var socket = Connect(server.Port, 4096);
            var request = Encoding.ASCII.GetBytes("GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
            using var network = new NetworkStream(socket, ownsSocket: false);
            using var tls = certs == null ? null : new SslStream(network, false, (_, _, _, _) => true);
            if (tls != null)
            {
                tls.AuthenticateAsClient("localhost");
                tls.Write(request);
                tls.Flush();
            }
            else socket.Send(request);
            var clock = Stopwatch.StartNew();
            var line = server.WaitForOutput(new Regex(Regex.Escape(Dropped) + @".*127\.0\.0\.1:" + LocalPort(socket)),
                TimeSpan.FromSeconds(20));
            _out.WriteLine($"{path}: dropped after {clock.Elapsed.TotalSeconds:F1} s: {line}");
            Assert.Contains("(--send-timeout 2)", line);
            WaitUntil(() => ClosedByServer(socket), TimeSpan.FromSeconds(10), "the connection closing");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
