using System.Diagnostics;
using System.Text;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

[CollectionDefinition("Leak", DisableParallelization = true)]
public sealed class LeakCollection { }

/// <summary>
/// Reference-count and memory leaks: 100k requests over keep-alive connections after a 10k warm-up; the
/// server's resident set may not grow by more than <see cref="MaxGrowthBytes"/> between the end of the
/// warm-up and the end of the run. A leak of one small object per request (a dict, a str, a bytes, an
/// environ value, ~50–200 bytes) over 100k requests is 5–20 MB, and anything larger shows well above the
/// bound. Runs alone (no other test loads the machine meanwhile).
/// </summary>
[Collection("Leak")]
public sealed class LeakTests
{
    private const int WarmUp = 10_000;
    private const int Measured = 100_000;
    private const int Connections = 4;
    private const long MaxGrowthBytes = 20L * 1024 * 1024;

    private readonly ITestOutputHelper _out;
    public LeakTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void HelloApp_100kKeepAliveRequests_ResidentMemoryStaysFlat()
    {
        using var server = ServerProcess.StartApp(Path.Combine(ServerProcess.ExamplesDir, "hello.py"));
        var request = Encoding.ASCII.GetBytes($"GET /hello?n=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\nUser-Agent: leak-test\r\nAccept: */*\r\n\r\n");
        var expected = Encoding.ASCII.GetBytes("Hello world!\n");
        Measure(server, request, body => body.AsSpan().SequenceEqual(expected));
    }

    [Fact]
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
        var clients = Enumerable.Range(0, Connections).Select(_ => new KeepAliveClient(server.Port, TimeSpan.FromSeconds(30))).ToList();
        try
        {
            var sw = Stopwatch.StartNew();
            Run(clients, request, WarmUp, bodyOk);
            var afterWarmUp = server.ResidentBytes();
            _out.WriteLine($"warm-up: {WarmUp} requests in {sw.Elapsed.TotalSeconds:F1} s; RSS {Mb(afterWarmUp)}");

            sw.Restart();
            Run(clients, request, Measured, bodyOk);
            var atEnd = server.ResidentBytes();
            var seconds = sw.Elapsed.TotalSeconds;
            var growth = atEnd - afterWarmUp;
            _out.WriteLine($"measured: {Measured} requests in {seconds:F1} s ({Measured / seconds:F0} req/s); RSS {Mb(afterWarmUp)} -> {Mb(atEnd)} (growth {Mb(growth)}, bound {Mb(MaxGrowthBytes)}; {(double)growth / Measured:F1} bytes/request)");
            Assert.True(growth < MaxGrowthBytes,
                $"RSS grew by {Mb(growth)} over {Measured} requests ({Mb(afterWarmUp)} -> {Mb(atEnd)}), bound {Mb(MaxGrowthBytes)}");
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
                    throw new InvalidDataException($"request {i}: status {status}, body {Encoding.Latin1.GetString(body.AsSpan(0, Math.Min(body.Length, 300)))}");
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(tasks);
    }

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MB";
}
