using System.Diagnostics;
using System.Text;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// Stopping: TERM lets an in-flight request finish and then exits 0; a request slower than --graceful-timeout
/// is cut off by killing its worker and the supervisor still exits; INT stops at once.
/// </summary>
[Collection("Workers")]
public sealed class ShutdownTests : WorkerTestBase
{
    public ShutdownTests(ITestOutputHelper output) : base(output) { }

    [Fact]
    public void Term_SlowRequestInFlight_RequestCompletesThenExitZero()
    {
        using var server = Start(new[] { "-w", "2", "--graceful-timeout", "10", PidApp });
        ReadyPids(server);
        const int size = 300_000;
        // A keep-alive request: the draining worker answers it in full, with Connection: close, then closes.
        var slow = new BackgroundRequest(server, $"/slow?s=1.5&size={size}", TimeSpan.FromSeconds(20), keepAlive: true);
        server.WaitForOutput("SLOW-START pid=", LogTimeout);

        var clock = Stopwatch.StartNew();
        Signals.Send(server.Pid, Signals.SIGTERM);
        server.WaitForOutput("Handling signal: term", LogTimeout);
        Assert.True(slow.Wait(TimeSpan.FromSeconds(25)), "the slow request did not finish");
        var (response, error) = (slow.Response, slow.Error);
        var answered = clock.Elapsed;
        var code = server.WaitForExit(TimeSpan.FromSeconds(15));
        var exited = clock.Elapsed;
        Out.WriteLine($"answered {answered.TotalMilliseconds:F0} ms after TERM " +
                      $"(Connection: {response?.Header("Connection")}; " +
                      $"closed {slow.ClosedAfter?.TotalMilliseconds.ToString("F0") ?? "never"} ms after it), " +
                      $"exit {code} after {exited.TotalMilliseconds:F0} ms");

        Assert.True(response != null, "the in-flight request failed: " + error);
        Assert.Equal(200, response!.Status);
        Assert.Equal(size, response.Body.Length);
        var expected = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("0123456789", size / 10)));
        Assert.True(expected.AsSpan().SequenceEqual(response.Body), "the body is not the app's");
        Assert.Equal("close", response.Header("Connection"));
        Assert.True(slow.ClosedAfter < TimeSpan.FromSeconds(2), "the connection was not closed after the response");
        Assert.Equal(0, code);
        Assert.Contains("Shutting down: Master", server.Output);
        Assert.Matches(@"Worker exited \(pid: \d+, exit code 0\)", server.Output);
        Assert.DoesNotContain("did not finish within the graceful timeout", server.Output);
        Assert.DoesNotContain(ProcessTree.WithDescendants(server.Pid), p => p != server.Pid && Signals.IsAlive(p));
    }

    [Fact]
    public void Term_NewConnectionDuringGracefulStop_RefusedPromptly()
    {
        using var server = Start(new[] { "-w", "1", "--graceful-timeout", "10", PidApp });
        ReadyPids(server);
        var slow = new BackgroundRequest(server, "/slow?s=3&size=10");
        server.WaitForOutput("SLOW-START pid=", LogTimeout);
        Signals.Send(server.Pid, Signals.SIGTERM);
        server.WaitForOutput(@"Worker \d+ stopping gracefully", LogTimeout);

        // The server no longer accepts: a new client is refused (or reset) at once, rather than left waiting in the
        // listen queue until the in-flight request is done and the process exits.
        var clock = Stopwatch.StartNew();
        string outcome;
        try
        {
            using var c = new RawHttp(server.Port, TimeSpan.FromSeconds(10));
            c.Send($"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            outcome = c.ReadResponse().StatusLine;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            outcome = "failed: " + e.Message;
        }
        var took = clock.Elapsed;
        var slowDone = slow.Wait(TimeSpan.FromSeconds(15));
        Out.WriteLine($"a connection made during the graceful stop: {outcome} after {took.TotalMilliseconds:F0} ms; " +
                      $"the in-flight request: {slow.Describe()} after {slow.Took.TotalMilliseconds:F0} ms");
        Assert.True(slowDone);
        Assert.Equal(200, slow.Response?.Status);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(15)));
        Assert.StartsWith("failed", outcome);
        Assert.True(took < TimeSpan.FromSeconds(1),
            $"the new connection waited {took.TotalMilliseconds:F0} ms (until the server exited) before it failed; " +
            "gunicorn closes its listeners on TERM");
    }

    [Fact]
    public void Term_RequestSlowerThanGracefulTimeout_WorkerKilledRequestFailsSupervisorExits()
    {
        using var server = Start(new[] { "-w", "1", "--graceful-timeout", "1", PidApp });
        var worker = ReadyPids(server).Single();
        var slow = new BackgroundRequest(server, "/slow?s=60&size=10");
        server.WaitForOutput($"SLOW-START pid={worker}", LogTimeout);

        var clock = Stopwatch.StartNew();
        Signals.Send(server.Pid, Signals.SIGTERM);
        var code = server.WaitForExit(TimeSpan.FromSeconds(15));
        var exited = clock.Elapsed;
        Assert.True(slow.Wait(TimeSpan.FromSeconds(10)), "the client still waits after the server exited");
        var (response, error) = (slow.Response, slow.Error);
        Out.WriteLine($"exit {code} after {exited.TotalMilliseconds:F0} ms; the slow request: " +
                       $"{(response != null ? response.StatusLine : error)}");

        Assert.True(response == null || response.Status != 200,
            "the 60 s request was answered 200 although it was cut off");
        Assert.True(exited < TimeSpan.FromSeconds(8),
            $"the supervisor took {exited.TotalSeconds:F1} s to exit with --graceful-timeout 1");
        Assert.True(exited >= TimeSpan.FromSeconds(0.9),
            $"the worker was stopped after {exited.TotalMilliseconds:F0} ms, before --graceful-timeout 1");
        Assert.Equal(0, code);
        Assert.Contains("Shutting down: Master", server.Output);
        Assert.False(Signals.IsAlive(worker), $"worker {worker} outlived its supervisor");
    }

    [Fact]
    public void Int_WithSlowRequestInFlight_FastStopWithoutWaiting()
    {
        using var server = Start(new[] { "-w", "2", "--graceful-timeout", "30", PidApp });
        var pids = ReadyPids(server);
        var slow = new BackgroundRequest(server, "/slow?s=60&size=10");
        server.WaitForOutput("SLOW-START pid=", LogTimeout);

        var clock = Stopwatch.StartNew();
        Signals.Send(server.Pid, Signals.SIGINT);
        var code = server.WaitForExit(TimeSpan.FromSeconds(15));
        var exited = clock.Elapsed;
        Out.WriteLine($"exit {code} after {exited.TotalMilliseconds:F0} ms");
        Assert.True(exited < TimeSpan.FromSeconds(5), $"INT took {exited.TotalSeconds:F1} s");
        Assert.Contains("Handling signal: int", server.Output);
        Assert.True(slow.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(slow.Response is not { Status: 200 }, "the 60 s request was answered 200 after INT");
        foreach (var pid in pids) Assert.False(Signals.IsAlive(pid), $"worker {pid} outlived its supervisor");
    }
}
