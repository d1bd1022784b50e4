using System.Diagnostics;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// --request-timeout (504 to the client, RequestTimeout raised in the stuck Python thread, the worker lives on),
/// --request-timeout-grace (a thread that does not come back gets its worker recycled) and --queue-timeout (503).
/// </summary>
[Collection("Workers")]
public sealed class RequestTimeoutTests : WorkerTestBase
{
    public RequestTimeoutTests(ITestOutputHelper output) : base(output) { }

    private static List<string> Interrupted(ServerProcess server, out int pid)
    {
        var json = Http.Json(Http.Get(server.Port, "/interrupted"));
        pid = json.GetProperty("pid").GetInt32();
        return json.GetProperty("interrupted").EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    [Fact]
    public void RequestTimeout_PurePythonLoop_504LoopInterruptedSameWorkerServesNext()
    {
        using var server = Start(new[] { "-w", "1", "--threads", "2", "--request-timeout", "1", PidApp });
        var worker = ReadyPids(server).Single();
        Assert.Equal(worker, PidOf(Info(server)));

        var clock = Stopwatch.StartNew();
        var r = Http.Get(server.Port, "/loop?s=30");
        var took = clock.Elapsed;
        Out.WriteLine($"/loop answered {r.StatusLine} after {took.TotalMilliseconds:F0} ms");
        Assert.Equal(504, r.Status);
        Assert.True(took >= TimeSpan.FromSeconds(0.9) && took < TimeSpan.FromSeconds(5),
            $"504 after {took.TotalMilliseconds:F0} ms");

        // The loop itself was stopped by RequestTimeout (the app recorded it), long before its 30 s were up.
        var interruptedLine = server.WaitForOutput(@"Timed-out request .* was interrupted by RequestTimeout",
            LogTimeout);
        var interrupted = Interrupted(server, out var pid);
        Assert.Equal(new[] { "/loop" }, interrupted);
        Assert.Equal(worker, pid);

        // The same worker serves on, on both of its threads; nothing was recycled or killed.
        for (int i = 0; i < 10; i++) Assert.Equal(worker, PidOf(Info(server)));
        Assert.True(took + clock.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Equal(new[] { worker }, WorkerProcesses(server));
        var output = server.Output;
        Assert.DoesNotContain("Recycling worker", output);
        Assert.DoesNotContain("WORKER TIMEOUT", output);
        Assert.DoesNotContain("died unexpectedly", output);
        // The log line names the request that was interrupted.
        Assert.Contains("Timed-out request GET /loop?s=30 was interrupted by RequestTimeout", interruptedLine);
    }

    [Fact]
    public void RequestTimeout_BlockedInTimeSleep_504AndOtherThreadsServeMeanwhile()
    {
        using var server = Start(new[]
            { "-w", "1", "--threads", "2", "--request-timeout", "1", "--request-timeout-grace", "10", PidApp });
        var worker = ReadyPids(server).Single();

        var sleeper = new BackgroundRequest(server, "/sleep?s=3");
        server.WaitForOutput($"SLEEP-START pid={worker}", LogTimeout);
        var clock = Stopwatch.StartNew();
        // While the sleeping thread holds its request, the other Python thread answers.
        var during = Info(server);
        Assert.Equal(worker, PidOf(during));

        Assert.True(sleeper.Wait(TimeSpan.FromSeconds(10)), "no answer to the sleeping request");
        var (response, error, took) = (sleeper.Response, sleeper.Error, sleeper.Took);
        Out.WriteLine($"/sleep?s=3 answered {(response?.StatusLine ?? error)} after {took.TotalMilliseconds:F0} ms");
        Assert.True(response != null, error);
        Assert.Equal(504, response!.Status);
        Assert.True(took < TimeSpan.FromSeconds(2.5),
            $"the 504 came after {took.TotalMilliseconds:F0} ms, not at the 1 s timeout");

        // The thread is still in time.sleep: other requests are served meanwhile, by the same worker.
        var servedWhileSleeping = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(1.8))
        {
            Assert.Equal(worker, PidOf(Info(server)));
            servedWhileSleeping++;
        }
        Assert.True(servedWhileSleeping > 0);
        // When time.sleep returns, the pending RequestTimeout ends the request in Python (the app records it).
        var interruptedLine = server.WaitForOutput(@"Timed-out request .* was interrupted by RequestTimeout",
            LogTimeout);
        Assert.Equal(new[] { "/sleep" }, Interrupted(server, out var pid));
        Assert.Equal(worker, pid);
        Assert.Equal(worker, PidOf(Info(server)));
        var output = server.Output;
        Out.WriteLine($"{servedWhileSleeping} requests served while the timed-out thread slept");
        Assert.DoesNotContain("Recycling worker", output);
        Assert.Equal(new[] { worker }, WorkerProcesses(server));
        Assert.Contains("Timed-out request GET /sleep?s=3 was interrupted by RequestTimeout", interruptedLine);
    }

    [Fact]
    public void RequestTimeoutGrace_ThreadDoesNotComeBack_WorkerRecycledAndReplacementServes()
    {
        using var server = Start(new[]
        {
            "-w", "1", "--threads", "2", "--request-timeout", "1", "--request-timeout-grace", "1",
            "--graceful-timeout", "2", PidApp,
        });
        var worker = ReadyPids(server).Single();
        var sleeper = new BackgroundRequest(server, "/sleep?s=60");
        server.WaitForOutput($"SLEEP-START pid={worker}", LogTimeout);
        Assert.True(sleeper.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(504, sleeper.Response?.Status);

        server.WaitForOutput($@"Recycling worker \(pid: {worker}\): a Python thread did not return", LogTimeout);
        var replacement = WaitForNewReadyWorker(server, new[] { worker });
        Assert.Equal(replacement, PollUntilServedByAny(server, worker));
        server.WaitForOutput($@"Worker exited \(pid: {worker}, ", LogTimeout);
        Assert.True(WaitForProcessGone(worker, TimeSpan.FromSeconds(10)), $"worker {worker} still alive");
        Assert.Equal(new[] { replacement }, WorkerProcesses(server));
    }

    /// <summary>Fresh GETs until one is answered by a pid other than the old one (bounded); returns that pid.</summary>
    private static int PollUntilServedByAny(ServerProcess server, int old)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            var pid = PidOf(Info(server));
            if (pid != old) return pid;
        }
        throw new TimeoutException("the old worker still answers every request\n" + server.Output);
    }

