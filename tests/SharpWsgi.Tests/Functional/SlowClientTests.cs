using System.Text.RegularExpressions;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using SharpWsgi.Tests.Workers;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Slow clients are absorbed by the host, never by Python: uploads are read ahead, responses are buffered and
/// spooled, live streams wait at most --send-timeout, and a worker whose threads all spin is recycled.
/// </summary>
public sealed class SlowClientTests
{
    private static readonly string App = Path.Combine(ServerProcess.AppsDir, "slow_clients.py");
    private readonly ITestOutputHelper _out;

    public SlowClientTests(ITestOutputHelper output) => _out = output;

    private static (int Status, string Body, TimeSpan Elapsed) TimedGet(int port, string target)
    {
        var clock = Stopwatch.StartNew();
        var r = RawHttp.Exchange(port, $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        return (r.Status, r.BodyText, clock.Elapsed);
    }

    private static JsonElement Stats(int port) => JsonDocument.Parse(TimedGet(port, "/stats").Body).RootElement.Clone();

    /// <summary>Polls until the condition holds; the side requests it makes are timed too.</summary>
    private static void WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > timeout) throw new TimeoutException($"{what} did not happen within {timeout}");
            Thread.Sleep(50); // a poll interval, not synchronisation: the condition is what is awaited
        }
    }

    /// <summary>Open spool files (unlinked, so their links end in "(deleted)") of the server's processes.</summary>
    private static int SpoolFiles(ServerProcess server) => Infrastructure.SpoolFiles.Open(server).Count;

    private static Socket Connect(int port, int receiveBuffer = 0)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer > 0) socket.ReceiveBufferSize = receiveBuffer;
        socket.Connect("127.0.0.1", port);
        return socket;
    }

    [Fact]
    public void SlowClients_UploadersAndNonReaders_SideRequestsStayFastAndPythonFinishes()
    {
        var tmp = WorkerTestSupport.TempDir("spool");
        using var server = ServerProcess.Start(new[] { "--threads", "2", "--tmp-dir", tmp, App });
        var baseline = ProcessTree.TreeResidentBytes(server.Pid).Total;
        var sockets = new List<Socket>();
        using var stop = new CancellationTokenSource();
        try
        {
            // 16 uploaders announce 1 MiB bodies and send 1 KiB a second.
            var uploaders = Enumerable.Range(0, 16).Select(_ => Connect(server.Port)).ToList();
            sockets.AddRange(uploaders);
            var kib = new byte[1024];
            foreach (var u in uploaders)
                u.Send(Encoding.ASCII.GetBytes(
                    "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\n\r\n"));
            var drip = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    foreach (var u in uploaders) u.Send(kib);
                    // Pacing of slow uploaders (1 KiB a second), not a synchronisation.
                    try { await Task.Delay(1000, stop.Token); } catch (OperationCanceledException) { }
                }
            });
            // 16 clients ask for 20 MiB streaming responses and never read.
            var readers = Enumerable.Range(0, 16).Select(_ => Connect(server.Port, receiveBuffer: 4096)).ToList();
            sockets.AddRange(readers);
            foreach (var r in readers)
                r.Send(Encoding.ASCII.GetBytes("GET /stream?mb=20 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));

            // Python produces the 320 MiB (real work, which requests queued behind it wait for) and is then done
            // with every stream, although no client has read it.
            var production = Stopwatch.StartNew();
            WaitUntil(() => Stats(server.Port).GetProperty("stream_closed").GetInt32() == 16,
                TimeSpan.FromSeconds(60), "Python finishing all 16 streams");
            production.Stop();
            var latencies = new List<TimeSpan>();
            for (int i = 0; i < 20; i++)
            {
                var (status, body, elapsed) = TimedGet(server.Port, "/fast");
                Assert.Equal(200, status);
                Assert.Equal("ok\n", body);
                latencies.Add(elapsed);
            }
            var spooled = SpoolFiles(server);
            var rss = ProcessTree.TreeResidentBytes(server.Pid);
            var stats = Stats(server.Port);
            _out.WriteLine($"Python done with the 16 streams after {production.Elapsed.TotalMilliseconds:F0} ms; " +
                $"side requests: {latencies.Count}, max {latencies.Max().TotalMilliseconds:F0} ms, " +
                $"median {latencies.OrderBy(l => l).ElementAt(latencies.Count / 2).TotalMilliseconds:F1} ms; " +
                $"open spool files {spooled}; RSS {rss.Total / 1048576.0:F1} MB " +
                $"(baseline {baseline / 1048576.0:F1}): {rss.Detail}; stats {stats}");
            Assert.True(latencies.Max() < TimeSpan.FromSeconds(1), $"a side request took {latencies.Max()}");
            Assert.Equal(0, stats.GetProperty("upload_done").GetInt32()); // no Python thread waited for an upload
            Assert.True(spooled > 0, "the non-readers' responses should be spooled");
            Assert.True(rss.Total - baseline < 120L << 20, $"RSS grew by {(rss.Total - baseline) / 1048576.0:F1} MB");

            // The clients go: their spool files are removed.
            stop.Cancel();
            drip.Wait();
            foreach (var s in readers) { s.LingerState = new LingerOption(true, 0); s.Close(); }
            WaitUntil(() => SpoolFiles(server) == 0, TimeSpan.FromSeconds(20), "spool files being removed");
        }
        finally
        {
            stop.Cancel();
            foreach (var s in sockets) s.Dispose();
            Directory.Delete(tmp, recursive: true);
        }
    }

    [Fact]
    public void LiveStream_ClientNeverReads_ThreadFreedAfterSendTimeout()
    {
        using var server = ServerProcess.Start(new[] { "--threads", "1", "--send-timeout", "2", App });
        using var reader = Connect(server.Port, receiveBuffer: 4096);
        reader.Send(Encoding.ASCII.GetBytes("GET /live?kb=65536 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        var first = new byte[1];
        Assert.Equal(1, reader.Receive(first)); // the stream has started: the only thread is in it
        var (status, body, elapsed) = TimedGet(server.Port, "/fast");
        _out.WriteLine($"/fast waited {elapsed.TotalSeconds:F2} s behind the live stream");
        Assert.Equal(200, status);
        Assert.True(elapsed > TimeSpan.FromSeconds(1.5), $"answered after {elapsed}: the live stream was buffered");
        Assert.True(elapsed < TimeSpan.FromSeconds(15),
            $"answered after {elapsed}: --send-timeout did not free the thread");
        Assert.Equal(1, Stats(server.Port).GetProperty("live_closed").GetInt32());
    }

    [Fact]
    public void LargeUpload_OneGiB_SpooledThenStreamedWithBoundedMemory()
    {
        const long size = 1L << 30;
        var tmp = WorkerTestSupport.TempDir("upload");
        try
        {
            using var server = ServerProcess.Start(new[] { "--threads", "2", "--tmp-dir", tmp, App });
            var baseline = ProcessTree.TreeResidentBytes(server.Pid).Total;
            using var c = new RawHttp(server.Port, TimeSpan.FromSeconds(120));
            c.Send($"POST /upload?block=262144 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n");
            var block = new byte[1 << 20];
            long peak = 0;
            for (long sent = 0; sent < size; sent += block.Length)
            {
                c.Send(block);
                if ((sent >> 20) % 64 == 0) peak = Math.Max(peak, ProcessTree.TreeResidentBytes(server.Pid).Total);
            }
            var r = c.ReadResponse();
            Assert.Equal(200, r.Status);
            Assert.Equal(size.ToString(), r.BodyText);
            _out.WriteLine($"peak RSS {peak / 1048576.0:F1} MB, baseline {baseline / 1048576.0:F1} MB");
            Assert.True(peak - baseline < 200L << 20, $"RSS grew by {(peak - baseline) / 1048576.0:F1} MB");
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    [Theory]
    [InlineData("1m")] // the server reads the body ahead: 408 before the app runs
    [InlineData("64k")] // the same, into a spool file (the body is larger than the buffer)
    [InlineData("0")]  // the body streams: the app's read raises OSError, and the answer is still 408
    public void SlowUpload_BelowMinUploadRate_Gets408AndTheAppNeverCompletes(string bodyBuffer)
    {
        using var server = ServerProcess.Start(new[]
        {
            "--min-upload-rate", "10000", "--min-rate-grace", "1.5", "--body-buffer-size", bodyBuffer, App,
        });
        using var c = new RawHttp(server.Port);
        c.Send("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n");
        c.Send(new byte[100]);
        var r = c.ReadResponse(); // the body never comes: the server gives up on it
        Assert.Equal(408, r.Status);
        Assert.Contains("--min-upload-rate", r.BodyText);
        Assert.Equal("close", r.Header("Connection"));
        Assert.Equal(0, Stats(server.Port).GetProperty("upload_done").GetInt32());
        // The log line may follow the answer by a moment: waited for, not read at once.
        if (bodyBuffer == "0")
            server.WaitForOutput(new Regex(@"the request body could not be read \(408"), TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData("1m")] // held in memory
    [InlineData("64k")] // spooled to a file
    public void UploadStall_AfterAFastStart_Gets408AfterSendTimeout(string bodyBuffer)
    {
        // Kestrel's --min-upload-rate averages over the whole body: 256 KiB at once buys a long stall (26 s at
        // 10,000 B/s, days at the default 240). Reading ahead, a stall of --send-timeout ends it.
        using var server = ServerProcess.Start(new[]
        {
            "--min-upload-rate", "10000", "--send-timeout", "2", "--body-buffer-size", bodyBuffer, App,
        });
        using var c = new RawHttp(server.Port, TimeSpan.FromSeconds(20));
        c.Send("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n");
        var clock = Stopwatch.StartNew();
        c.Send(new byte[256 * 1024]);
        var r = c.ReadResponse(); // then nothing more
        _out.WriteLine($"answered after {clock.Elapsed.TotalSeconds:0.0}s: {r.BodyText.Trim()}");
        Assert.Equal(408, r.Status);
        Assert.Contains("--send-timeout", r.BodyText);
        Assert.Equal("close", r.Header("Connection"));
        Assert.InRange(clock.Elapsed.TotalSeconds, 1.5, 10);
        Assert.Equal(0, Stats(server.Port).GetProperty("upload_done").GetInt32());
    }

    [Fact]
    public void SpooledResponse_ClientReadsLate_CompleteAndSpoolRemoved()
    {
        var tmp = WorkerTestSupport.TempDir("spool-end");
        try
        {
            using var server = ServerProcess.Start(new[] { "--threads", "1", "--tmp-dir", tmp, App });
            // Socket buffers are left as they are (a tiny receive window makes loopback crawl on delayed ACKs): 64 MiB
            // is far more than they and the 1 MiB in-memory buffer hold.
            using var c = new RawHttp(server.Port, TimeSpan.FromSeconds(60));
            c.Send("GET /stream?mb=64 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            WaitUntil(() => Stats(server.Port).GetProperty("stream_closed").GetInt32() == 1, TimeSpan.FromSeconds(30),
                "Python finishing the stream");
            Assert.True(SpoolFiles(server) > 0, "the unread rest of the response should be spooled");
            var r = c.ReadResponse(); // now the client reads it all
            Assert.Equal(200, r.Status);
            Assert.Equal(64L << 20, r.Body.LongLength);
            Assert.True(r.Body.All(b => b == (byte)'x'), "the body should be the app's bytes, in order");
            WaitUntil(() => SpoolFiles(server) == 0, TimeSpan.FromSeconds(10), "the spool file being removed");
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    [Fact]
    public void NoProgress_EveryThreadSpinning_WorkerRecycledAndServingAgain()
    {
        using var server = ServerProcess.Start(new[]
        {
            "--threads", "2", "--timeout", "2", "--request-timeout", "0", "--graceful-timeout", "1", App,
        });
        var firstWorker = WorkerTestSupport.ReadyPids(server).Single();
        var spinners = Enumerable.Range(0, 3).Select(_ => new RawHttp(server.Port)).ToList();
        try
        {
            foreach (var s in spinners) s.Send("GET /spin?s=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            server.WaitForOutput(@"No request finished for 2s while every Python thread is busy",
                TimeSpan.FromSeconds(30));
            server.WaitForOutput(@"^\s+GET /spin\?s=60 running for \d",
                TimeSpan.FromSeconds(10)); // what the threads hold
            WorkerTestSupport.WaitForNewReadyWorker(server, new[] { firstWorker });
            var (status, body, _) = TimedGet(server.Port, "/fast");
            Assert.Equal(200, status);
            Assert.Equal("ok\n", body);
        }
        finally
        {
            foreach (var s in spinners) s.Dispose();
        }
    }
}
