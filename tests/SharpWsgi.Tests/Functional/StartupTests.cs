using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The sharpwsgi command: the welcome app, --version/--help, environment variables, every APP form,
/// --chdir/--pythonpath/--root-path/--bind, interpreter choice, and each startup failure (one clear
/// paragraph, a non-zero exit, no .NET stack trace).
/// </summary>
public sealed class StartupTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static string StartupApps => Path.Combine(ServerProcess.AppsDir, "startup");
    private static string FormsApp => Path.Combine(StartupApps, "forms_app.py");
    private static string EchoApp => Path.Combine(ServerProcess.AppsDir, "echo_environ.py");

    private readonly ITestOutputHelper _out;
    public StartupTests(ITestOutputHelper output) => _out = output;

    private static string ProductVersion()
    {
        var props = File.ReadAllText(Path.Combine(ServerProcess.RepoRoot, "Directory.Build.props"));
        return Regex.Match(props, "<Version>([^<]+)</Version>").Groups[1].Value;
    }

    private (int Code, string Output) RunToExit(params string[] args) => RunToExit(args, null);

    /// <summary>Runs the command to its exit. A server that starts listening instead (where a failure is expected)
    /// is stopped at once and reported with exit code 0, so such a test fails fast rather than timing out.</summary>
    private (int Code, string Output) RunToExit(string[] args, IDictionary<string, string?>? env)
    {
        using var server = ServerProcess.Start(args, env, waitForListening: false);
        int code;
        try
        {
            server.WaitForOutput(new Regex("Listening at: "), ExitTimeout);
            code = 0;
            _out.WriteLine("the server started listening where it was expected to exit");
        }
        catch (InvalidOperationException)
        {
            code = server.WaitForExit(ExitTimeout); // it exited before listening
        }
        var output = server.Output;
        _out.WriteLine($"$ sharpwsgi {string.Join(' ', args)}\n(exit {code})\n{output}");
        return (code, output);
    }

    /// <summary>A failed start: non-zero exit, a short message, no .NET stack trace, nothing listening.</summary>
    private static void AssertCleanFailure(int code, string output)
    {
        Assert.NotEqual(0, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.DoesNotContain("Listening at:", output);
    }

    private static JsonElement GetJson(ServerProcess server, string target)
    {
        var r = Http.Get(server.Port, target);
        Assert.True(r.Status == 200, $"GET {target}: {r.StatusLine} {r.BodyText}\nserver output:\n{server.Output}");
        return Http.Json(r);
    }

    // ---- no APP, --version, --help --------------------------------------------------------------------------

    [SkippableFact]
    public void Start_NoApp_WelcomePageShowsVersionPythonAndEnviron()
    {
        using var server = ServerProcess.Start(Array.Empty<string>());
        var python = Regex.Match(server.Output, @"Python (\d+\.\d+\.\d+)");
        Assert.True(python.Success, "no 'Python X.Y.Z' startup line:\n" + server.Output);
        var r = Http.Get(server.Port, "/some/path?q=1");
        Assert.Equal(200, r.Status);
        Assert.StartsWith("text/html", r.Header("Content-Type"));
        var html = r.BodyText;
        Assert.Contains(ProductVersion(), html);
        Assert.Contains(python.Groups[1].Value, html);
        foreach (var key in new[] { "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
            "wsgi.url_scheme" })
            Assert.Contains(key, html);
        Assert.Contains("/some/path", html);
    }

    [SkippableFact]
    public void Version_Flag_PrintsVersionAndExitsZero()
    {
        var (code, output) = RunToExit("--version");
        Assert.Equal(0, code);
        Assert.Contains(ProductVersion(), output);
        Assert.DoesNotContain("Listening at:", output);
    }

    [SkippableFact]
    public void Help_Flag_ListsEveryOptionAndItsEnvironmentVariable()
    {
        var (code, output) = RunToExit("--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "-b", "--bind", "--threads", "--python", "--chdir", "--pythonpath",
            "--root-path", "--log-level", "--version", "--help" })
            Assert.Matches(new Regex($@"(^|[\s,]){Regex.Escape(option)}\b", RegexOptions.Multiline), output);
        foreach (var env in new[] { "SHARPWSGI_BIND", "SHARPWSGI_THREADS", "SHARPWSGI_PYTHON", "SHARPWSGI_CHDIR",
            "SHARPWSGI_PYTHONPATH", "SHARPWSGI_ROOT_PATH", "SHARPWSGI_LOG_LEVEL" })
            Assert.Contains(env, output);
        Assert.Contains("APP", output);
    }

    [SkippableFact]
    public void Start_UnknownOption_FailsWithClearError()
    {
        var (code, output) = RunToExit("--no-such-option", EchoApp);
        AssertCleanFailure(code, output);
        Assert.Contains("--no-such-option", output);
    }

    // ---- environment variables ----------------------------------------------------------------------------

    [SkippableFact]
    public async Task EnvironmentVariable_Threads_RunsThatManyRequestsAtOnce()
    {
        // Three requests wait on a threading.Barrier(3): they can only all return if three Python threads of one
        // process run them (one worker process, so the barrier is shared).
        using var server = ServerProcess.Start(new[] { EchoApp },
            new Dictionary<string, string?> { ["SHARPWSGI_THREADS"] = "3", ["SHARPWSGI_WORKERS"] = "1" });
        var tasks = Enumerable.Range(0, 3)
            .Select(_ => Task.Run(() => Http.Get(server.Port, "/__barrier?n=3&timeout=20"))).ToArray();
        var results = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(40));
        foreach (var r in results)
            Assert.True(r.Status == 200, $"a barrier request got {r.StatusLine}: fewer than 3 Python threads?");
        Assert.Equal(3, results.Select(r => Http.Json(r).GetProperty("thread").GetInt64()).Distinct().Count());
    }

    [SkippableFact]
    public void EnvironmentVariable_InvalidThreads_FailsNamingTheSetting()
    {
        var (code, output) = RunToExit(new[] { EchoApp },
            new Dictionary<string, string?> { ["SHARPWSGI_THREADS"] = "many" });
        AssertCleanFailure(code, output);
        Assert.Contains("many", output);
        Assert.Matches(new Regex("SHARPWSGI_THREADS|threads", RegexOptions.IgnoreCase), output);
    }

    [SkippableFact]
    public void EnvironmentVariable_RootPathAndPythonPath_AreApplied()
    {
        using var server = ServerProcess.Start(new[] { "only_app" }, new Dictionary<string, string?>
        {
            ["SHARPWSGI_PYTHONPATH"] = StartupApps,
        });
        Assert.Equal("only_app.app", GetJson(server, "/").GetProperty("app").GetString());

        using var echo = ServerProcess.Start(new[] { EchoApp },
            new Dictionary<string, string?> { ["SHARPWSGI_ROOT_PATH"] = "/env-root" });
        var env = Http.Environ(Http.Get(echo.Port, "/env-root/a/b"));
        Assert.Equal("/env-root", env.Str("SCRIPT_NAME"));
        Assert.Equal("/a/b", env.Str("PATH_INFO"));
    }

    [SkippableFact]
    public void CommandLine_OptionAndEnvironmentVariable_CommandLineWins()
    {
        using var server = ServerProcess.Start(new[] { "--root-path", "/cli", EchoApp },
            new Dictionary<string, string?> { ["SHARPWSGI_ROOT_PATH"] = "/env" });
        var env = Http.Environ(Http.Get(server.Port, "/cli/x"));
        Assert.Equal("/cli", env.Str("SCRIPT_NAME"));
        Assert.Equal("/x", env.Str("PATH_INFO"));
    }

    // ---- APP forms ----------------------------------------------------------------------------------------

    public static IEnumerable<object[]> AppForms => new[]
    {
        new object[] { "module:name", new[] { "--pythonpath", "{startup}", "forms_app:custom" }, "custom" },
        new object[] { "module:factory()", new[] { "--pythonpath", "{startup}", "forms_app:create_app()" }, "factory" },
        new object[] { "module (application)", new[] { "--pythonpath", "{startup}", "forms_app" }, "application" },
        new object[] { "module (app fallback)", new[] { "--pythonpath", "{startup}", "only_app" }, "only_app.app" },
        new object[] { "module.sub:name", new[] { "--pythonpath", "{apps}", "startup.forms_app:app" }, "app" },
        new object[] { "file.py", new[] { "{startup}/forms_app.py" }, "application" },
        new object[] { "file.py:name", new[] { "{startup}/forms_app.py:custom" }, "custom" },
        new object[] { "relative file.py:name", new[] { "tests/apps/startup/forms_app.py:app" }, "app" },
    };

    [SkippableTheory]
    [MemberData(nameof(AppForms))]
    public void Start_AppForm_ServesTheNamedCallable(string form, string[] args, string expectedApp)
    {
        _out.WriteLine("APP form: " + form);
        var resolved = args.Select(a => a.Replace("{startup}", StartupApps).Replace("{apps}", ServerProcess.AppsDir))
            .ToArray();
        using var server = ServerProcess.Start(resolved);
        var json = GetJson(server, "/");
        Assert.Equal(expectedApp, json.GetProperty("app").GetString());
        if (expectedApp == "factory")
            Assert.Equal(1, json.GetProperty("factory_calls").GetInt32());
    }

    [SkippableFact]
    public void Start_Chdir_RelativeFileAppAndWorkingDirectory()
    {
        using var server = ServerProcess.Start(new[] { "--chdir", StartupApps, "forms_app.py:custom" });
        var json = GetJson(server, "/");
        Assert.Equal("custom", json.GetProperty("app").GetString());
        Assert.Equal(Path.GetFullPath(StartupApps), json.GetProperty("cwd").GetString());
    }

    [SkippableFact]
    public void Start_Chdir_ModuleImportableFromThatDirectory()
    {
        // As gunicorn's --chdir: the directory becomes the working directory and is importable.
        using var server = ServerProcess.Start(new[] { "--chdir", StartupApps, "forms_app:app" });
        Assert.Equal("app", GetJson(server, "/").GetProperty("app").GetString());
    }

    [SkippableFact]
    public void Start_PythonPathRepeated_EveryDirectoryIsSearched()
    {
        var empty = Directory.CreateTempSubdirectory("sharpwsgi-empty-").FullName;
        try
        {
            using var server = ServerProcess.Start(new[]
                { "--pythonpath", empty, "--pythonpath", StartupApps, "only_app" });
            Assert.Equal("only_app.app", GetJson(server, "/").GetProperty("app").GetString());
        }
        finally { Directory.Delete(empty, true); }
    }

    [SkippableFact]
    public void Start_RootPath_SplitsScriptNameAndPathInfo()
    {
        using var server = ServerProcess.Start(new[] { "--root-path", "/prefix", EchoApp });
        var env = Http.Environ(Http.Get(server.Port, "/prefix/a/b?c=d"));
        Assert.Equal("/prefix", env.Str("SCRIPT_NAME"));
        Assert.Equal("/a/b", env.Str("PATH_INFO"));
        Assert.Equal("c=d", env.Str("QUERY_STRING"));
        var exact = Http.Environ(Http.Get(server.Port, "/prefix"));
        Assert.Equal("/prefix", exact.Str("SCRIPT_NAME"));
        Assert.Equal("", exact.Str("PATH_INFO"));
    }

    // ---- binding ------------------------------------------------------------------------------------------

    [SkippableFact]
    public void Start_BindTcpAndUnixSocket_BothServe()
    {
        var socketPath = Path.Combine(Path.GetTempPath(), $"sharpwsgi-{Guid.NewGuid():N}.sock");
        try
        {
            using var server = ServerProcess.Start(new[]
                { "--bind", "127.0.0.1:0", "--bind", "unix:" + socketPath, EchoApp });
            Assert.Equal(200, Http.Get(server.Port, "/tcp").Status);
            Assert.True(File.Exists(socketPath), "unix socket not created at " + socketPath + "\n" + server.Output);

            using var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                { ReceiveTimeout = 30_000 };
            unix.Connect(new UnixDomainSocketEndPoint(socketPath));
            unix.Send(Encoding.ASCII.GetBytes(
                "GET /over-unix HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
            var response = new MemoryStream();
            var buf = new byte[65536];
            int n;
            while ((n = unix.Receive(buf)) > 0) response.Write(buf, 0, n);
            var text = Encoding.Latin1.GetString(response.ToArray());
            Assert.StartsWith("HTTP/1.1 200", text);
            Assert.Contains("/over-unix", text);
        }
        finally { File.Delete(socketPath); }
    }

    [SkippableFact]
    public void Start_BindIpv6Loopback_Serves()
    {
        using var server = ServerProcess.Start(new[] { "--bind", "[::1]:0", EchoApp });
        Assert.Equal(IPAddress.IPv6Loopback.ToString(), server.BaseUri.Host.Trim('[', ']'));
        using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp)
            { ReceiveTimeout = 30_000 };
        s.Connect(IPAddress.IPv6Loopback, server.Port);
        s.Send(Encoding.ASCII.GetBytes($"GET /v6 HTTP/1.1\r\nHost: [::1]:{server.Port}\r\nConnection: close\r\n\r\n"));
        var response = new MemoryStream();
        var buf = new byte[65536];
        int n;
        while ((n = s.Receive(buf)) > 0) response.Write(buf, 0, n);
        var text = Encoding.Latin1.GetString(response.ToArray());
        Assert.StartsWith("HTTP/1.1 200", text);
        Assert.Contains("\"REMOTE_ADDR\": \"::1\"", text);
    }

    [SkippableFact]
    public void Start_AddressInUse_FailsWithClearError()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var (code, output) = RunToExit("--bind", $"127.0.0.1:{port}", EchoApp);
        AssertCleanFailure(code, output);
        Assert.Contains(port.ToString(), output);
        Assert.Matches(new Regex("in use", RegexOptions.IgnoreCase), output);
    }

    [SkippableFact]
    public void Start_InvalidBind_FailsWithClearError()
    {
        var (code, output) = RunToExit("--bind", "not-an-address:xyz", EchoApp);
        AssertCleanFailure(code, output);
        Assert.Contains("not-an-address:xyz", output);
    }

    // ---- APP failures -------------------------------------------------------------------------------------

    [SkippableFact]
    public void Start_AppImportError_FailsWithPythonTraceback()
    {
        var (code, output) = RunToExit(Path.Combine(StartupApps, "broken_app.py"));
        AssertCleanFailure(code, output);
        Assert.Contains("Traceback (most recent call last)", output);
        Assert.Contains("broken_app.py", output);
        Assert.Contains("RuntimeError: boom while importing broken_app", output);
    }

    [SkippableFact]
    public void Start_AppModuleMissing_FailsNamingTheModule()
    {
        var (code, output) = RunToExit("no_such_module_xyz:app");
        AssertCleanFailure(code, output);
        Assert.Contains("no_such_module_xyz", output);
        Assert.Contains("ModuleNotFoundError", output);
    }

    [SkippableFact]
    public void Start_AppAttributeMissing_FailsNamingTheAttribute()
    {
        var (code, output) = RunToExit("--pythonpath", StartupApps, "forms_app:no_such_attribute");
        AssertCleanFailure(code, output);
        Assert.Contains("no_such_attribute", output);
    }

    [SkippableFact]
    public void Start_AppNotCallable_FailsWithClearError()
    {
        var (code, output) = RunToExit("--pythonpath", StartupApps, "forms_app:not_callable");
        AssertCleanFailure(code, output);
        Assert.Contains("not_callable", output);
        Assert.Matches(new Regex("callable", RegexOptions.IgnoreCase), output.Replace("not_callable", ""));
    }

    [SkippableFact]
    public void Start_AppFileMissing_FailsNamingTheFile()
    {
        var (code, output) = RunToExit(Path.Combine(StartupApps, "no_such_file.py"));
        AssertCleanFailure(code, output);
        Assert.Contains("no_such_file.py", output);
    }

    // ---- choosing the interpreter ---------------------------------------------------------------------------

    [SkippableFact]
    public void Start_PythonOption_StartupLineNamesVersionAndPath()
    {
        Assert.True(File.Exists(Interpreters.SystemPython),
            Interpreters.SystemPython + " is required (Debian python3)");
        var version = Interpreters.Version(Interpreters.SystemPython);
        using var server = ServerProcess.Start(new[] { "--python", Interpreters.SystemPython, EchoApp });
        Assert.Matches(new Regex($@"Python {Regex.Escape(version)}\b.*\(/"), server.Output);
        Assert.Equal(200, Http.Get(server.Port, "/").Status);
    }

    [SkippableFact]
    public void Start_NoPythonOption_UsesPython3OnPath()
    {
        var env = new Dictionary<string, string?> { ["VIRTUAL_ENV"] = null, ["SHARPWSGI_PYTHON"] = null };
        var onPath = Proc.Run("python3",
            new[] { "-c", "import sys; print(sys.version.split()[0]); print(sys.executable)" }, environment: env);
        var lines = onPath.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using var server = ServerProcess.Start(new[] { EchoApp }, env);
        _out.WriteLine(server.Output);
        Assert.Matches(new Regex($@"Python {Regex.Escape(lines[0])}\b"), server.Output);
    }

    [SkippableFact]
    public void Start_VirtualEnvSet_UsesItsInterpreterAndSitePackages()
    {
        // A venv made from any 3.9+ interpreter; a module installed only in its site-packages must import.
        var baseline = Enumerable.Range(9, 5).Select(m => Interpreters.FindPyenv(m, out _))
            .FirstOrDefault(p => p != null) ?? Interpreters.SystemPython;
        var venv = Directory.CreateTempSubdirectory("sharpwsgi-venv-").FullName;
        try
        {
            var made = Proc.Run(baseline, new[] { "-m", "venv", "--without-pip", venv });
            if (made.ExitCode != 0)
            {
                throw new SkipException($"could not create a venv with {baseline}: {made.Stderr}");
            }
            var venvPython = Path.Combine(venv, "bin", "python");
            var site = Proc.Run(venvPython, new[] { "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])" })
                .Stdout.Trim();
            File.WriteAllText(Path.Combine(site, "sharpwsgi_venv_marker.py"), "MARKER = 'from the venv'\n");
            var version = Interpreters.Version(venvPython);

            using var server = ServerProcess.Start(new[] { Path.Combine(StartupApps, "venv_app.py") },
                new Dictionary<string, string?> { ["VIRTUAL_ENV"] = venv, ["SHARPWSGI_PYTHON"] = null });
            var json = GetJson(server, "/");
            Assert.Equal("from the venv", json.GetProperty("marker").GetString());
            Assert.Equal(version, json.GetProperty("python").GetString());
            Assert.Equal(Path.GetFullPath(venv), Path.GetFullPath(json.GetProperty("prefix").GetString()!));
            Assert.Matches(new Regex($@"Python {Regex.Escape(version)}\b"), server.Output);
        }
        finally { Directory.Delete(venv, true); }
    }

    [SkippableFact]
    public void Start_PythonNotFound_FailsWithClearError()
    {
        var (code, output) = RunToExit("--python", "/nonexistent/bin/python3", EchoApp);
        AssertCleanFailure(code, output);
        Assert.Contains("/nonexistent/bin/python3", output);
    }

    [SkippableFact]
    public void Start_PythonIsNotAnInterpreter_FailsWithClearError()
    {
        var (code, output) = RunToExit("--python", "/bin/false", EchoApp);
        AssertCleanFailure(code, output);
        Assert.Contains("/bin/false", output);
    }

    [SkippableFact]
    public void Start_PythonOlderThan39_FailsWithClearError()
    {
        var old = Interpreters.FindPyenv(8, out var reason) ?? Interpreters.FindPyenv(7, out _);
        if (old == null)
        {
            throw new SkipException($"no CPython older than 3.9 to try ({reason})");
        }
        var version = Interpreters.Version(old);
        var (code, output) = RunToExit("--python", old, EchoApp);
        AssertCleanFailure(code, output);
        Assert.Contains(version, output);
        Assert.Contains("3.9", output);
    }

    [SkippableFact]
    public void Start_RemovesSharedFilesOfSupervisorsThatNoLongerRun()
    {
        // A pid that has just exited: its supervisor files are what a SIGKILLed server leaves behind.
        using var gone = System.Diagnostics.Process.Start("true")!;
        gone.WaitForExit();
        var dir = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        var stale = Path.Combine(dir, $"sharpwsgi-{gone.Id}.balance");
        var unrelated = Path.Combine(dir, $"sharpwsgi-test-{Guid.NewGuid():N}.balance");
        File.WriteAllText(stale, "");
        File.WriteAllText(unrelated, "");
        try
        {
            using var server = ServerProcess.StartApp(EchoApp);
            Assert.False(File.Exists(stale), "the dead supervisor's file was left");
            Assert.True(File.Exists(unrelated), "a file not named by a pid was removed");
        }
        finally
        {
            File.Delete(stale);
            File.Delete(unrelated);
        }
    }
}
