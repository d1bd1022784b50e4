using System.Diagnostics;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Workers are the interpreter's own executable (python -c BOOTSTRAP loading _sharpwsgi.so): every CPython 3.9-3.13
/// build here, static or shared, and a venv of each, serves; what cannot run a worker is one paragraph and a
/// non-zero exit; signals and the app's atexit hooks behave as in a gunicorn worker. A missing interpreter is a
/// reported skip.
/// </summary>
public sealed class PythonWorkerTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static string VenvApp => Path.Combine(ServerProcess.AppsDir, "startup", "venv_app.py");
    private static string EchoApp => Path.Combine(ServerProcess.AppsDir, "echo_environ.py");
    private static string AtExitApp => Path.Combine(ServerProcess.AppsDir, "pythonworker", "atexit_app.py");

    private readonly ITestOutputHelper _out;
    public PythonWorkerTests(ITestOutputHelper output) => _out = output;

    private static string? Interpreter(string which, out string reason)
    {
        if (which == "debian")
        {
            reason = File.Exists(Interpreters.SystemPython) ? "" : $"{Interpreters.SystemPython} is absent";
            return reason == "" ? Interpreters.SystemPython : null;
        }
        return Interpreters.FindPyenv(int.Parse(which.Split('.')[1]), out reason);
    }

    [SkippableTheory]
    [InlineData("3.9")]
    [InlineData("3.10")]
    [InlineData("3.11")]
    [InlineData("3.12")]
    [InlineData("3.13")]
    [InlineData("debian")]
    public void EveryCPython_ItselfAndAVenvOfIt_ServeInTheirOwnExecutable(string which)
    {
        var python = Interpreter(which, out var reason);
        Skip.If(python == null, reason);
        var version = Interpreters.Version(python!);
        var venv = Directory.CreateTempSubdirectory("sharpwsgi-worker-venv-").FullName;
        try
        {
            var made = Proc.Run(python!, new[] { "-m", "venv", "--without-pip", venv });
            Skip.If(made.ExitCode != 0, $"{python} cannot make a venv: {made.Stderr.Trim()}");
            var venvPython = Path.Combine(venv, "bin", "python");
            var site = Proc.Run(venvPython, new[] { "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])" })
                .Stdout.Trim();
            File.WriteAllText(Path.Combine(site, "sharpwsgi_venv_marker.py"), $"MARKER = 'venv of {which}'\n");

            foreach (var (interpreter, prefix) in new[] { (venvPython, venv), (python!, null) })
            {
                // The base interpreter has no marker module: it imports one from a directory on --pythonpath.
                var extra = prefix == null ? new[] { "--pythonpath", MarkerDirectory(which) } : Array.Empty<string>();
                using var server = ServerProcess.Start(new[] { "--python", interpreter }.Concat(extra).Append(VenvApp));
                var json = Http.Json(Http.Get(server.Port, "/"));
                Assert.Equal(version, json.GetProperty("python").GetString());
                if (prefix != null)
                {
                    Assert.Equal($"venv of {which}", json.GetProperty("marker").GetString());
                    Assert.Equal(Path.GetFullPath(prefix), Path.GetFullPath(json.GetProperty("prefix").GetString()!));
                }
                // The worker is that interpreter's process: its /proc/PID/exe is the python binary.
                var worker = int.Parse(Regex.Match(server.Output, @"Booting worker with pid: (\d+)").Groups[1].Value);
                var exe = new FileInfo($"/proc/{worker}/exe").LinkTarget;
                _out.WriteLine($"{interpreter}: worker {worker} runs {exe}\n{server.Output}");
                Assert.Equal(Path.GetFullPath(ResolveAll(python!)), exe);
                Assert.Matches(new Regex($@"Python {Regex.Escape(version)} \(.*\), libpython "), server.Output);
                // Debian's python3 links libpython in statically; pyenv's are shared builds.
                Assert.Contains(which == "debian" ? "(static)" : $"/libpython{which}.so", server.Output);
            }
        }
        finally { Directory.Delete(venv, true); }
    }

    [SkippableFact]
    public void StaticInterpreter_BuiltWithoutSharedLibpython_Serves()
    {
        // A copy of Debian's statically linked python3 whose build configuration says --disable-shared
        // (Py_ENABLE_SHARED=0, no libpython*.so: see make_static_python.py); such builds were refused before.
        Skip.IfNot(File.Exists(Interpreters.SystemPython), $"{Interpreters.SystemPython} is absent: no static python");
        var dest = Directory.CreateTempSubdirectory("sharpwsgi-static-python-").FullName;
        try
        {
            var made = Proc.Run(Interpreters.SystemPython,
                new[] { Path.Combine(ServerProcess.AppsDir, "startup", "make_static_python.py"), dest });
            Skip.If(made.ExitCode == 3, made.Stderr.Trim());
            Assert.True(made.ExitCode == 0, made.Stderr);
            var staticPython = made.Stdout.Trim();
            using var server = ServerProcess.Start(new[] { "--python", staticPython, EchoApp });
            Assert.Equal(200, Http.Get(server.Port, "/").Status);
            Assert.Contains($"linked into {staticPython} (static)", server.Output);
        }
        finally { Directory.Delete(dest, true); }
    }

    [Fact]
    public void Launcher_LibraryMissing_FailsWithOneParagraph()
    {
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-launcher-").FullName;
        try
        {
            var launcher = Path.Combine(dir, "sharpwsgi");
            File.Copy(ServerProcess.Executable, launcher);
            File.SetUnixFileMode(launcher, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            var run = Proc.Run(launcher, new[] { "--version" });
            _out.WriteLine(run.Stderr);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains($"{dir}/_sharpwsgi.so", run.Stderr);
            Assert.Contains("Reinstall sharpwsgi", run.Stderr);
            Assert.Single(run.Stderr.Trim().Split('\n'));
        }
        finally { Directory.Delete(dir, true); }
    }

    [SkippableFact]
    public void Worker_LibraryNotLoadable_FailsWithOneParagraphAndTheSupervisorStops()
    {
        // The JIT build takes the library from SHARPWSGI_WORKER_LIBRARY: a file python cannot load as a module.
        var jit = Path.Combine(ServerProcess.RepoRoot, "src", "SharpWsgi", "bin", "Release", "net10.0", "sharpwsgi");
        Skip.IfNot(File.Exists(jit), $"no JIT build at {jit} (dotnet build -c Release)");
        var bogus = Path.GetTempFileName();
        try
        {
            File.WriteAllText(bogus, "not a shared library\n");
            var (code, output) = ServerProcess.RunToExit(new[] { "--bind", "127.0.0.1:0", EchoApp },
                new Dictionary<string, string?> { ["SHARPWSGI_WORKER_LIBRARY"] = bogus }, executable: jit);
            _out.WriteLine(output);
            Assert.Equal(1, code);
            Assert.Matches(new Regex($@"cannot load SharpWsgi's worker library {Regex.Escape(bogus)}: ImportError"),
                output);
            StartupOutput.AssertNoDotNetStackTrace(output);
        }
        finally { File.Delete(bogus); }
    }

    [Fact]
    public void Worker_InterpreterCannotStart_ItsOwnMessageAndANonZeroExit()
    {
        // A python that cannot find its standard library dies before any SharpWsgi code runs: its own fatal error
        // is the paragraph, and the supervisor stops instead of respawning it forever.
        var (code, output) = ServerProcess.RunToExit(new[] { "--bind", "127.0.0.1:0", "--python",
            Interpreters.SystemPython, EchoApp }, new Dictionary<string, string?> { ["PYTHONHOME"] = "/nonexistent" });
        _out.WriteLine(output);
        Assert.NotEqual(0, code);
        Assert.Contains("encodings", output);
        Assert.Contains("Worker failed to boot", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
    }

    [Fact]
    public void Worker_SigInt_StopsAtOnceWithoutKeyboardInterruptAndIsReplaced()
    {
        using var server = ServerProcess.Start(new[] { "--python", Interpreters.SystemPython, EchoApp });
        var first = int.Parse(Regex.Match(server.Output, @"Booting worker with pid: (\d+)").Groups[1].Value);
        Signals.Send(first, Signals.SIGINT);
        server.WaitForOutput(new Regex($@"\(pid: {first}\).*exit code 0"), ExitTimeout);
        server.WaitForOutput(new Regex(@"Worker ready \(pid: (?!" + first + @"\b)\d+"), ExitTimeout);
        Assert.Equal(200, Http.Get(server.Port, "/").Status);
        Assert.DoesNotContain("KeyboardInterrupt", server.Output);
    }

    [Fact]
    public void Worker_Stop_RunsTheAppsAtExitHooks()
    {
        var marker = Path.GetTempFileName();
        File.Delete(marker);
        try
        {
            using var server = ServerProcess.Start(new[] { "--python", Interpreters.SystemPython, AtExitApp },
                new Dictionary<string, string?> { ["SHARPWSGI_TEST_ATEXIT_FILE"] = marker });
            var body = Http.Get(server.Port, "/").BodyText;
            _out.WriteLine(body);
            Assert.StartsWith(Interpreters.SystemPython + " sharpwsgi ", body); // sys.executable, sys.argv[0]
            var worker = body.Split(' ')[2];
            Signals.Send(server.Pid, Signals.SIGTERM);
            Assert.Equal(0, server.WaitForExit(ExitTimeout));
            Assert.Equal($"atexit ran in {worker}\n", File.ReadAllText(marker));
        }
        finally { File.Delete(marker); }
    }

    private static string ResolveAll(string path)
    {
        var info = new FileInfo(path);
        return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
    }

    private static string MarkerDirectory(string which)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-marker-{which}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "sharpwsgi_venv_marker.py"), $"MARKER = 'path of {which}'\n");
        return dir;
    }
}
