using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using SharpWsgi.Tests.Workers;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// gunicorn's Python config file through the real server: its settings under gunicorn's names, every server hook in
/// the process docs/gunicorn.md says (the supervisor's hook host, or the worker's own Python), prometheus_client's
/// multiprocess clean-up in child_exit, hooks that raise, settings that cannot apply, and gunicorn's own example
/// config run unchanged. Fixtures: tests/apps/gunicorn.
/// </summary>
[Collection("Workers")]
public sealed class GunicornConfigTests : WorkerTestBase
{
    private static string Fixtures => Path.Combine(ServerProcess.AppsDir, "gunicorn");
    private static string Fixture(string name) => Path.Combine(Fixtures, name);

    public GunicornConfigTests(ITestOutputHelper output) : base(output) { }

    /// <summary>The hooks' records (one JSON object per line, appended by every process that ran a hook); a last
    /// line still being written is left for the next read.</summary>
    private static List<JsonElement> Records(string file)
    {
        var records = new List<JsonElement>();
        foreach (var line in File.ReadAllLines(file))
        {
            try { records.Add(JsonDocument.Parse(line).RootElement.Clone()); }
            catch (JsonException) { break; }
        }
        return records;
    }

    private static List<JsonElement> Of(List<JsonElement> records, string hook) =>
        records.Where(r => r.GetProperty("hook").GetString() == hook).ToList();

    private static int ProcessOf(JsonElement record) => record.GetProperty("process").GetInt32();

