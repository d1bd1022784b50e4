using System.Diagnostics;
using System.Text;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

[CollectionDefinition("Leak", DisableParallelization = true)]
public sealed class LeakCollection { }

/// <summary>
/// Reference-count and memory leaks: 10k warm-up requests, then 100k over keep-alive connections. The resident
/// set of the server (the sharpwsgi process and its worker processes, summed) is recorded after the warm-up,
/// after 50k and at the end. Two bounds: the whole 100k may add less than <see cref="MaxGrowthBytes"/> (the
/// first tens of thousands of requests still grow the .NET heaps: 4–17 MB measured on a 2-core machine), and
/// the last 50k, past that settling, less than <see cref="MaxSecondHalfGrowthBytes"/> (0.1–2.5 MB measured).
/// So a leak of about 170 bytes or more per request fails (a leaked environ dict, start_response, input object
/// or body buffer is far bigger); a leak of one tiny object per request may pass. Runs alone (DisableParallelization).
/// </summary>
[Collection("Leak")]
public sealed class LeakTests
{
    private const int WarmUp = 10_000;
    private const int Measured = 100_000;
    private const int Connections = 4;
    private const long MaxGrowthBytes = 24L * 1024 * 1024;
    private const long MaxSecondHalfGrowthBytes = 8L * 1024 * 1024;

    private readonly ITestOutputHelper _out;
    public LeakTests(ITestOutputHelper output) => _out = output;

    [SkippableFact]
    public void HelloApp_100kKeepAliveRequests_ResidentMemoryStaysFlat()
    {
        using var server = ServerProcess.StartApp(Path.Combine(ServerProcess.ExamplesDir, "hello.py"));
        var request = Encoding.ASCII.GetBytes($"GET /hello?n=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\n" +
            "User-Agent: leak-test\r\nAccept: */*\r\n\r\n");
        var expected = Encoding.ASCII.GetBytes("Hello world!\n");
        Measure(server, request, body => body.AsSpan().SequenceEqual(expected));
    }

    /// <summary>The same with two interpreters (pyenv's 3.13, else 3.12): per-interpreter objects and decref queues
    /// must not grow either.</summary>
    [SkippableFact]
    public void HelloApp_TwoInterpreters_100kKeepAliveRequests_ResidentMemoryStaysFlat()
    {
        var python = Interpreters.FindPyenv(13, out var reason) ?? Interpreters.FindPyenv(12, out reason);
        if (python == null)
        {
            throw new SkipException($"{reason}");
        }
        using var server = ServerProcess.Start(new[]
            { "--python", python, "--interpreters", "2", Path.Combine(ServerProcess.ExamplesDir, "hello.py") });
        Assert.Contains("Serving with 2 Python interpreters", server.Output);
        var request = Encoding.ASCII.GetBytes($"GET /hello?n=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\n" +
            "User-Agent: leak-test\r\nAccept: */*\r\n\r\n");
        var expected = Encoding.ASCII.GetBytes("Hello world!\n");
        Measure(server, request, body => body.AsSpan().SequenceEqual(expected));
    }

    [SkippableFact]
    public void EchoApp_100kKeepAlivePostsWithBody_ResidentMemoryStaysFlat()
    {
        using var server = ServerProcess.StartApp(Path.Combine(ServerProcess.AppsDir, "echo_environ.py"));
        var body = new byte[1024];
        new Random(1).NextBytes(body);
        var head = $"POST /echo/path?query=string&x=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\n" +
                   "Content-Type: application/octet-stream\r\nX-Custom-One: first\r\nX-Custom-One: second\r\n" +
                   $"Cookie: a=1\r\nCookie: b=2\r\nContent-Length: {body.Length}\r\n\r\n";
        var request = Encoding.ASCII.GetBytes(head).Concat(body).ToArray();
        var marker = Encoding.ASCII.GetBytes($"\"body_len\": {body.Length}");
        Measure(server, request, response => response.AsSpan().IndexOf(marker) >= 0);
    }

    private void Measure(ServerProcess server, byte[] request, Func<byte[], bool> bodyOk)
    {
        var clients = Enumerable.Range(0, Connections)
            .Select(_ => new KeepAliveClient(server.Port, TimeSpan.FromSeconds(30))).ToList();
        try
        {
            var sw = Stopwatch.StartNew();
            Run(clients, request, WarmUp, bodyOk);
            var (afterWarmUp, warmDetail) = ProcessTree.TreeResidentBytes(server.Pid);
            _out.WriteLine($"warm-up: {WarmUp} requests in {sw.Elapsed.TotalSeconds:F1} s; " +
                $"RSS {Mb(afterWarmUp)} ({warmDetail})");

            sw.Restart();
            Run(clients, request, Measured / 2, bodyOk);
            var (middle, _) = ProcessTree.TreeResidentBytes(server.Pid);
            Run(clients, request, Measured / 2, bodyOk);
            var (atEnd, endDetail) = ProcessTree.TreeResidentBytes(server.Pid);
            var seconds = sw.Elapsed.TotalSeconds;
            var growth = atEnd - afterWarmUp;
            var secondHalf = atEnd - middle;
            _out.WriteLine($"measured: {Measured} requests in {seconds:F1} s ({Measured / seconds:F0} req/s); " +
                $"RSS {Mb(afterWarmUp)} -> {Mb(middle)} -> {Mb(atEnd)} ({endDetail})");
            _out.WriteLine(
                $"growth {Mb(growth)} (bound {Mb(MaxGrowthBytes)}), {(double)growth / Measured:F1} bytes/request; " +
                $"last 50k {Mb(secondHalf)} (bound {Mb(MaxSecondHalfGrowthBytes)}), " +
                $"{(double)secondHalf / (Measured / 2):F1} bytes/request");
            Assert.True(growth < MaxGrowthBytes,
                $"RSS grew by {Mb(growth)} over {Measured} requests ({Mb(afterWarmUp)} -> {Mb(atEnd)}), " +
                $"bound {Mb(MaxGrowthBytes)}");
            Assert.True(secondHalf < MaxSecondHalfGrowthBytes,
                $"RSS grew by {Mb(secondHalf)} over the last {Measured / 2} requests ({Mb(middle)} -> {Mb(atEnd)}), " +
                $"bound {Mb(MaxSecondHalfGrowthBytes)}");
            Assert.False(server.HasExited, "server exited during the run:\n" + server.Output);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    private static void Run(List<KeepAliveClient> clients, byte[] request, int total, Func<byte[], bool> bodyOk)
    {
        var perClient = total / clients.Count;
        var tasks = clients.Select(client => Task.Factory.StartNew(() =>
        {
            for (int i = 0; i < perClient; i++)
            {
                client.Send(request);
                var (status, body) = client.ReadResponse();
                if (status != 200 || !bodyOk(body))
                    throw new InvalidDataException($"request {i}: status {status}, " +
                        $"body {Encoding.Latin1.GetString(body.AsSpan(0, Math.Min(body.Length, 300)))}");
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
    }

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MB";
}
