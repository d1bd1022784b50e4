using System.Text.RegularExpressions;
using SharpWsgi.Tests.Functional;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// USR2, gunicorn's binary upgrade: the supervisor starts a new supervisor from its executable on the same listening
/// sockets (the pid file moves to FILE.oldbin); WINCH retires the old one's workers, TERM the old supervisor; HUP
/// brings the old workers back (rollback). The new supervisor writes to the old one's stdout and stderr, so its lines
/// are in the test's server output, told apart by the pid each line carries. It is not the test's child: the
/// tests find it by its log line and stop it by pid.
/// </summary>
[Collection("Workers")]
public sealed class BinaryUpgradeTests : WorkerTestBase
{
    private static readonly Regex StartedSuccessor = new(@"Started the new supervisor \(pid: (\d+)\)");

    public BinaryUpgradeTests(ITestOutputHelper output) : base(output) { }

    [Fact]
    public void Usr2UnderLoad_WinchThenTermTheOld_NoFailedRequestsNewWorkersServeTheReimportedApp()
    {
        var dir = TempDir("usr2");
        var versionFile = Path.Combine(dir, "version.txt");
        var pidFile = Path.Combine(dir, "server.pid");
        File.WriteAllText(versionFile, "v1\n");
        using var server = Start(new[]
            {
                "-w", "2", "--graceful-timeout", "5", "--pid", pidFile, "--metrics-bind", "127.0.0.1:0", PidApp,
            },
            new Dictionary<string, string?> { ["WORKERS_TEST_VERSION_FILE"] = versionFile });
        var successor = 0;
        try
        {
            var oldWorkers = ReadyPids(server);
            var metricsPort = MetricsTests.MetricsPort(server);
            var before = Info(server);
            Assert.Equal("v1", before.GetProperty("version").GetString());

            // Bounded and paced (other suites share the machine): keep-alive clients, and clients that connect for
            // every request as a proxy does.
            using var keptAlive = new LoadLoop(server.Port, 3, maxRequests: 60_000,
                maxDuration: TimeSpan.FromSeconds(45), perConnectionRate: 150);
            using var fresh = new LoadLoop(server.Port, 2, maxRequests: 40_000,
                maxDuration: TimeSpan.FromSeconds(45), perConnectionRate: 100, freshConnections: true);
            Assert.True(keptAlive.WaitUntil(l => l.Succeeded >= 100, TimeSpan.FromSeconds(10)), keptAlive.Summary());
            Assert.True(fresh.WaitUntil(l => l.Succeeded >= 50, TimeSpan.FromSeconds(10)), fresh.Summary());

            File.WriteAllText(versionFile, "v2\n");
            Signals.Send(server.Pid, Signals.SIGUSR2);
            successor = int.Parse(StartedSuccessor.Match(server.WaitForOutput(StartedSuccessor, LogTimeout))
                .Groups[1].Value);
            var newWorkers = ReadyPidsOf(server, successor);
            Assert.Empty(newWorkers.Intersect(oldWorkers));
            Assert.Equal(successor.ToString(), File.ReadAllText(pidFile).Trim());
            Assert.Equal(server.Pid.ToString(), File.ReadAllText(pidFile + ".oldbin").Trim());

            // Both generations serve the shared sockets now; the fresh connections reach the new workers.
            var upgradedAtMs = fresh.ElapsedMs;
            Assert.True(fresh.WaitUntil(l => newWorkers.Any(p => l.ServedSince(p, upgradedAtMs)),
                TimeSpan.FromSeconds(10)), "the new workers serve no fresh connection: " + fresh.Summary());

            Signals.Send(server.Pid, Signals.SIGWINCH);
            foreach (var old in oldWorkers)
                server.WaitForOutput($@"Worker exited \(pid: {old}, exit code 0\)", LogTimeout);
            Assert.Equal(newWorkers.Order(), WorkerProcesses(server).Where(p => p != successor).Order());
            Signals.Send(server.Pid, Signals.SIGTERM);
            server.WaitForOutput($@"\[{server.Pid}\] \[INFO\] Shutting down: Master", LogTimeout);
            Assert.True(WaitForProcessGone(server.Pid, TimeSpan.FromSeconds(10)), "the old supervisor is alive");
            server.WaitForOutput($@"\[{successor}\] \[INFO\] The old supervisor \(pid {server.Pid}\) has exited",
                LogTimeout);

            // Alone now: the keep-alive clients too are answered by the new workers only, and the metrics listener
            // (inherited as well) answers for them.
            var aloneAtMs = keptAlive.ElapsedMs;
            Assert.True(keptAlive.WaitUntil(l => newWorkers.Any(p => l.ServedSince(p, aloneAtMs + 200)),
                TimeSpan.FromSeconds(10)), "the new workers serve no keep-alive client: " + keptAlive.Summary());
            Assert.Equal(200, Http.Get(metricsPort, "/readyz").Status);
            var after = Info(server);
            keptAlive.Stop();
            fresh.Stop();
            Out.WriteLine($"keep-alive: {keptAlive.Summary()}\nfresh connections: {fresh.Summary()}");

            Assert.Equal(0, keptAlive.Failed);
            Assert.Equal(0, fresh.Failed);
            Assert.Contains(PidOf(after), newWorkers);
            Assert.Equal("v2", after.GetProperty("version").GetString());
            Assert.NotEqual(before.GetProperty("import_id").GetString(), after.GetProperty("import_id").GetString());
            Assert.False(File.Exists(pidFile + ".oldbin"), "the old supervisor left its .oldbin pid file");
            Assert.Equal(successor.ToString(), File.ReadAllText(pidFile).Trim());

            Signals.Send(successor, Signals.SIGTERM);
            server.WaitForOutput($@"\[{successor}\] \[INFO\] Shutting down: Master", LogTimeout);
            Assert.True(WaitForProcessGone(successor, TimeSpan.FromSeconds(10)), "the new supervisor is alive");
            foreach (var pid in newWorkers) Assert.False(Signals.IsAlive(pid), $"worker {pid} outlived the server");
            Assert.False(File.Exists(pidFile), "the new supervisor left its pid file");
            Assert.DoesNotContain("[ERROR]", server.Output);
        }
        finally
        {
            KillTree(successor);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Usr2_UnixSocket_OldSupervisorExitLeavesThePathToTheNewOneWhichUnlinksIt()
    {
        var dir = TempDir("usr2-unix");
        var socketPath = Path.Combine(dir, "app.sock");
        using var server = Start(new[]
        {
            "-w", "1", "--graceful-timeout", "5", "--bind", "unix:" + socketPath, PidApp,
        });
        var successor = 0;
        try
        {
            var oldWorker = ReadyPids(server).Single();
            Signals.Send(server.Pid, Signals.SIGUSR2);
            successor = int.Parse(StartedSuccessor.Match(server.WaitForOutput(StartedSuccessor, LogTimeout))
                .Groups[1].Value);
            var newWorker = ReadyPidsOf(server, successor).Single();

            // TERM alone retires the old supervisor and its worker; the path stays, served by the new worker.
            Signals.Send(server.Pid, Signals.SIGTERM);
            Assert.True(WaitForProcessGone(server.Pid, TimeSpan.FromSeconds(15)), "the old supervisor is alive");
            Assert.False(Signals.IsAlive(oldWorker));
            Assert.True(File.Exists(socketPath), "the old supervisor unlinked the socket the new one serves");
            Assert.Contains($"\"pid\": {newWorker}", GetOverUnixSocket(socketPath));

            Signals.Send(successor, Signals.SIGTERM);
            server.WaitForOutput($@"\[{successor}\] \[INFO\] Shutting down: Master", LogTimeout);
            Assert.True(WaitForProcessGone(successor, TimeSpan.FromSeconds(10)), "the new supervisor is alive");
            Assert.False(File.Exists(socketPath), "the last supervisor left its unix socket behind");
        }
        finally
        {
            KillTree(successor);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Usr2ThenWinch_RollbackWithHupAndTermOfTheNew_OldSupervisorServesAgainWithItsPidFile()
    {
        var dir = TempDir("usr2-rollback");
        var pidFile = Path.Combine(dir, "server.pid");
        using var server = Start(new[] { "-w", "1", "--graceful-timeout", "5", "--pid", pidFile, PidApp });
        var successor = 0;
        try
        {
            var oldWorker = ReadyPids(server).Single();
            Signals.Send(server.Pid, Signals.SIGUSR2);
            successor = int.Parse(StartedSuccessor.Match(server.WaitForOutput(StartedSuccessor, LogTimeout))
                .Groups[1].Value);
            var newWorker = ReadyPidsOf(server, successor).Single();
            Signals.Send(server.Pid, Signals.SIGWINCH);
            server.WaitForOutput($@"Worker exited \(pid: {oldWorker}, exit code 0\)", LogTimeout);
            Assert.Equal(newWorker, PidOf(Info(server)));

            // Rollback: the old supervisor starts workers again, then the new one is stopped.
            Signals.Send(server.Pid, Signals.SIGHUP);
            var revived = WaitForNewReadyWorker(server, new[] { oldWorker, newWorker });
            Signals.Send(successor, Signals.SIGTERM);
            server.WaitForOutput($@"The new supervisor \(pid {successor}\) exited with code 0", LogTimeout);
            Assert.True(WaitForProcessGone(successor, TimeSpan.FromSeconds(10)), "the new supervisor is alive");

            Assert.Equal(revived, PidOf(Info(server)));
            Assert.Equal(server.Pid.ToString(), File.ReadAllText(pidFile).Trim());
            Assert.False(File.Exists(pidFile + ".oldbin"));
            Assert.Equal(new[] { revived }, WorkerProcesses(server));
        }
        finally
        {
            KillTree(successor);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Usr2_NewSupervisorFailsToImportTheApp_OldServesOnWithItsPidFile()
    {
        var dir = TempDir("usr2-broken");
        var versionFile = Path.Combine(dir, "version.txt");
        var pidFile = Path.Combine(dir, "server.pid");
        File.WriteAllText(versionFile, "v1\n");
        using var server = Start(new[] { "-w", "1", "--pid", pidFile, PidApp },
            new Dictionary<string, string?> { ["WORKERS_TEST_VERSION_FILE"] = versionFile });
        var successor = 0;
        try
        {
            var worker = ReadyPids(server).Single();
            File.WriteAllText(versionFile, "broken\n");
            Signals.Send(server.Pid, Signals.SIGUSR2);
            successor = int.Parse(StartedSuccessor.Match(server.WaitForOutput(StartedSuccessor, LogTimeout))
                .Groups[1].Value);
            server.WaitForOutput($@"The new supervisor \(pid {successor}\) exited with code 4", LogTimeout);

            Assert.Equal(worker, PidOf(Info(server)));
            Assert.Equal(server.Pid.ToString(), File.ReadAllText(pidFile).Trim());
            Assert.False(File.Exists(pidFile + ".oldbin"));
            // WINCH without a new supervisor is not an instruction to stop the workers (terminals send it).
            Signals.Send(server.Pid, Signals.SIGWINCH);
            Assert.Equal(worker, PidOf(Info(server)));
            Assert.Equal(new[] { worker }, WorkerProcesses(server));
        }
        finally
        {
            KillTree(successor);
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The pids of the "Ready: N worker(s) serving, pids a,b" line of the supervisor with this pid.</summary>
    private static List<int> ReadyPidsOf(ServerProcess server, int supervisor)
    {
        var ready = new Regex($@"\[{supervisor}\] \[INFO\] Ready: \d+ worker\(s\) serving, pids ([\d,]+)");
        return ready.Match(server.WaitForOutput(ready, LogTimeout)).Groups[1].Value.Split(',').Select(int.Parse)
            .ToList();
    }

    private static string GetOverUnixSocket(string path)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix,
            System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.ReceiveTimeout = 10_000;
        socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        socket.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8);
        var response = new MemoryStream();
        var buffer = new byte[4096];
        for (int n; (n = socket.Receive(buffer)) > 0;) response.Write(buffer, 0, n);
        return System.Text.Encoding.Latin1.GetString(response.ToArray());
    }

    /// <summary>The new supervisor is not the test's child: a failed test must not leave it and its workers.</summary>
    private static void KillTree(int pid)
    {
        if (pid == 0) return;
        foreach (var p in ProcessTree.WithDescendants(pid).Where(Signals.IsAlive))
            try { Signals.Send(p, Signals.SIGKILL); } catch (InvalidOperationException) { }
    }
}
