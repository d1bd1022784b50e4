using System.Diagnostics;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// The supervisor and its pool: N workers serve and share the connections, wsgi.multiprocess, TTIN/TTOU,
/// --pid, USR1 log reopening, and an app that cannot be imported (exit 4, no respawn loop).
/// </summary>
[Collection("Workers")]
public sealed class WorkerPoolTests : WorkerTestBase
{
    public WorkerPoolTests(ITestOutputHelper output) : base(output) { }

    /// <summary>Fresh connections (Connection: close) from a few concurrent clients; the pid that served each
    /// (negated when that response said wsgi.multiprocess False).</summary>
    private static Dictionary<int, int> SpreadOfFreshConnections(ServerProcess server, int clients,
        int requestsPerClient)
    {
        var counts = new Dictionary<int, int>();
        var errors = new List<Exception>();
        var threads = Enumerable.Range(0, clients).Select(_ => new Thread(() =>
        {
            try
            {
                for (int i = 0; i < requestsPerClient; i++)
                {
                    var info = Info(server);
                    var key = info.GetProperty("multiprocess").GetBoolean() ? PidOf(info) : -PidOf(info);
                    lock (counts) counts[key] = counts.GetValueOrDefault(key) + 1;
                }
            }
            catch (Exception e) { lock (errors) errors.Add(e); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.Count > 0) throw new AggregateException(errors);
        return counts;
    }

    /// <summary>Also: wsgi.multiprocess is True in every worker of two.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Workers_Two_FreshConnectionsSpreadAcrossBothPidsWithMultiprocessTrue(bool reusePort)
    {
        var args = new List<string> { "-w", "2" };
        if (reusePort) args.Add("--reuse-port");
        args.Add(PidApp);
        using var server = Start(args);
        var pids = ReadyPids(server);
        Assert.Equal(2, pids.Count);
        Assert.Equal(pids.OrderBy(p => p), WorkerProcesses(server).OrderBy(p => p));

        const int clients = 4, perClient = 50;
        var counts = SpreadOfFreshConnections(server, clients, perClient);
        Out.WriteLine($"{(reusePort ? "--reuse-port" : "shared socket")}: " +
                       string.Join(", ", counts.Select(kv => $"pid {kv.Key}: {kv.Value}")));
        Assert.Equal(clients * perClient, counts.Values.Sum());
        Assert.True(counts.Keys.All(p => p > 0), "wsgi.multiprocess was False in a worker of two");
        Assert.True(counts.Keys.All(pids.Contains),
            $"a pid that is not a worker answered: {string.Join(",", counts.Keys)}");
        // Both workers take a real share: at least 20% of the 200 connections each.
        foreach (var pid in pids)
            Assert.True(counts.GetValueOrDefault(pid) >= clients * perClient / 5,
                $"worker {pid} served {counts.GetValueOrDefault(pid)} of {clients * perClient} connections: " +
                string.Join(", ", counts.Select(kv => $"{kv.Key}: {kv.Value}")));
    }

    [Fact]
    public void Multiprocess_OneWorker_IsFalse()
    {
        using var server = Start(new[] { "-w", "1", PidApp });
        for (int i = 0; i < 3; i++)
        {
            var info = Info(server);
            Assert.False(info.GetProperty("multiprocess").GetBoolean());
            Assert.True(info.GetProperty("multithread").GetBoolean());
        }
    }

    [Fact]
    public void Multiprocess_TtinFromOneToTwoWorkers_TrueInBoth()
    {
        using var server = Start(new[] { "-w", "1", PidApp });
        var first = ReadyPids(server).Single();
        Signals.Send(server.Pid, Signals.SIGTTIN);
        var added = WaitForNewReadyWorker(server, new[] { first });
        var said = new Dictionary<int, bool>();
        var clock = Stopwatch.StartNew();
        while (said.Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(10)) // bounded: until both workers answered
        {
            var info = Info(server);
            said[PidOf(info)] = info.GetProperty("multiprocess").GetBoolean();
        }
        Out.WriteLine(string.Join(", ", said.Select(kv => $"pid {kv.Key}: wsgi.multiprocess {kv.Value}")));
        Assert.Equal(new[] { first, added }.OrderBy(p => p), said.Keys.OrderBy(p => p));
        // Two workers run the app now: wsgi.multiprocess is True in each, the one started with -w 1 included.
        Assert.True(said[added], "the added worker says wsgi.multiprocess False");
        Assert.True(said[first],
            $"worker {first} (started while it was alone) still says wsgi.multiprocess False while two workers run");
    }

    [Fact]
    public void TtinTtou_Signals_AddAndRetireOneWorker()
    {
        using var server = Start(new[] { "-w", "1", PidApp });
        var first = ReadyPids(server).Single();

        Signals.Send(server.Pid, Signals.SIGTTIN);
        server.WaitForOutput(@"Handling signal: ttin; workers: 2", LogTimeout);
        var added = WaitForNewReadyWorker(server, new[] { first });
        var two = WaitForWorkerCount(server, 2, LogTimeout);
        Assert.Equal(new[] { first, added }.OrderBy(p => p), two.OrderBy(p => p));
        PollUntilServedBy(server, added, TimeSpan.FromSeconds(10));

        Signals.Send(server.Pid, Signals.SIGTTOU);
        server.WaitForOutput(@"Handling signal: ttou; workers: 1", LogTimeout);
        // The oldest worker is the one retired, gracefully.
        server.WaitForOutput($@"Stopping worker \(pid: {first}\): fewer workers", LogTimeout);
        server.WaitForOutput($@"Worker exited \(pid: {first}, exit code 0\)", LogTimeout);
        Assert.Equal(new[] { added }, WaitForWorkerCount(server, 1, LogTimeout));
        for (int i = 0; i < 5; i++) Assert.Equal(added, PidOf(Info(server)));

        // TTOU never goes below one worker.
        Signals.Send(server.Pid, Signals.SIGTTOU);
        server.WaitForOutput(@"Handling signal: ttou; workers: 1(?!\d)", LogTimeout);
        Assert.Equal(added, PidOf(Info(server)));
        Assert.Equal(new[] { added }, WorkerProcesses(server));
    }

    [Fact]
    public void PidFile_Given_HoldsSupervisorPidAndIsRemovedAtExit()
    {
        var dir = TempDir("pidfile");
        try
        {
            var pidFile = Path.Combine(dir, "sharpwsgi.pid");
            using var server = Start(new[] { "-w", "2", "--pid", pidFile, PidApp });
            ReadyPids(server);
            Assert.True(File.Exists(pidFile), "no pid file at " + pidFile);
            Assert.Equal(server.Pid.ToString(), File.ReadAllText(pidFile).Trim());

            Signals.Send(server.Pid, Signals.SIGTERM);
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
            Assert.False(File.Exists(pidFile), "the pid file is left behind after a clean exit");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Usr1_ErrorLogFileMovedAway_SupervisorAndWorkerReopenIt()
    {
        var dir = TempDir("usr1");
        try
        {
            var log = Path.Combine(dir, "error.log");
            var rotated = Path.Combine(dir, "error.log.1");
            // The log goes to the file, so readiness is read from the file, not the process output.
            using var server = Start(new[] { "-w", "1", "--error-logfile", log, PidApp }, waitForListening: false);
            WaitForFileLine(log, new Regex(@"Ready: 1 worker\(s\) serving"), server);
            var port = int.Parse(Regex.Match(ReadShared(log), @"Listening at: http://127\.0\.0\.1:(\d+)")
                .Groups[1].Value);
            Assert.Equal(200, Http.Get(port, "/log?m=before-rotation").Status);
            WaitForFileLine(log, new Regex("before-rotation"), server);

            File.Move(log, rotated); // what logrotate does before it signals
            Signals.Send(server.Pid, Signals.SIGUSR1);
            // The supervisor reopens at once (the file reappears); the worker reopens when the forwarded USR1
            // reaches it: until then its lines still go to the moved file, so poll with numbered lines (bounded).
            var clock = Stopwatch.StartNew();
            string? landed = null;
            for (int n = 0; landed == null && clock.Elapsed < LogTimeout; n++)
            {
                Assert.Equal(200, Http.Get(port, $"/log?m=after-rotation-{n}").Status);
                if (File.Exists(log) && ReadShared(log).Contains($"after-rotation-{n}")) landed = $"after-rotation-{n}";
                else Thread.Sleep(20); // bounded poll on the log file
            }
            Out.WriteLine($"first worker line in the reopened file: {landed}\n--- moved file:\n{ReadShared(rotated)}");
            Assert.True(landed != null, "the worker's wsgi.errors lines never reached the reopened log file");
            Assert.Contains("before-rotation", ReadShared(rotated));

            Signals.Send(server.Pid, Signals.SIGTERM);
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
            var after = ReadShared(log);
            Out.WriteLine("--- reopened file:\n" + after);
            Assert.Contains("Shutting down: Master", after); // the supervisor's own lines
            Assert.Matches(@"Worker \d+ stopping gracefully", after);
            Assert.DoesNotContain("Shutting down: Master", ReadShared(rotated));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static string ReadShared(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(fs);
        return reader.ReadToEnd();
    }

    private static string WaitForFileLine(string path, Regex pattern, ServerProcess server)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < LogTimeout)
        {
            if (File.Exists(path))
            {
                var line = ReadShared(path).Split('\n').FirstOrDefault(pattern.IsMatch);
                if (line != null) return line;
            }
            Assert.False(server.HasExited, $"sharpwsgi exited early. Output:");
            Thread.Sleep(20); // bounded poll on the log file
        }
        throw new TimeoutException($"/{pattern}/ not in {path} within {LogTimeout}. Output:\n{server.Output}\n" +
            $"File:\n{(File.Exists(path) ? ReadShared(path) : "(missing)")}");
    }

    [Fact]
    public void ImportError_TwoWorkers_ExitsWithCode4AndTracebackWithoutRespawning()
    {
        var clock = Stopwatch.StartNew();
        using var server = Start(new[] { "-w", "2", BrokenApp }, waitForListening: false);
        var code = server.WaitForExit(TimeSpan.FromSeconds(30));
        var elapsed = clock.Elapsed;
        var output = server.Output;
        Out.WriteLine($"exit {code} after {elapsed.TotalSeconds:F2} s");
        Assert.Equal(4, code);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed.TotalSeconds:F1} s to give up");
        Assert.Contains("Traceback (most recent call last)", output);
        Assert.Contains("LookupError: workers-test: broken_app cannot be imported", output);
        Assert.Contains("broken_app.py", output);
        Assert.Contains("Worker failed to boot", output);
        Assert.DoesNotContain("Listening at:", output);
        Assert.DoesNotContain("Worker ready", output);
        // No respawn loop: no more workers started than asked for.
        Assert.InRange(CountMatches(output, @"Started worker \(pid: \d+\)"), 1, 2);
        StartupOutput.AssertNoDotNetStackTrace(output);
    }
}
