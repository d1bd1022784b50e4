using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// gunicorn's process flags through the real server: -u/--user and -g/--group (bind as root, then run as the
/// account), -m/--umask (and the unix socket's mode), -e/--env, -n/--name (process titles), -D/--daemon and
/// --capture-output. The machine runs the tests as root; the account is Debian's nobody:nogroup, and the workers
/// run Debian's /usr/bin/python3 (pyenv's interpreters live under /root, closed to nobody).
/// </summary>
[Collection("Workers")]
public sealed class ProcessFlagsTests : WorkerTestBase
{
    private const int Nobody = 65534, NoGroup = 65534;
    private static string App => Path.Combine(ServerProcess.AppsDir, "process_app.py");
    private static readonly string[] SystemPython = { "--python", Interpreters.SystemPython };

    public ProcessFlagsTests(ITestOutputHelper output) : base(output) { }

    // ---- --user, --group --------------------------------------------------------------------------------

    [SkippableFact]
    public void User_NobodyWithPidLogsAndUnixSocket_EveryProcessRunsAsNobodyServesAndReopensLogs()
    {
        Skip.IfNot(Libc.IsRoot, "switching users needs root");
        var dir = AccountDirectory("user");
        try
        {
            string File(string name) => Path.Combine(dir, name);
            using var server = Start(SystemPython.Concat(new[]
            {
                "--user", "nobody", "--group", "nogroup", "-w", "2", "--pid", File("app.pid"),
                "--access-logfile", File("access.log"), "--error-logfile", File("error.log"),
                "--bind", "unix:" + File("app.sock"), "--bind", "127.0.0.1:0", App,
            }), waitForListening: false);
            var port = int.Parse(WaitForFileLine(File("error.log"), @"Listening at: http://127\.0\.0\.1:(\d+)", server)
                .Groups[1].Value);
            WaitForFileLine(File("error.log"), @"Ready: 2 worker\(s\) serving", server);
            var supervisor = server.Pid;
            Assert.Equal(supervisor.ToString(), System.IO.File.ReadAllText(File("app.pid")).Trim());

            var workers = WorkerProcesses(server);
            Assert.Equal(2, workers.Count);
            foreach (var pid in workers.Prepend(supervisor))
            {
                var status = ProcStatus(pid);
                Assert.Equal($"{Nobody}\t{Nobody}\t{Nobody}\t{Nobody}", status["Uid"]);
                Assert.Equal($"{NoGroup}\t{NoGroup}\t{NoGroup}\t{NoGroup}", status["Gid"]);
                Assert.Equal($"{NoGroup}", status["Groups"]); // nobody's own groups, none of root's
            }
            var ids = Http.Json(Http.Get(port, "/ids"));
            Assert.Equal(Nobody, ids.GetProperty("euid").GetInt32());
            Assert.Equal(NoGroup, ids.GetProperty("egid").GetInt32());
            Assert.Equal(200, GetOverUnix(File("app.sock"), "/over-unix").Status);
            foreach (var name in new[] { "app.pid", "access.log", "error.log", "app.sock" })
                Assert.StartsWith($"{Nobody}:{NoGroup} ", Stat(File(name)));

            // logrotate's way: move the files, then USR1; the supervisor and the workers (as nobody) reopen them.
            System.IO.File.Move(File("access.log"), File("access.log.1"));
            System.IO.File.Move(File("error.log"), File("error.log.1"));
            Signals.Send(supervisor, Signals.SIGUSR1);
            // The supervisor reopens first, then signals the workers: a request logged in the new file proves both.
            var landed = PollUntil(() =>
            {
                Assert.Equal(200, Http.Get(port, "/after-rotation").Status);
                return System.IO.File.Exists(File("access.log")) &&
                    ReadShared(File("access.log")).Contains("/after-rotation");
            });
            Assert.True(landed, "the workers never reopened the access log as nobody");
            Assert.StartsWith($"{Nobody}:{NoGroup} ", Stat(File("access.log")));
            Assert.StartsWith($"{Nobody}:{NoGroup} ", Stat(File("error.log")));

            Signals.Send(supervisor, Signals.SIGTERM);
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(30)));
            // The directory is nobody's: the supervisor, nobody by then, removed what it leaves behind.
            Assert.False(System.IO.File.Exists(File("app.pid")), "pid file left behind");
            Assert.False(System.IO.File.Exists(File("app.sock")), "unix socket left behind");
            Assert.Contains("Running as user nobody (uid 65534), group nogroup (gid 65534)",
                ReadShared(File("error.log.1")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [SkippableFact]
    public void User_NotRootAskingForAnotherUser_RefusedInOneParagraph()
    {
        Skip.IfNot(Libc.IsRoot, "setpriv must start the server as another user");
        var (code, output) = RunToExit(new[]
        {
            "--reuid=65534", "--regid=65534", "--clear-groups", ServerProcess.Executable,
            "--user", "root", "--bind", "127.0.0.1:0", "--python", Interpreters.SystemPython, App,
        }, executable: "/usr/bin/setpriv");
        Assert.Equal(1, code);
        Assert.Contains("switching to user root (uid 0), group root (gid 0) needs root", output);
        Assert.Contains("runs as uid 65534", output);
        Assert.DoesNotContain("Listening at:", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
    }

    [SkippableFact]
    public void User_TheCurrentUserWithoutRoot_Accepted()
    {
        Skip.IfNot(Libc.IsRoot, "setpriv must start the server as another user");
        var (code, output) = RunToExit(new[]
        {
            "--reuid=65534", "--regid=65534", "--clear-groups", ServerProcess.Executable, "--check-config",
            "--user", "nobody", "--group", "65534", "--python", Interpreters.SystemPython, App,
        }, executable: "/usr/bin/setpriv");
        Assert.Equal(0, code);
        Assert.Contains("configuration OK", output);
    }

    [SkippableFact]
    public void CheckConfig_UserNobody_ImportsTheAppAsNobody()
    {
        Skip.IfNot(Libc.IsRoot, "switching users needs root");
        var closed = TempDir("closed"); // root's, and 0700 below: closed to nobody
        try
        {
            File.SetUnixFileMode(closed, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var app = Path.Combine(closed, "closed_app.py");
            File.Copy(App, app);
            var (code, output) = RunToExit(new[] { "--check-config", "--python", Interpreters.SystemPython, app });
            Assert.Equal(0, code); // root reads it

            (code, output) = RunToExit(new[]
                { "--check-config", "--user", "nobody", "--python", Interpreters.SystemPython, app });
            Assert.Equal(4, code); // nobody cannot: the throwaway worker ran as nobody
            Assert.Contains("Failed to load the application", output);

            (code, output) = RunToExit(new[]
                { "--check-config", "--user", "nobody", "--python", Interpreters.SystemPython, App });
            Assert.Equal(0, code);
            Assert.Contains("run as:      user nobody (uid 65534), group nogroup (gid 65534)", output);

            // An interpreter the account cannot reach is named before any worker tries it.
            var python = Path.Combine(closed, "python3");
            File.CreateSymbolicLink(python, Interpreters.SystemPython);
            (code, output) = RunToExit(new[] { "--check-config", "--user", "nobody", "--python", python, App });
            Assert.Equal(1, code);
            Assert.Contains($"The workers' interpreter {python} cannot be run by user nobody", output);
            StartupOutput.AssertNoDotNetStackTrace(output);
        }
        finally { Directory.Delete(closed, true); }
    }

    [Theory]
    [InlineData("--user", "no-such-user-here", "--user no-such-user-here: no such user on this system")]
    [InlineData("--group", "no-such-group-here", "--group no-such-group-here: no such group on this system")]
    [InlineData("--user", "4000123", "--user 4000123: no user has that number")]
    [InlineData("--umask", "0o1000", "option --umask: expected a mask from 0 to 0o777")]
    [InlineData("--umask", "08", "option --umask: expected a mask")]
    [InlineData("-e", "NO_EQUALS_SIGN", "option -e: expected KEY=VALUE")]
    [InlineData("--env", "=value", "option --env: expected KEY=VALUE")]
    [InlineData("-e", "SHARPWSGI_THREADS=3", "SHARPWSGI_THREADS is SharpWsgi's own")]
    public void BadValue_UsageErrorInOneParagraph(string flag, string value, string expected)
    {
        foreach (var check in new[] { false, true })
        {
            var args = new List<string> { flag, value, "--python", Interpreters.SystemPython, App };
            if (check) args.Insert(0, "--check-config");
            var (code, output) = RunToExit(args);
            Assert.Equal(2, code);
            Assert.Contains(expected, output);
            Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries),
                line => line.StartsWith("sharpwsgi: error:"));
            Assert.DoesNotContain("Listening at:", output);
            StartupOutput.AssertNoDotNetStackTrace(output);
        }
    }

    // ---- --umask and the unix socket's mode --------------------------------------------------------------

    [Fact]
    public void Umask077_SocketPidAndLogs_OwnerOnlyAndTheAppInheritsTheMask()
    {
        var dir = TempDir("umask");
        try
        {
            string File(string name) => Path.Combine(dir, name);
            using var server = Start(new[]
            {
                "--umask", "077", "--pid", File("app.pid"), "--access-logfile", File("access.log"),
                "--error-logfile", File("error.log"), "--bind", "unix:" + File("app.sock"), "--bind", "127.0.0.1:0",
                App,
            }, waitForListening: false);
            var port = int.Parse(WaitForFileLine(File("error.log"), @"Listening at: http://127\.0\.0\.1:(\d+)", server)
                .Groups[1].Value);
            Assert.Equal(0x3F /* 077 */, Http.Json(Http.Get(port, "/ids")).GetProperty("umask").GetInt32());
            Assert.Equal(200, GetOverUnix(File("app.sock"), "/").Status);
            Assert.EndsWith(" 700", Stat(File("app.sock")));
            Assert.EndsWith(" 600", Stat(File("app.pid")));
            Assert.EndsWith(" 600", Stat(File("error.log")));
            Assert.EndsWith(" 600", Stat(File("access.log")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(null, "777", null)] // gunicorn's default mask for the socket is 0; the process keeps the starter's
    [InlineData("0o007", "770", 0x07)]
    [InlineData("18", "755", 0x12)] // decimal, as gunicorn reads it: 18 is 022
    public void Umask_UnixSocketMode_0777LessTheMask(string? umask, string socketMode, int? appMask)
    {
        var socket = Path.Combine(Path.GetTempPath(), $"sharpwsgi-{Guid.NewGuid():N}.sock");
        var args = new List<string> { "--bind", "127.0.0.1:0", "--bind", "unix:" + socket, App };
        if (umask != null) args.InsertRange(0, new[] { "-m", umask });
        using var server = Start(args);
        Assert.EndsWith(" " + socketMode, Stat(socket));
        Assert.Equal(appMask ?? Libc.CurrentUmask(),
            Http.Json(Http.Get(server.Port, "/ids")).GetProperty("umask").GetInt32());
    }

    // ---- -e/--env --------------------------------------------------------------------------------------

    [Fact]
    public void Env_RepeatedAndReloaded_TheAppsOsEnvironHasTheCurrentOnes()
    {
        var config = Path.Combine(TempDir("env"), "sharpwsgi.conf");
        try
        {
            File.WriteAllText(config, "env = FROM_FILE=first\n");
            using var server = Start(new[]
            {
                "-c", config, "-e", "PLAIN=1", "--env", "WITH_EQUALS=a=b", "-e", "EMPTY=", "--env=ALSO=x", App,
            });
            Assert.Equal("1", EnvOf(server, "PLAIN"));
            Assert.Equal("a=b", EnvOf(server, "WITH_EQUALS"));
            Assert.Equal("", EnvOf(server, "EMPTY")); // set, and empty: not unset
            Assert.Equal("x", EnvOf(server, "ALSO"));
            Assert.Null(EnvOf(server, "FROM_FILE")); // the command line's --env replaces the file's

            // HUP re-reads the file: what the old configuration set is undone, the new one set (gunicorn's reload).
            using var fileOnly = Start(new[] { "-c", config, App });
            Assert.Equal("first", EnvOf(fileOnly, "FROM_FILE"));
            var old = ReadyPids(fileOnly);
            File.WriteAllText(config, "env = SECOND=2\n");
            Signals.Send(fileOnly.Pid, Signals.SIGHUP);
            var fresh = WaitForNewReadyWorker(fileOnly, old);
            foreach (var pid in old) Assert.True(WaitForProcessGone(pid, LogTimeout), $"old worker {pid} stays");
            Assert.Equal(fresh, PidAnswering(fileOnly));
            Assert.Equal("2", EnvOf(fileOnly, "SECOND"));
            Assert.Null(EnvOf(fileOnly, "FROM_FILE"));
        }
        finally { Directory.Delete(Path.GetDirectoryName(config)!, true); }
    }

    // ---- -n/--name ---------------------------------------------------------------------------------------

    [Fact]
    public void Name_Shop_TitlesAndKernelNamesOfTheSupervisorAndWorkers()
    {
        using var server = Start(new[] { "-n", "shop", "-w", "2", App });
        var workers = ReadyPids(server);
        Assert.Equal("shop", Comm(server.Pid));
        Assert.Equal("sharpwsgi: master [shop]", CommandLine(server.Pid));
        Assert.Equal("shop", Proc.Run("ps", new[] { "-o", "comm=", "-p", server.Pid.ToString() }).Stdout.Trim());
        foreach (var worker in workers)
        {
            Assert.Equal("shop", Comm(worker));
            Assert.Equal("sharpwsgi: worker [shop]", CommandLine(worker));
            Assert.Equal("sharpwsgi: worker [shop]",
                Proc.Run("ps", new[] { "-o", "args=", "-p", worker.ToString() }).Stdout.Trim());
        }
    }

    [Fact]
    public void Name_LongerThanTheCommandLineFromTheEnvironment_WholeTitleAndAFifteenByteKernelName()
    {
        // The name is not among the arguments: the title needs the room the launcher freed after them.
        var name = "a-shop-with-a-rather-long-name-" + new string('x', 60);
        using var server = Start(new[] { App }, new Dictionary<string, string?> { ["SHARPWSGI_NAME"] = name });
        var worker = ReadyPids(server).Single();
        Assert.Equal($"sharpwsgi: master [{name}]", CommandLine(server.Pid));
        Assert.Equal($"sharpwsgi: worker [{name}]", CommandLine(worker));
        Assert.Equal(name[..15], Comm(server.Pid));
        Assert.Equal(name[..15], Comm(worker));
        Assert.Equal(name, EnvOf(server, "SHARPWSGI_NAME")); // the environment moved, intact
    }

    [Fact]
    public void Name_Unset_TitlesNameTheAppAndKernelNamesStay()
    {
        using var server = Start(new[] { "--python", Interpreters.SystemPython, App });
        var worker = ReadyPids(server).Single();
        Assert.Equal($"sharpwsgi: master [{App}]", CommandLine(server.Pid));
        Assert.Equal($"sharpwsgi: worker [{App}]", CommandLine(worker));
        Assert.Equal("sharpwsgi", Comm(server.Pid));
        Assert.StartsWith("python3", Comm(worker));
    }

    [Fact]
    public void Name_BinaryUpgrade_TheNewMasterIsNameDot2UntilTheOldOneExits()
    {
        var dir = TempDir("upgrade-title");
        var pidFile = Path.Combine(dir, "app.pid");
        var successor = 0;
        try
        {
            using var server = Start(new[] { "-n", "shop", "--pid", pidFile, App });
            ReadyPids(server);
            Signals.Send(server.Pid, Signals.SIGUSR2);
            var started = new Regex(@"Started the new supervisor \(pid: (\d+)\)");
            successor = int.Parse(started.Match(server.WaitForOutput(started, LogTimeout)).Groups[1].Value);
            server.WaitForOutput($@"\[{successor}\] \[INFO\] Ready: 1 worker", LogTimeout);
            Assert.Equal("sharpwsgi: master [shop.2]", CommandLine(successor)); // gunicorn's "master [NAME.2]"
            Assert.Equal("sharpwsgi: master [shop]", CommandLine(server.Pid));

            Signals.Send(server.Pid, Signals.SIGTERM);
            server.WaitForOutput($@"\[{successor}\] \[INFO\] The old supervisor \(pid {server.Pid}\) has exited",
                LogTimeout);
            Assert.True(PollUntil(() => CommandLine(successor) == "sharpwsgi: master [shop]"),
                $"the new master kept the title {CommandLine(successor)}");
        }
        finally
        {
            if (successor > 0 && Signals.IsAlive(successor))
            {
                Signals.Send(successor, Signals.SIGTERM);
                WaitForProcessGone(successor, LogTimeout);
            }
            Directory.Delete(dir, true);
        }
    }

    // ---- -D/--daemon -------------------------------------------------------------------------------------

    [Fact]
    public void Daemon_WithPid_ReturnsOnceServingDetachedAndStopsOnTerm()
    {
        var dir = TempDir("daemon");
        var pidFile = Path.Combine(dir, "app.pid");
        int daemon = 0;
        try
        {
            var clock = Stopwatch.StartNew();
            var (code, output) = RunToExit(new[] { "--daemon", "--pid", pidFile, "-w", "2", App });
            Out.WriteLine($"returned after {clock.Elapsed.TotalSeconds:F2} s");
            Assert.Equal(0, code);
            daemon = int.Parse(File.ReadAllText(pidFile).Trim());
            // The start-up lines reached the caller; the port is read from them.
            Assert.Contains($"Ready: 2 worker(s) serving", output);
            var port = int.Parse(Regex.Match(output, @"Listening at: http://127\.0\.0\.1:(\d+) \((\d+)\)")
                .Groups[1].Value);
            Assert.Equal(200, Http.Get(port, "/").Status);

            var stat = StatFields(daemon);
            Assert.NotEqual(Environment.ProcessId, stat.ParentPid);
            Assert.NotEqual(daemon, stat.Session); // in a session of its own, not its leader (the second fork)
            Assert.NotEqual(StatFields(Environment.ProcessId).Session, stat.Session);
            Assert.Equal(0, stat.TerminalNumber);
            Assert.Equal("/dev/null", Target(daemon, 0));
            Assert.Equal("/dev/null", Target(daemon, 1));
            Assert.Equal("/dev/null", Target(daemon, 2));
            foreach (var worker in ProcessTree.WithDescendants(daemon).Where(p => p != daemon))
            {
                Assert.Equal("/dev/null", Target(worker, 1)); // let go of the caller's output once ready
                Assert.Equal("/dev/null", Target(worker, 2));
            }

            Signals.Send(daemon, Signals.SIGTERM);
            Assert.True(WaitForProcessGone(daemon, TimeSpan.FromSeconds(30)), "the daemon did not stop on TERM");
            Assert.True(PollUntil(() => !File.Exists(pidFile)), "the daemon left its pid file");
        }
        finally
        {
            if (daemon > 0 && Signals.IsAlive(daemon)) Signals.Send(daemon, Signals.SIGKILL);
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Daemon_AppFailsToImport_CommandExitsWithTheServersCodeAndTraceback()
    {
        var (code, output) = RunToExit(new[] { "--daemon", BrokenApp });
        Assert.Equal(4, code);
        Assert.Contains("Traceback", output);
        Assert.Contains("Worker failed to boot", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
    }

    // ---- --capture-output --------------------------------------------------------------------------------

    [Fact]
    public void CaptureOutput_AppPrintsAndWritesToDescriptors_LinesInTheErrorLogAlsoAfterRotation()
    {
        var dir = TempDir("capture");
        try
        {
            var log = Path.Combine(dir, "error.log");
            using var server = Start(new[] { "--capture-output", "--error-logfile", log, App },
                waitForListening: false);
            var port = int.Parse(WaitForFileLine(log, @"Listening at: http://127\.0\.0\.1:(\d+)", server)
                .Groups[1].Value);
            Assert.Equal(200, Http.Get(port, "/print?m=one").Status);
            // Line-buffered: each line is in the file once the response is (the app wrote it before answering).
            var text = ReadShared(log);
            foreach (var line in new[] { "print one", "stderr one", "fd1 one", "fd2 one" })
                Assert.Contains(line + "\n", text);
            Assert.DoesNotContain("print one", server.Output);

            File.Move(log, log + ".1");
            Signals.Send(server.Pid, Signals.SIGUSR1);
            var landed = PollUntil(() =>
            {
                Assert.Equal(200, Http.Get(port, "/print?m=two").Status);
                return File.Exists(log) && ReadShared(log).Contains("print two");
            });
            Assert.True(landed, "print() never reached the reopened error log");
            Assert.Contains("fd1 two", ReadShared(log));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CaptureOutput_WithoutErrorLogFile_WarnsAndLeavesOutputAlone()
    {
        using var server = Start(new[] { "--capture-output", App });
        Assert.Contains("--capture-output does nothing without --error-logfile FILE", server.Output);
        Assert.Equal(200, Http.Get(server.Port, "/print?m=plain").Status);
        server.WaitForOutput("fd1 plain", LogTimeout);
    }

    // ---- helpers -----------------------------------------------------------------------------------------

    private (int Code, string Output) RunToExit(IEnumerable<string> args, string? executable = null)
    {
        var list = args.ToList();
        var (code, output) = ServerProcess.RunToExit(list, timeout: TimeSpan.FromSeconds(60), executable: executable);
        Out.WriteLine($"$ {executable ?? "sharpwsgi"} {string.Join(' ', list)}\n(exit {code})\n{output}");
        return (code, output);
    }

    /// <summary>A temp directory owned by nobody:nogroup, as a service's own run/log directory would be.</summary>
    private static string AccountDirectory(string prefix)
    {
        var dir = TempDir(prefix);
        Assert.Null(Libc.Chown(dir, Nobody, NoGroup));
        return dir;
    }

    private static string? EnvOf(ServerProcess server, string name)
    {
        var answer = Http.Json(Http.Get(server.Port, "/env?name=" + name));
        return answer.GetProperty("set").GetBoolean() ? answer.GetProperty("value").GetString() : null;
    }

    private static int PidAnswering(ServerProcess server) =>
        Http.Json(Http.Get(server.Port, "/ids")).GetProperty("pid").GetInt32();

    private static Dictionary<string, string> ProcStatus(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0], p => p[1].Trim());

    private static string Comm(int pid) => File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');

    /// <summary>/proc/PID/cmdline as ps shows it: NULs between arguments are spaces, trailing ones dropped.</summary>
    private static string CommandLine(int pid) =>
        File.ReadAllText($"/proc/{pid}/cmdline").TrimEnd('\0').Replace('\0', ' ');

    private static string Target(int pid, int fd) => new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget ?? "";

    private static (int ParentPid, int Session, int TerminalNumber) StatFields(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields[0] is field 3, the state
        return (int.Parse(fields[1]), int.Parse(fields[3]), int.Parse(fields[4]));
    }

    /// <summary>"UID:GID MODE" of a file, as stat(1) prints them (mode in octal).</summary>
    private static string Stat(string path) => Proc.Run("stat", new[] { "-c", "%u:%g %a", path }).Stdout.Trim();

    private static (int Status, string Body) GetOverUnix(string socketPath, string target)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            { ReceiveTimeout = 30_000 };
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        socket.Send(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        var response = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = socket.Receive(buffer)) > 0) response.Write(buffer, 0, n);
        var text = Encoding.Latin1.GetString(response.ToArray());
        var status = int.Parse(text.Split(' ', 3)[1]);
        return (status, text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
    }

    private static string ReadShared(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(fs).ReadToEnd();
    }

    /// <summary>Bounded poll: the condition, tried every 20 ms for up to <see cref="LogTimeout"/>.</summary>
    private static bool PollUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < LogTimeout)
        {
            if (condition()) return true;
            Thread.Sleep(20); // polling interval of a bounded wait on a file the server writes
        }
        return condition();
    }

    /// <summary>The first line of the file matching the pattern (its groups for the caller), polled (bounded).
    /// </summary>
    private static Match WaitForFileLine(string path, string pattern, ServerProcess server)
    {
        var regex = new Regex(pattern);
        Match? found = null;
        var seen = PollUntil(() =>
        {
            Assert.False(server.HasExited, $"sharpwsgi exited early. Output:\n{server.Output}");
            if (!File.Exists(path)) return false;
            found = ReadShared(path).Split('\n').Select(l => regex.Match(l)).FirstOrDefault(m => m.Success);
            return found != null;
        });
        Assert.True(seen, $"/{pattern}/ not in {path} within {LogTimeout}. Output:\n{server.Output}\n" +
            (File.Exists(path) ? ReadShared(path) : "(no file)"));
        return found!;
    }

    /// <summary>What these tests need of libc: who runs them, their umask, and chown(2).</summary>
    private static class Libc
    {
        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "umask")]
        private static extern int Umask(int mask);

        /// <summary>umask(2) only sets: set it back at once (the server started by the test inherits it).</summary>
        public static int CurrentUmask()
        {
            var mask = Umask(0x12);
            Umask(mask);
            return mask;
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
        private static extern uint GetEffectiveUid();

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "chown", SetLastError = true)]
        private static extern int ChownNative(string path, uint uid, uint gid);

        public static bool IsRoot => GetEffectiveUid() == 0;

        public static string? Chown(string path, uint uid, uint gid) => ChownNative(path, uid, gid) == 0
            ? null : $"chown {path}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}";
    }
}
