using System.Diagnostics;
using System.Text;
using SharpWsgi.Tests.Functional;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// --shutdown-delay, for load balancers (gunicorn #3397): after TERM the server keeps accepting and serving new
/// connections while /readyz answers 503, for the delay; then it closes its listeners and drains as before. A second
/// TERM ends the delay; INT never waits for it.
/// </summary>
[Collection("Workers")]
public sealed class ShutdownDelayTests : WorkerTestBase
{
    public ShutdownDelayTests(ITestOutputHelper output) : base(output) { }

    [Fact]
    public void Term_WithShutdownDelay_ServesNewConnectionsWhileReadyz503ThenRefuses()
    {
        const double delay = 4;
        using var server = Start(new[]
        {
            "-w", "1", "--shutdown-delay", "4", "--graceful-timeout", "10", "--metrics-bind", "127.0.0.1:0", PidApp,
        });
        var worker = ReadyPids(server).Single();
        var metricsPort = MetricsTests.MetricsPort(server);
        Assert.Equal(200, Http.Get(metricsPort, "/readyz").Status);
        using var keptAlive = new KeepAliveClient(server.Port, TimeSpan.FromSeconds(10));
        var request = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        keptAlive.Send(request);
        Assert.Equal(200, keptAlive.ReadResponse().Status);

        var clock = Stopwatch.StartNew();
        Signals.Send(server.Pid, Signals.SIGTERM);
        server.WaitForOutput(@"Handling signal: term; serving 4 s more", LogTimeout);
        Assert.Equal(503, Http.Get(metricsPort, "/readyz").Status);
        Assert.Equal(200, Http.Get(metricsPort, "/healthz").Status);

        // Well inside the delay, every new connection is still accepted and served, and so is the open one.
        var served = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(delay / 2))
        {
            Assert.Equal(worker, PidOf(Info(server)));
            served++;
        }
        keptAlive.Send(request);
        Assert.Equal(200, keptAlive.ReadResponse().Status);
        Assert.Equal(503, Http.Get(metricsPort, "/readyz").Status);
        // A request in flight when the listeners close keeps the worker (and the supervisor) up while it drains.
        var slow = new BackgroundRequest(server, "/slow?s=3&size=10");
        server.WaitForOutput("SLOW-START pid=", LogTimeout);

        server.WaitForOutput("Shutdown delay over: closing the listeners", LogTimeout);
        var closedAfter = clock.Elapsed;
        server.WaitForOutput($@"Worker {worker} stopping gracefully", LogTimeout);
        string refused;
        var attempt = Stopwatch.StartNew();
        try
        {
            using var late = new RawHttp(server.Port, TimeSpan.FromSeconds(10));
            late.Send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            refused = "answered: " + late.ReadResponse().StatusLine;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            refused = "failed: " + e.Message;
        }
        Out.WriteLine($"{served} fresh connections served during the delay; listeners closed after " +
            $"{closedAfter.TotalMilliseconds:F0} ms; a connection after that: {refused} in " +
            $"{attempt.ElapsedMilliseconds} ms; the in-flight request: {slow.Describe()}");

        Assert.True(served >= 3, $"only {served} requests were served during the delay");
        Assert.True(closedAfter >= TimeSpan.FromSeconds(delay - 0.1),
            $"the listeners closed {closedAfter.TotalMilliseconds:F0} ms after TERM, before the {delay} s delay");
        Assert.StartsWith("failed", refused);
        Assert.True(attempt.Elapsed < TimeSpan.FromSeconds(1), "the late connection waited instead of being refused");
        Assert.True(slow.Wait(TimeSpan.FromSeconds(15)));
        Assert.Equal(200, slow.Response?.Status);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public void Term_SecondTermDuringTheDelay_StopsAtOnce()
    {
        using var server = Start(new[] { "-w", "1", "--shutdown-delay", "60", PidApp });
        ReadyPids(server);
        var clock = Stopwatch.StartNew();
        Signals.Send(server.Pid, Signals.SIGTERM);
        server.WaitForOutput("Handling signal: term; serving 60 s more", LogTimeout);
        Info(server); // still serving

        Signals.Send(server.Pid, Signals.SIGTERM);
        server.WaitForOutput("Handling signal: term; the shutdown delay ends now", LogTimeout);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(15)));
        Out.WriteLine($"exited {clock.ElapsedMilliseconds} ms after the first TERM");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15));
        Assert.Contains("Shutting down: Master", server.Output);
    }

    [Fact]
    public void Int_WithShutdownDelay_FastStopWithoutTheDelay()
    {
        using var server = Start(new[] { "-w", "1", "--shutdown-delay", "60", PidApp });
        var worker = ReadyPids(server).Single();
        var clock = Stopwatch.StartNew();
        Signals.Send(server.Pid, Signals.SIGINT);
        server.WaitForExit(TimeSpan.FromSeconds(15));
        Out.WriteLine($"exited {clock.ElapsedMilliseconds} ms after INT");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"INT took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.DoesNotContain("more while /readyz", server.Output);
        Assert.True(WaitForProcessGone(worker, TimeSpan.FromSeconds(5)), $"worker {worker} outlived its supervisor");
    }
}
