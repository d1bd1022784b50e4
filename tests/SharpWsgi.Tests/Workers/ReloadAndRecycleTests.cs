using System.Diagnostics;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// Replacing workers without dropping a request: HUP under load (the app is imported afresh), recycling after
/// --max-requests under keep-alive load, --max-lifetime, --max-rss, and --reload on a changed .py file.
/// </summary>
[Collection("Workers")]
public sealed class ReloadAndRecycleTests : WorkerTestBase
{
    public ReloadAndRecycleTests(ITestOutputHelper output) : base(output) { }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Hup_UnderLoad_NoFailedRequestsOldPidsGoneNewPidsServeReimportedApp(bool reusePort)
    {
        var dir = TempDir("hup");
        try
        {
            var versionFile = Path.Combine(dir, "version.txt");
            File.WriteAllText(versionFile, "v1\n");
            var args = new List<string> { "-w", "2", "--graceful-timeout", "5", PidApp };
            if (reusePort) args.Insert(0, "--reuse-port");
            using var server = Start(args,
                new Dictionary<string, string?> { ["WORKERS_TEST_VERSION_FILE"] = versionFile });
            var oldPids = ReadyPids(server);
            var before = Info(server);
            Assert.Equal("v1", before.GetProperty("version").GetString());

            const int connections = 6;
            using var load = new LoadLoop(server.Port, connections, maxRequests: 200_000,
                maxDuration: TimeSpan.FromSeconds(25));
            Assert.True(load.WaitUntil(l => l.Succeeded >= 200, TimeSpan.FromSeconds(10)), load.Summary());
            // Usually the connections reach both old workers; with --reuse-port the kernel's hash may put all on one.
            if (!load.WaitUntil(l => l.Pids.Count == 2, TimeSpan.FromSeconds(3)))
                Out.WriteLine("note: the load's connections all reached one worker before the HUP: " + load.Summary());

            File.WriteAllText(versionFile, "v2\n");
            var hupAtMs = load.ElapsedMs;
            var clock = Stopwatch.StartNew();
            Signals.Send(server.Pid, Signals.SIGHUP);
            server.WaitForOutput("Handling signal: hup", LogTimeout);
            foreach (var old in oldPids)
                server.WaitForOutput($@"Worker exited \(pid: {old}, exit code 0\)", LogTimeout);
            var oldGone = clock.Elapsed;
            var newPids = WorkerProcesses(server);
            Assert.Equal(2, newPids.Count);
            Assert.Empty(newPids.Intersect(oldPids));
            // The load goes on, now answered by the new workers only (the old ones closed its connections cleanly).
            var goneAtMs = load.ElapsedMs;
            Assert.True(load.WaitUntil(
                    l => l.Completed > 0 && newPids.Any(p => l.ServedSince(p, goneAtMs + 200)) || l.Finished,
                    TimeSpan.FromSeconds(10)),
                "the load is not answered by the new workers: " + load.Summary() + "\n" + server.Output);
            load.Stop();

            Out.WriteLine($"HUP: old workers {string.Join(",", oldPids)} " +
                $"gone after {oldGone.TotalMilliseconds:F0} ms; new {string.Join(",", newPids)}");
            Out.WriteLine($"failed requests: {load.Failed}; {load.Summary()}");

            if (!reusePort) Assert.Equal(0, load.Failed);
            else
            {
                // Documented limit of --reuse-port (docs/operating.md): a retiring worker's own SO_REUSEPORT socket may
                // still hold connections the kernel queued on it when it closes; those (and only those: fresh
                // connections) are reset.
                Assert.True(load.Failed <= 6,
                    $"{load.Failed} failures with --reuse-port: " + string.Join("; ", load.Errors));
                Assert.All(load.Errors, e => Assert.Contains("new connection", e));
            }
            foreach (var old in oldPids)
            {
                Assert.False(Signals.IsAlive(old), $"old worker {old} is alive");
                server.WaitForOutput($@"Stopping worker \(pid: {old}\): replaced by \d+", LogTimeout);
            }
            // Every answer came from an old worker with the old module or a new worker with the new one.
            Assert.All(load.Pids.Values, s => Assert.Equal(oldPids.Contains(s.Pid) ? "v1" : "v2", s.Version));
            Assert.All(load.Pids.Keys,
                p => Assert.True(oldPids.Contains(p) || newPids.Contains(p), $"pid {p} served the load"));
            Assert.True(load.Pids.Keys.Any(newPids.Contains), load.Summary());
            // Both new workers serve fresh connections (the load's keep-alive connections stay where they landed).
            foreach (var pid in newPids) PollUntilServedBy(server, pid, TimeSpan.FromSeconds(10));
            var after = Info(server);
            Assert.Equal("v2", after.GetProperty("version").GetString());
            Assert.NotEqual(before.GetProperty("import_id").GetString(), after.GetProperty("import_id").GetString());
            Assert.DoesNotContain("died unexpectedly", server.Output);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Hup_ConfigFileChanged_NewSettingsApplied()
    {
        var dir = TempDir("hup-config");
        try
        {
            var config = Path.Combine(dir, "sharpwsgi.conf");
            File.WriteAllText(config, "workers = 1\n");
            using var server = Start(new[] { "-c", config, PidApp });
            var old = ReadyPids(server).Single();
            Assert.False(Info(server).GetProperty("multiprocess").GetBoolean());

            File.WriteAllText(config, "workers = 2\n");
            Signals.Send(server.Pid, Signals.SIGHUP);
            server.WaitForOutput($@"Worker exited \(pid: {old}, exit code 0\)", LogTimeout);
            var now = WaitForWorkerCount(server, 2, LogTimeout);
            Assert.DoesNotContain(old, now);
            foreach (var pid in now) PollUntilServedBy(server, pid, TimeSpan.FromSeconds(10));
            Assert.True(Info(server).GetProperty("multiprocess").GetBoolean());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Hup_AppNoLongerImports_OldWorkersKeepServingWithoutRespawnLoop()
    {
        var dir = TempDir("hup-broken");
        try
        {
            var versionFile = Path.Combine(dir, "version.txt");
            File.WriteAllText(versionFile, "v1\n");
            using var server = Start(new[] { "-w", "2", PidApp },
                new Dictionary<string, string?> { ["WORKERS_TEST_VERSION_FILE"] = versionFile });
            var oldPids = ReadyPids(server);

            File.WriteAllText(versionFile, "broken\n");
            Signals.Send(server.Pid, Signals.SIGHUP);
            server.WaitForOutput("A new worker failed to boot", LogTimeout);
            // Both replacements fail (bounded poll on the log): the old workers stay.
            var clock = Stopwatch.StartNew();
            while (CountMatches(server.Output, "A new worker failed to boot") < 2 && clock.Elapsed < LogTimeout)
                Assert.Contains(PidOf(Info(server)), oldPids);
            var output = server.Output;
            Assert.True(CountMatches(output, "A new worker failed to boot") >= 2, output);
            Assert.Contains("RuntimeError: workers-test: pid_app refuses to import version \"broken\"", output);

            // The old workers serve the old module on; the supervisor neither exits nor respawns in a loop.
            var seen = new HashSet<int>();
            for (int i = 0; i < 40 && seen.Count < 2; i++)
            {
                var info = Info(server);
                Assert.Equal("v1", info.GetProperty("version").GetString());
                seen.Add(PidOf(info));
            }
            Assert.Equal(oldPids.OrderBy(p => p), seen.OrderBy(p => p));
            Assert.False(server.HasExited);
            Assert.Equal(oldPids.OrderBy(p => p), WorkerProcesses(server).OrderBy(p => p));
            output = server.Output;
            Assert.Equal(4, CountMatches(output, @"Started worker \(pid: \d+\)")); // 2 at start, 2 for the HUP
            Assert.DoesNotContain("Stopping worker", output);

            // Fixed, and HUP again: now the new workers take over.
            File.WriteAllText(versionFile, "v3\n");
            Signals.Send(server.Pid, Signals.SIGHUP);
            foreach (var old in oldPids)
                server.WaitForOutput($@"Worker exited \(pid: {old}, exit code 0\)", LogTimeout);
            Assert.Equal("v3", Info(server).GetProperty("version").GetString());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MaxRequests_UnderKeepAliveLoad_NoFailedRequestsAndPidsChange()
    {
        using var server = Start(new[]
            { "-w", "2", "--max-requests", "300", "--max-requests-jitter", "50", "--graceful-timeout", "5", PidApp });
        var firstPids = ReadyPids(server);
        const int connections = 4;
        using var load = new LoadLoop(server.Port, connections, maxRequests: 30_000,
            maxDuration: TimeSpan.FromSeconds(25));
        // Both original workers recycled, and their replacements serving the load.
        var recycled = load.WaitUntil(l =>
            firstPids.All(p => server.Output.Contains($"Worker exited (pid: {p}, exit code 0)")) &&
            l.Pids.Keys.Count(p => !firstPids.Contains(p)) >= 2, TimeSpan.FromSeconds(25));
        load.Stop();
        var output = server.Output;
        Out.WriteLine($"failed requests: {load.Failed}; {load.Summary()}");

        Assert.True(recycled, "the original workers were not both recycled and replaced under load: " + load.Summary());
        Assert.Equal(0, load.Failed);
        foreach (var pid in firstPids)
            Assert.Matches($@"Recycling worker \(pid: {pid}\): served 3\d\d requests \(--max-requests\); " +
                @"starting its replacement", output);
        Assert.True(load.Pids.Count >= 4, "pids seen: " + string.Join(",", load.Pids.Keys));
        // Each recycled worker served at least --max-requests (it keeps serving until its replacement is ready).
        foreach (var pid in firstPids) Assert.True(load.Pids[pid].Count >= 300 / 2, load.Summary());
        Assert.DoesNotContain("died unexpectedly", output);
        Assert.DoesNotContain("did not finish within the graceful timeout", output);
    }

    [Fact]
    public void MaxLifetime_Short_WorkerReplacedByOneThatServes()
    {
        using var server = Start(new[] { "-w", "1", "--max-lifetime", "1", PidApp });
        var first = ReadyPids(server).Single();
        server.WaitForOutput($@"Recycling worker \(pid: {first}\): ran 1s \(--max-lifetime\)", LogTimeout);
        var next = WaitForNewReadyWorker(server, new[] { first });
        server.WaitForOutput($@"Worker exited \(pid: {first}, exit code 0\)", LogTimeout);
        // Its replacement serves (it may itself be recycled a second later: any new pid will do).
        var served = PidOf(Info(server));
        Assert.NotEqual(first, served);
        Out.WriteLine($"{first} replaced by {next}; served by {served}");
    }

    [Fact]
    public void MaxRss_BelowTheWorkersSize_WorkerReplacedByOneThatServes()
    {
        // Every worker is bigger than 1 MiB, so the first one is recycled as soon as it is ready.
        using var server = Start(new[] { "-w", "1", "--max-rss", "1", PidApp });
        var first = ReadyPids(server).Single();
        server.WaitForOutput($@"Recycling worker \(pid: {first}\): resident memory \d+ MiB over --max-rss 1",
            LogTimeout);
        WaitForNewReadyWorker(server, new[] { first });
        server.WaitForOutput($@"Worker exited \(pid: {first}, exit code 0\)", LogTimeout);
        Assert.NotEqual(first, PidOf(Info(server)));
    }

    [Fact]
    public void Reload_AppFileChanged_NewWorkersImportTheNewCode()
    {
        var dir = TempDir("reload");
        try
        {
            var app = Path.Combine(dir, "reload_app.py");
            File.WriteAllText(app, AppSource("first"));
            using var server = Start(new[] { "-w", "2", "--reload", app });
            var oldPids = ReadyPids(server);
            Assert.Equal("first", Http.Get(server.Port, "/").BodyText);

            File.WriteAllText(app, AppSource("second"));
            server.WaitForOutput(@"Reloading: .*reload_app\.py changed", LogTimeout);
            foreach (var old in oldPids)
                server.WaitForOutput($@"Worker exited \(pid: {old}, exit code 0\)", LogTimeout);
            var newPids = WorkerProcesses(server);
            Assert.Equal(2, newPids.Count);
            Assert.Empty(newPids.Intersect(oldPids));
            for (int i = 0; i < 6; i++)
            {
                var r = Http.Get(server.Port, "/");
                Assert.Equal(200, r.Status);
                Assert.Equal("second", r.BodyText);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    private static string AppSource(string text) => $$"""
        def application(environ, start_response):
            body = b"{{text}}"
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        """;
}