    /// <summary>Reads the records until the condition gives an answer (a bounded wait on the hooks' own writes).
    /// </summary>
    private static T PollRecords<T>(string file, Func<List<JsonElement>, T?> answer) where T : class
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var records = Records(file);
            if (answer(records) is { } found) return found;
            Assert.True(clock.Elapsed < LogTimeout, "the hooks did not record it in time:\n" +
                string.Join("\n", records));
            Thread.Sleep(20); // polling interval of a bounded wait on a file other processes append to
        }
    }

    /// <summary>Waits for a hook's "hook NAME {facts}" log line from the given process (the hook host logs through
    /// the supervisor, so its lines carry the supervisor's pid).</summary>
    private static void WaitForHook(ServerProcess server, int pid, string hook, string facts = "")
        => server.WaitForOutput(new Regex($@"\[{pid}\] \[INFO\] hook {hook} \{{{Regex.Escape(facts)}"), LogTimeout);

    [Fact]
    public void EveryHook_RunsInItsProcess_WithGunicornsArguments()
    {
        var dir = TempDir("hooks");
        var recordFile = Path.Combine(dir, "hooks.jsonl");
        var env = new Dictionary<string, string?> { ["HOOKS_TEST_LOG"] = recordFile };
        using var server = Start(new[] { "-c", Fixture("every_hook.conf.py"), PidApp }, env);
        var pids = ReadyPids(server);
        Assert.Equal(2, pids.Count);
        Assert.Contains("Using 2 worker(s) with 2 Python thread(s) each", server.Output);

        // Supervisor side: one hook host process, neither the supervisor nor a worker; in gunicorn's order.
        var records = Records(recordFile);
        var starting = Of(records, "on_starting").Single();
        var host = ProcessOf(starting);
        Assert.NotEqual(server.Pid, host);
        Assert.DoesNotContain(host, pids);
        Assert.Equal(server.Pid, starting.GetProperty("server_pid").GetInt32());
        Assert.Equal(2, starting.GetProperty("num_workers").GetInt32());
        Assert.Equal(2, starting.GetProperty("threads").GetInt32());
        Assert.Equal(7, starting.GetProperty("keepalive").GetInt32());
        Assert.Equal("hooks-test", starting.GetProperty("proc_name").GetString());
        Assert.Equal("127.0.0.1:0", starting.GetProperty("bind")[0].GetString()); // the command line wins
        var first = records.IndexOf(Of(records, "nworkers_changed")[0]);
        Assert.Equal(JsonValueKind.Null, records[first].GetProperty("old").ValueKind);
        Assert.Equal(2, records[first].GetProperty("new").GetInt32());
        var ready = Of(records, "when_ready").Single();
        Assert.Equal(0, ready.GetProperty("workers").GetArrayLength()); // before any worker, as in gunicorn
        var preForks = Of(records, "pre_fork");
        Assert.Equal(new[] { 1, 2 }, preForks.Select(r => r.GetProperty("age").GetInt32()));
        Assert.All(preForks, r => Assert.Equal("[booting]", r.GetProperty("worker_pid").GetString()));
        Assert.True(first < records.IndexOf(starting) && records.IndexOf(starting) < records.IndexOf(ready) &&
                    records.IndexOf(ready) < records.IndexOf(preForks[0]), string.Join("\n", records));
        Assert.All(records.Where(r => r.GetProperty("hook").GetString() is "on_starting" or "when_ready" or
            "pre_fork" or "nworkers_changed"), r => Assert.Equal(host, ProcessOf(r)));

        // Worker side: post_fork in each worker before its app is imported, post_worker_init after.
        var postForks = Of(records, "post_fork");
        Assert.Equal(pids.OrderBy(p => p), postForks.Select(ProcessOf).OrderBy(p => p));
        foreach (var r in postForks)
        {
            Assert.Equal(ProcessOf(r), r.GetProperty("worker_pid").GetInt32());
            Assert.Equal(server.Pid, r.GetProperty("ppid").GetInt32());
            Assert.Equal(server.Pid, r.GetProperty("server_pid").GetInt32());
            Assert.False(r.GetProperty("app_imported").GetBoolean(), "post_fork ran after the app's import");
        }
        Assert.Equal(new[] { 1, 2 }, postForks.Select(r => r.GetProperty("age").GetInt32()).OrderBy(a => a));
        foreach (var r in Of(records, "post_worker_init"))
        {
            Assert.Contains(ProcessOf(r), pids);
            Assert.True(r.GetProperty("app_imported").GetBoolean());
            Assert.True(r.GetProperty("booted").GetBoolean());
            Assert.StartsWith("<function application", r.GetProperty("app").GetString());
        }

        // pre_request and post_request on the request's Python thread, with gunicorn's req and resp.
        var served = Http.Get(server.Port, "/hooked?x=1", "X-Test: yes\r\n");
        Assert.Equal(200, served.Status);
        var pid = PidOf(Http.Json(served));
        WaitForHook(server, pid, "post_request");
        records = Records(recordFile);
        var pre = Of(records, "pre_request").Single();
        Assert.Equal(pid, ProcessOf(pre));
        Assert.Equal("GET", pre.GetProperty("method").GetString());
        Assert.Equal("/hooked", pre.GetProperty("path").GetString());
        Assert.Equal("x=1", pre.GetProperty("query").GetString());
        Assert.Equal("/hooked?x=1", pre.GetProperty("uri").GetString());
        Assert.Equal(new[] { 1, 1 }, pre.GetProperty("version").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal(1, pre.GetProperty("nr").GetInt32());
        var headers = pre.GetProperty("headers").EnumerateArray()
            .Select(h => (h[0].GetString(), h[1].GetString())).ToList();
        Assert.Contains(("X-TEST", "yes"), headers); // names upper-cased, as gunicorn's parser has them
        Assert.Contains(("HOST", $"127.0.0.1:{server.Port}"), headers);
        var post = Of(records, "post_request").Single();
        Assert.Equal(pid, ProcessOf(post));
        Assert.Equal("200 OK", post.GetProperty("status").GetString());
        Assert.Equal(200, post.GetProperty("status_code").GetInt32());
        Assert.Equal(served.Body.Length, post.GetProperty("sent").GetInt32());
        Assert.Equal("/hooked", post.GetProperty("environ_path").GetString());
        Assert.Contains(post.GetProperty("headers").EnumerateArray(),
            h => h[0].GetString() == "Content-Type" && h[1].GetString() == "application/json");

        // TTIN: nworkers_changed(3, 2), then pre_fork of worker number 3.
        Signals.Send(server.Pid, Signals.SIGTTIN);
        WaitForHook(server, server.Pid, "nworkers_changed", "\"new\": 3, \"old\": 2}");
        var third = WaitForNewReadyWorker(server, pids);
        Assert.Equal(3, Of(Records(recordFile), "pre_fork").Last().GetProperty("age").GetInt32());

        // HUP: the file is read again, a fresh hook host runs the new file's on_reload, and the count goes back
        // to the file's 2 workers.
        Signals.Send(server.Pid, Signals.SIGHUP);
        WaitForHook(server, server.Pid, "on_reload");
        WaitForHook(server, server.Pid, "nworkers_changed", "\"new\": 2, \"old\": 3}");
        var reloadHost = ProcessOf(Of(Records(recordFile), "on_reload").Single());
        Assert.NotEqual(host, reloadHost);
        // The reload is over when every earlier worker has exited and two booted workers remain.
        var earlier = pids.Append(third).ToList();
        List<int> Live(List<JsonElement> r) => Of(r, "post_worker_init").Select(ProcessOf)
            .Except(Of(r, "child_exit").Select(x => x.GetProperty("worker_pid").GetInt32())).ToList();
        var finalWorkers = PollRecords(recordFile, r => earlier.All(w => !Live(r).Contains(w)) && Live(r).Count == 2
            ? Live(r) : null);

        // QUIT: worker_int then worker_exit in each worker; child_exit for each, then on_exit, in the hook host.
        Signals.Send(server.Pid, Signals.SIGQUIT);
        server.WaitForExit(TimeSpan.FromSeconds(30));
        records = Records(recordFile);
        foreach (var w in finalWorkers)
        {
            var interrupted = Of(records, "worker_int").Single(r => ProcessOf(r) == w);
            Assert.False(interrupted.GetProperty("alive").GetBoolean());
            var exited = Of(records, "worker_exit").Single(r => ProcessOf(r) == w);
            Assert.True(records.IndexOf(interrupted) < records.IndexOf(exited));
            var childExit = Of(records, "child_exit").Single(r => r.GetProperty("worker_pid").GetInt32() == w);
            Assert.Equal(reloadHost, ProcessOf(childExit));
        }
        // Every worker that ever ran exited through worker_exit in its own process, and was reported by child_exit.
        foreach (var w in pids.Append(third))
        {
            Assert.Single(Of(records, "worker_exit"), r => ProcessOf(r) == w);
            Assert.Single(Of(records, "child_exit"), r => r.GetProperty("worker_pid").GetInt32() == w);
        }
        Assert.Equal("on_exit", records.Last(r => ProcessOf(r) == reloadHost).GetProperty("hook").GetString());
        Assert.Empty(Of(records, "worker_abort"));
        Assert.Empty(Of(records, "pre_exec"));
        Directory.Delete(dir, recursive: true);
    }

    [SkippableFact]
    public void Interpreters_Two_EachExecutesTheFileForItsOwnRequestHooks()
    {
        var python = Interpreters.FindPyenv(12, out var reason) ?? throw new SkipException($"3.12: {reason}");
        var dir = TempDir("hooks-interpreters");
        var recordFile = Path.Combine(dir, "hooks.jsonl");
        var env = new Dictionary<string, string?> { ["HOOKS_TEST_LOG"] = recordFile };
        using var server = Start(new[]
        {
            "--python", python, "-c", Fixture("every_hook.conf.py"), "--workers", "1", "--interpreters", "2",
            Path.Combine(ServerProcess.AppsDir, "interpreters_app.py"),
        }, env);
        for (var i = 0; i < 6; i++) Assert.Equal(200, Http.Get(server.Port, $"/r{i}").Status);
        var records = PollRecords(recordFile, r => Of(r, "post_request").Count == 6 ? r : null);
        var pre = Of(records, "pre_request");
        Assert.Equal(6, pre.Count);
        // Sequential requests go to the two interpreters in turn, and each counts its own (worker.nr).
        Assert.Equal(new[] { 1, 1, 2, 2, 3, 3 }, pre.Select(r => r.GetProperty("nr").GetInt32()).OrderBy(n => n));
        Assert.Single(Of(records, "post_fork")); // the main interpreter's, before the app's import
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void BinaryUpgrade_Usr2_RunsPreExecInTheOldSupervisorsHookHost()
    {
        var dir = TempDir("hooks-usr2");
        var recordFile = Path.Combine(dir, "hooks.jsonl");
        var env = new Dictionary<string, string?> { ["HOOKS_TEST_LOG"] = recordFile };
        using var server = Start(new[] { "-c", Fixture("every_hook.conf.py"), "--workers", "1", PidApp }, env);
        ReadyPids(server);
        var successor = 0;
        try
        {
            Signals.Send(server.Pid, Signals.SIGUSR2);
            WaitForHook(server, server.Pid, "pre_exec");
            var line = server.WaitForOutput(@"Started the new supervisor \(pid: (\d+)\)", LogTimeout);
            successor = int.Parse(Regex.Match(line, @"pid: (\d+)").Groups[1].Value);
            var records = PollRecords(recordFile, r => Of(r, "on_starting").Count == 2 ? r : null);
            var oldHost = ProcessOf(Of(records, "on_starting")[0]);
            var preExec = Of(records, "pre_exec").Single();
            Assert.Equal(oldHost, ProcessOf(preExec)); // before the new supervisor, whose own host runs on_starting
            Assert.True(records.IndexOf(preExec) < records.IndexOf(Of(records, "on_starting")[1]));
        }
        finally
        {
            if (successor != 0)
                foreach (var p in ProcessTree.WithDescendants(successor).Where(Signals.IsAlive))
                    try { Signals.Send(p, Signals.SIGKILL); } catch (InvalidOperationException) { }
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void WorkerAbort_HeartbeatKill_RunsWorkerAbortThenWorkerExit()
    {
        var dir = TempDir("hooks-abort");
        var recordFile = Path.Combine(dir, "hooks.jsonl");
        var env = new Dictionary<string, string?> { ["HOOKS_TEST_LOG"] = recordFile };
        using var server = Start(new[] { "-c", Fixture("every_hook.conf.py"), "--workers", "1", PidApp }, env);
        var worker = ReadyPids(server).Single();
        Signals.Send(worker, Signals.SIGABRT); // what the supervisor sends a worker whose heartbeat stopped
        WaitForHook(server, worker, "worker_exit");
        var records = Records(recordFile);
        var aborted = Of(records, "worker_abort").Single();
        Assert.Equal(worker, ProcessOf(aborted));
        Assert.True(records.IndexOf(aborted) < records.IndexOf(Of(records, "worker_exit").Single()));
        WaitForNewReadyWorker(server, new[] { worker });
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void Prometheus_MultiprocessChildExit_MarksTheKilledWorkerDead()
    {
        var metricsDir = TempDir("prometheus-multiproc");
        var env = new Dictionary<string, string?> { ["PROMETHEUS_MULTIPROC_DIR"] = metricsDir };
        using var server = Start(new[]
        {
            "--python", Interpreters.SystemPython, "-c", Fixture("prometheus.conf.py"), Fixture("prometheus_app.py"),
        }, env);
        var pids = ReadyPids(server);
        Assert.Equal(2, pids.Count);
        string GaugeFile(int pid) => Path.Combine(metricsDir, $"gauge_livesum_{pid}.db");
        Assert.All(pids, p => Assert.True(File.Exists(GaugeFile(p)), $"no {GaugeFile(p)}"));
        for (var i = 0; i < 6; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
        Assert.Contains("hooks_test_live_workers 2.0", Http.Get(server.Port, "/metrics").BodyText);

        Signals.Send(pids[0], Signals.SIGKILL);
        server.WaitForOutput($@"marked worker {pids[0]} dead", LogTimeout);
        Assert.False(File.Exists(GaugeFile(pids[0])), "mark_process_dead left the dead worker's live gauge");
        Assert.True(File.Exists(GaugeFile(pids[1])));
        var replacement = WaitForNewReadyWorker(server, pids);
        Assert.True(File.Exists(GaugeFile(replacement)));

        // The dead worker no longer counts among the live ones; its requests stay counted.
        var metrics = Http.Get(server.Port, "/metrics").BodyText;
        Out.WriteLine(metrics);
        Assert.Contains("hooks_test_live_workers 2.0", metrics);
        Assert.Contains("hooks_test_requests_total 6.0", metrics);
        Directory.Delete(metricsDir, recursive: true);
    }

    [Fact]
    public void RaisingHooks_AreLoggedWithTracebacks_AndTheServerKeepsServing()
    {
        using var server = Start(new[] { "-c", Fixture("raising.conf.py"), PidApp });
        var worker = ReadyPids(server).Single();
        server.WaitForOutput(@"Exception in the pre_fork hook of .*raising\.conf\.py \(the server goes on\)",
            LogTimeout);
        // A log entry's lines reach the output one by one: each is waited for.
        server.WaitForOutput(@"raising\.conf\.py"", line \d+, in pre_fork", LogTimeout);
        server.WaitForOutput("RuntimeError: pre_fork failed on purpose", LogTimeout);

        Assert.Equal(200, Http.Get(server.Port, "/").Status);
        server.WaitForOutput($@"\[{worker}\] \[ERROR\] Exception in post_request hook", LogTimeout);
        server.WaitForOutput("ZeroDivisionError: division by zero", LogTimeout);

        // pre_request raising fails that request as the app's own error would: 500, traceback logged.
        var refused = Http.Get(server.Port, "/refused");
        Assert.Equal(500, refused.Status);
        server.WaitForOutput(@"\(running the pre_request hook\)", LogTimeout);
        server.WaitForOutput("PermissionError: pre_request refused /refused", LogTimeout);
        Assert.Equal(200, Http.Get(server.Port, "/").Status);

        // child_exit raising in the hook host: logged, and the replacement serves.
        Signals.Send(worker, Signals.SIGKILL);
        server.WaitForOutput("Exception in the child_exit hook", LogTimeout);
        server.WaitForOutput("KeyError: 'no such key'", LogTimeout);
        var next = WaitForNewReadyWorker(server, new[] { worker });
        Assert.Equal(next, PidOf(Info(server)));
        StartupOutput.AssertNoDotNetStackTrace(server.Output);
    }

    [Fact]
    public void OnStartingRaises_TheServerDoesNotStart_ExitOneWithTheTraceback()
    {
        var dir = TempDir("hooks-starting");
        var conf = Path.Combine(dir, "gunicorn.conf.py");
        File.WriteAllText(conf, "def on_starting(server):\n    raise SystemError('cannot start on purpose')\n");
        var (code, output) = ServerProcess.RunToExit(new[] { "-c", conf, "--bind", "127.0.0.1:0", PidApp });
        Out.WriteLine(output);
        Assert.Equal(1, code);
        Assert.Contains("The on_starting hook of " + conf + " raised, so the server does not start", output);
        Assert.Contains("SystemError: cannot start on purpose", output);
        Assert.DoesNotContain("Listening at:", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void PostForkRaises_TheWorkerCannotBoot_TheServerStopsWithExitFour()
    {
        var dir = TempDir("hooks-postfork");
        var conf = Path.Combine(dir, "gunicorn.conf.py");
        File.WriteAllText(conf, "def post_fork(server, worker):\n    raise OSError('no database on purpose')\n");
        var (code, output) = ServerProcess.RunToExit(new[] { "-c", conf, "--bind", "127.0.0.1:0", PidApp });
        Out.WriteLine(output);
        Assert.Equal(4, code);
        Assert.Contains("The post_fork hook of " + conf + " raised OSError: no database on purpose; the worker " +
                        "cannot boot", output);
        Assert.Contains("Worker failed to boot", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void UnsupportedSettings_OneWarningLineEach_AndTheRestIsTaken()
    {
        var (code, output) = ServerProcess.RunToExit(new[]
        {
            "--check-config", "-c", Fixture("unsupported.conf.py"), "--chdir", AppsDir,
        });
        Out.WriteLine(output);
        Assert.Equal(0, code);
        Assert.Contains("configuration OK", output);
        Assert.Matches(@"app:\s+pid_app:application -> <function application", output); // wsgi_app
        Assert.Contains("workers:     2 x 4 Python thread(s)", output); // gevent ignored: the threads stay
        Assert.Single(Regex.Matches(output, @"unsupported\.conf\.py:6: worker_class = 'gevent' cannot apply: .*" +
            "threads"));
        Assert.Single(Regex.Matches(output, @"unsupported\.conf\.py:7: preload_app = True cannot apply: there is " +
            "no fork"));
        Assert.Single(Regex.Matches(output, @"unsupported\.conf\.py:8: enable_backlog_metric = True is not " +
            "supported yet"));
        // Values that ask for nothing beyond gunicorn's default are not warned about.
        Assert.DoesNotContain("user =", output);
        Assert.DoesNotContain("daemon =", output);
        Assert.Equal(3, Regex.Matches(output, @"\[WARNING\]").Count);
    }

    [Fact]
    public void PrintConfig_PythonFile_NamesEachSettingsFileAndLine_AndKeepsThePrecedence()
    {
        var env = new Dictionary<string, string?> { ["HOOKS_TEST_LOG"] = "/dev/null", ["SHARPWSGI_WORKERS"] = "3" };
        var conf = Fixture("every_hook.conf.py");
        var (code, output) = ServerProcess.RunToExit(new[] { "--print-config", "-c", conf, "--threads", "5" }, env);
        Out.WriteLine(output);
        Assert.Equal(0, code);
        string Line(string name) => output.Split('\n').Single(l => l.StartsWith(name + " "));
        Assert.Matches($@"= 7 +# file {Regex.Escape(conf)}:13$", Line("keep-alive"));
        Assert.Matches($@"= 25 +# file {Regex.Escape(conf)}:14$", Line("timeout"));
        Assert.Matches($@"= 127\.0\.0\.1,10\.0\.0\.0/8 +# file {Regex.Escape(conf)}:19$",
            Line("forwarded-allow-ips"));
        Assert.Matches(@"= X-FORWARDED-PROTO=https +# file ", Line("secure-scheme-headers"));
        Assert.Matches(@"= 3000 +# file ", Line("limit-request-line"));
        Assert.Matches(@"= 3 +# environment SHARPWSGI_WORKERS$", Line("workers")); // environment over file
        Assert.Matches(@"= 5 +# command line --threads$", Line("threads")); // command line over file
        Assert.Contains("# hooks run by each worker: post_fork, post_request, post_worker_init, pre_request, " +
                        "worker_abort, worker_exit, worker_int", output);
        Assert.Contains("# hooks run by the supervisor's hook host: child_exit, nworkers_changed, on_exit, " +
                        "on_reload, on_starting, pre_exec, pre_fork, when_ready", output);
        Assert.Matches(@"= hooks-test +# file ", Line("name")); // proc_name
    }

    [Fact]
    public void PrintConfig_GunicornValues_BecomeTheSharpWsgiSettings()
    {
        var dir = TempDir("hooks-values");
        var conf = Path.Combine(dir, "gunicorn.conf.py");
        File.WriteAllText(conf, string.Join("\n",
            "import ssl",
            "cert_reqs = ssl.CERT_REQUIRED",
            "proxy_protocol = True",
            "sendfile = False",
            "http_protocols = 'h1'",
            "pythonpath = '/srv/lib,/srv/vendor'",
            "reload_extra_files = ['/srv/a.yaml', '/srv/b.yaml']",
            "worker_class = 'sync'",
            "loglevel = 'WARNING'",
            "bind = ['127.0.0.1:9001', 'unix:/tmp/app.sock']",
            "request_timeout = 12.5",
            "wsgi_app = 'myproject.wsgi:application'",
            ""));
        var (code, output) = ServerProcess.RunToExit(new[] { "--print-config", "-c", conf });
        Out.WriteLine(output);
        Assert.Equal(0, code);
        string Values(string name) => string.Join(",", output.Split('\n').Where(l => l.StartsWith(name + " "))
            .Select(l => l.Split('=', 2)[1].Split('#')[0].Trim()));
        Assert.Equal("required", Values("cert-reqs"));
        Assert.Equal("optional", Values("proxy-protocol"));
        Assert.Equal("true", Values("no-sendfile"));
        Assert.Equal("off", Values("http2"));
        Assert.Equal("/srv/lib,/srv/vendor", Values("pythonpath"));
        Assert.Equal("/srv/a.yaml,/srv/b.yaml", Values("reload-extra-file"));
        Assert.Equal("1", Values("threads")); // sync without threads: one request at a time, as gunicorn's worker
        Assert.Equal("warning", Values("log-level"));
        Assert.Equal("127.0.0.1:0", Values("bind")); // the test harness's --bind: the command line wins
        Assert.Equal("12.5", Values("request-timeout")); // SharpWsgi's own settings, with '_'
        Assert.Equal("myproject.wsgi:application", Values("app"));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void PythonModuleConfig_AndAFileWithoutPyExtension_AreReadAsPython()
    {
        var dir = TempDir("hooks-module");
        File.WriteAllText(Path.Combine(dir, "deploy_settings.py"), "workers = 3\nbacklog = 77\n");
        File.WriteAllText(Path.Combine(dir, "gunicorn.conf"), "import os\nbacklog = int('12')\naccesslog = '-'\n");
        var (code, output) = ServerProcess.RunToExit(new[]
        {
            "--print-config", "--chdir", dir, "-c", "python:deploy_settings",
        });
        Out.WriteLine(output);
        Assert.Equal(0, code);
        Assert.Matches($@"backlog +?= 77 +# file {Regex.Escape(Path.Combine(dir, "deploy_settings.py"))}:2",
            output);
        (code, output) = ServerProcess.RunToExit(new[] { "--print-config", "-c", Path.Combine(dir, "gunicorn.conf") });
        Out.WriteLine(output);
        Assert.Equal(0, code);
        Assert.Matches(@"access-logfile +?= - +# file .*gunicorn\.conf:3", output);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void ConfigFileRaises_OneParagraphWithFileAndLine_ExitTwo()
    {
        var dir = TempDir("hooks-raises");
        var conf = Path.Combine(dir, "gunicorn.conf.py");
        File.WriteAllText(conf, "workers = 2\nthreads = workers * undefined_name\n");
        var (code, output) = ServerProcess.RunToExit(new[] { "-c", conf, PidApp });
        Out.WriteLine(output);
        Assert.Equal(2, code);
        Assert.Contains($"sharpwsgi: error: the config file {conf} failed: NameError: name 'undefined_name' is not " +
                        $"defined ({conf}:2: threads = workers * undefined_name)", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.DoesNotContain("Traceback", output);

        File.WriteAllText(conf, "def pre_request(worker):\n    pass\n");
        (code, output) = ServerProcess.RunToExit(new[] { "-c", conf, PidApp });
        Assert.Equal(2, code);
        Assert.Contains($"pre_request must take 2 argument(s), as gunicorn calls it; it takes 1 ({conf}:1)", output);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void NoConfigOption_GunicornConfPyInTheWorkingDirectory_IsRead()
    {
        var dir = TempDir("hooks-default");
        File.WriteAllText(Path.Combine(dir, "gunicorn.conf.py"), "backlog = 123\n");
        var result = Proc.Run(ServerProcess.Executable, new[] { "--print-config" }, workingDirectory: dir);
        Out.WriteLine(result.Stdout + result.Stderr);
        Assert.Equal(0, result.ExitCode);
        Assert.Matches($@"backlog += 123 +# file {Regex.Escape(Path.Combine(dir, "gunicorn.conf.py"))}:1",
            result.Stdout);
        Assert.Contains("# note: Reading ./gunicorn.conf.py, gunicorn's default config file", result.Stdout);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void EnvironmentSetByTheFile_ReachesTheWorkers_AsForkWouldHaveIt()
    {
        var dir = TempDir("hooks-environ");
        var conf = Path.Combine(dir, "gunicorn.conf.py");
        File.WriteAllText(conf, "import os\nos.environ['GUNICORN_CONF_MARK'] = 'set-by-config'\n");
        var app = Path.Combine(dir, "environ_app.py");
        File.WriteAllText(app, "import os\ndef application(environ, start_response):\n" +
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
            "    return [os.environ.get('GUNICORN_CONF_MARK', 'missing').encode()]\n");
        using var server = Start(new[] { "-c", conf, app });
        Assert.Equal("set-by-config", Http.Get(server.Port, "/").BodyText);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void GunicornExampleConfig_RunsUnchanged()
    {
        using var server = Start(new[] { "-c", Fixture("example_config.py"), PidApp });
        var worker = ReadyPids(server).Single();
        server.WaitForOutput(@"\[INFO\] Server is ready\. Spawning workers", LogTimeout); // when_ready
        server.WaitForOutput($@"\[{worker}\] \[INFO\] Worker spawned \(pid: {worker}\)", LogTimeout); // post_fork
        Assert.Matches(@"example_config\.py:\d+: ssl_context = <function ssl_context> cannot apply", server.Output);
        Assert.Equal(1, Regex.Matches(server.Output, @"\[WARNING\] .*example_config\.py").Count);
        Assert.Equal(200, Http.Get(server.Port, "/").Status);
        server.WaitForOutput(@"""GET / HTTP/1\.1"" 200 ", LogTimeout); // accesslog = '-'

        Signals.Send(server.Pid, Signals.SIGQUIT);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Matches($@"\[{worker}\] \[INFO\] worker received INT or QUIT signal", server.Output); // worker_int
        StartupOutput.AssertNoDotNetStackTrace(server.Output);
    }
}