    [Fact]
    public void RequestTimeout_ImportedAtAppModuleTop_AppLoadsAndCatchesIt()
    {
        // "from sharpwsgi import RequestTimeout" at the top of the app module, where imports usually go.
        using var server = Start(new[]
        {
            "-w", "1", "--threads", "2", "--request-timeout", "1",
            Path.Combine(WorkerTestSupport.AppsDir, "timeout_import_app.py"),
        });
        var r = Http.Get(server.Port, "/loop");
        Assert.Equal(504, r.Status);
        var clock = Stopwatch.StartNew();
        List<string> caught;
        do caught = Http.Json(Http.Get(server.Port, "/")).GetProperty("caught").EnumerateArray()
            .Select(e => e.GetString()!).ToList();
        while (caught.Count == 0 && clock.Elapsed < TimeSpan.FromSeconds(10)); // bounded poll over HTTP
        Assert.Equal(new[] { "sharpwsgi.RequestTimeout" }, caught);
    }

    [Fact]
    public void QueueTimeout_OnlyThreadBusy_QueuedRequestGets503WithoutRunning()
    {
        using var server = Start(new[] { "-w", "1", "--threads", "1", "--queue-timeout", "0.5", PidApp });
        var worker = ReadyPids(server).Single();
        var slow = new BackgroundRequest(server, "/slow?s=1.5&size=10");
        server.WaitForOutput($"SLOW-START pid={worker}", LogTimeout);

        // Queued behind the slow request for ~1.5 s, past the 0.5 s queue timeout: 503, and the app never sees it.
        var queued = Http.Get(server.Port, "/log?m=queued-request-ran");
        Out.WriteLine($"queued: {queued.StatusLine} {queued.BodyText.Trim()}");
        Assert.Equal(503, queued.Status);
        Assert.Contains("waited too long", queued.BodyText);

        Assert.True(slow.Wait(TimeSpan.FromSeconds(10)));
        Assert.Equal(200, slow.Response?.Status);
        Assert.Equal(200, Http.Get(server.Port, "/").Status); // an unqueued request runs
        // The log line is written before the 503 goes out, but reaches this process through a pipe: wait for it.
        server.WaitForOutput("waited more than the queue timeout", LogTimeout);
        Assert.DoesNotContain("LOGGED: queued-request-ran", server.Output);
    }
}
