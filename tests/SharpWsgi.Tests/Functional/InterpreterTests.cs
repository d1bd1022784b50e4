using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --interpreters N (PEP 684 sub-interpreters with their own GIL) on pyenv's CPython 3.12 and 3.13: module state per
/// interpreter, a request timeout in one interpreter while the other serves, an extension module without
/// sub-interpreter support refused by name, Flask (Debian's pure-Python Flask on --pythonpath), a clean stop, and
/// the refusal on 3.11. A row whose interpreter is absent is reported as skipped, with the reason.
/// The validator's tests under --interpreters 2 are <see cref="ValidatorInterpreters312Tests"/> and 313.
/// </summary>
public sealed class InterpreterTests
{
    private readonly ITestOutputHelper _out;
    public InterpreterTests(ITestOutputHelper output) => _out = output;

    public static IEnumerable<object[]> Versions => new[] { 12, 13 }.Select(m => new object[] { m });

    private static string App => Path.Combine(ServerProcess.AppsDir, "interpreters_app.py");
    private static readonly Regex SpinStart = new(@"SPIN-START interpreter=(\d+)");

    /// <summary>pyenv's CPython 3.minor; the test is reported as skipped, with the reason, when it is absent.</summary>
    private string Python(int minor)
    {
        var python = Interpreters.FindPyenv(minor, out var reason) ?? throw new SkipException($"3.{minor}: {reason}");
        _out.WriteLine($"3.{minor}: {python}");
        return python;
    }

    private static JsonElement WhoAmI(int port)
    {
        var r = Http.Get(port, "/whoami");
        Assert.Equal(200, r.Status);
        return Http.Json(r);
    }

    /// <summary>Concurrent requests until both interpreters have answered (the least loaded one takes each).</summary>
    private static Dictionary<int, List<JsonElement>> AnswersByInterpreter(int port, int want = 2)
    {
        var seen = new Dictionary<int, List<JsonElement>>();
        var deadline = Stopwatch.StartNew();
        while (seen.Count < want && deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            var batch = Enumerable.Range(0, 8).AsParallel().WithDegreeOfParallelism(8).Select(_ => WhoAmI(port))
                .ToList();
            foreach (var j in batch)
            {
                var id = j.GetProperty("interpreter").GetInt32();
                if (!seen.TryGetValue(id, out var list)) seen[id] = list = new List<JsonElement>();
                list.Add(j);
            }
        }
        return seen;
    }

    [SkippableTheory]
    [MemberData(nameof(Versions))]
    public void TwoInterpreters_ModuleState_IsPerInterpreter(int minor)
    {
        var python = Python(minor);
        using var server = ServerProcess.Start(new[] { "--python", python, "--interpreters", "2", App });
        Assert.Contains("Serving with 2 Python interpreters", server.Output);
        var seen = AnswersByInterpreter(server.Port);
        Assert.Equal(2, seen.Count);
        Assert.Contains(0, seen.Keys); // the main interpreter serves too
        // One process, two imports of the module: each has its own token and its own request counter.
        Assert.Single(seen.Values.SelectMany(l => l).Select(j => j.GetProperty("pid").GetInt32()).Distinct());
        var tokens = seen.ToDictionary(kv => kv.Key,
            kv => kv.Value.Select(j => j.Str("token")).Distinct().Single());
        Assert.NotEqual(tokens.Values.First(), tokens.Values.Last());
        foreach (var (_, answers) in seen)
        {
            var counts = answers.Select(j => j.GetProperty("count").GetInt32()).ToList();
            Assert.Equal(counts.Count, counts.Distinct().Count()); // counted in this interpreter only
            Assert.All(answers, j => Assert.True(j.GetProperty("multiprocess").GetBoolean()));
        }
        Assert.True(seen.Values.Sum(l => l.Count) > seen.Values.Max(l => l.Max(j => j.GetProperty("count").GetInt32())),
            "one interpreter's counter saw every request");
    }

    [SkippableTheory]
    [MemberData(nameof(Versions))]
    public void TwoInterpreters_TimeoutInOne_OtherKeepsServingAndTheThreadComesBack(int minor)
    {
        var python = Python(minor);
        using var server = ServerProcess.Start(new[]
            { "--python", python, "--interpreters", "2", "--threads", "1", "--request-timeout", "2", App });
        var spin = Task.Run(() => Http.Get(server.Port, "/spin"));
        // The app says when it starts spinning: from then on every request goes to the other interpreter, at once.
        var spinning = int.Parse(SpinStart.Match(server.WaitForOutput(SpinStart, TimeSpan.FromSeconds(15)))
            .Groups[1].Value);
        var during = new List<int>();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 10; i++)
        {
            var t = Stopwatch.StartNew();
            var j = WhoAmI(server.Port);
            Assert.True(t.Elapsed < TimeSpan.FromSeconds(1), $"a request took {t.Elapsed} while the other spun");
            during.Add(j.GetProperty("interpreter").GetInt32());
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1.7), "the requests waited for the spinning interpreter");
        Assert.Single(during.Distinct());
        Assert.NotEqual(spinning, during[0]);
        Assert.True(spin.Wait(TimeSpan.FromSeconds(15)));
        Assert.Equal(504, spin.Result.Status);
        server.WaitForOutput("interrupted by RequestTimeout", TimeSpan.FromSeconds(10));
        // RequestTimeout was raised in the spinning interpreter's thread (not the other's), which serves again.
        var seen = AnswersByInterpreter(server.Port);
        Assert.Equal(2, seen.Count);
        var interrupted = new Dictionary<int, int>();
        var deadline = Stopwatch.StartNew();
        while (interrupted.Count < 2 && deadline.Elapsed < TimeSpan.FromSeconds(20))
            foreach (var j in Enumerable.Range(0, 4).AsParallel().Select(_ => Http.Json(
                         Http.Get(server.Port, "/interrupted"))))
                interrupted[j.GetProperty("interpreter").GetInt32()] = j.GetProperty("interrupted").GetInt32();
        _out.WriteLine(string.Join(", ", interrupted.Select(kv => $"interpreter {kv.Key}: {kv.Value} interrupted")));
        Assert.Equal(0, interrupted[during[0]]);
        Assert.Equal(1, interrupted.Where(kv => kv.Key != during[0]).Single().Value);
        Assert.DoesNotContain("Recycl", server.Output);
    }

    [SkippableTheory]
    [MemberData(nameof(Versions))]
    public void TwoInterpreters_SinglePhaseExtension_RefusedNamingTheModule(int minor)
    {
        var python = Python(minor);
        var module = SinglePhaseModule(python, out var pythonPath);
        var app = Path.Combine(Path.GetTempPath(), $"sharpwsgi-singlephase-{Guid.NewGuid():N}.py");
        File.WriteAllText(app, $"import {module}\n\ndef application(environ, start_response):\n" +
            "    start_response('200 OK', [])\n    return [b'x']\n");
        try
        {
            var args = new List<string> { "--python", python, "--interpreters", "2", app };
            if (pythonPath != null) args.InsertRange(0, new[] { "--pythonpath", pythonPath });
            var (code, output) = ServerProcess.RunToExit(args);
            _out.WriteLine(output);
            Assert.Equal(4, code); // the app-load exit code: the supervisor halts, no respawn loop
            Assert.Contains($"extension module '{module}', which does not support sub-interpreters", output);
            Assert.Contains("Use --interpreters 1", output);
            Assert.Contains("Worker failed to boot", output);
            Assert.DoesNotContain("Unhandled exception", output);

            // --check-config imports the app in a sub-interpreter too, and says the same.
            var (checkCode, checkOutput) = ServerProcess.RunToExit(args.Prepend("--check-config"));
            Assert.Equal(4, checkCode);
            Assert.Contains($"extension module '{module}', which does not support sub-interpreters", checkOutput);

            // The same app with one interpreter is served.
            using var one = ServerProcess.Start(args.Where(a => a != "--interpreters" && a != "2"));
            Assert.Equal(200, Http.Get(one.Port, "/").Status);
        }
        finally { File.Delete(app); }
    }

    [SkippableTheory]
    [MemberData(nameof(Versions))]
    public void TwoInterpreters_PyO3Extension_RefusedNamingTheModule(int minor)
    {
        var python = Python(minor);
        // Debian's cryptography has a PyO3 module built for the stable ABI (_rust.abi3.so): it loads on 3.12+.
        const string debian = "/usr/lib/python3/dist-packages";
        var env = new Dictionary<string, string?> { ["PYTHONPATH"] = debian };
        if (Proc.Run(python, new[] { "-c", "from cryptography.hazmat.bindings import _rust" },
                environment: env).ExitCode != 0)
        {
            throw new SkipException($"Debian's cryptography (PyO3) does not import on 3.{minor} from {debian}");
        }
        var app = Path.Combine(Path.GetTempPath(), $"sharpwsgi-pyo3-{Guid.NewGuid():N}.py");
        File.WriteAllText(app, "from cryptography.hazmat.bindings import _rust\n\n" +
            "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'x']\n");
        try
        {
            var (code, output) = ServerProcess.RunToExit(new[]
                { "--python", python, "--pythonpath", debian, "--interpreters", "2", app });
            _out.WriteLine(output);
            Assert.Equal(4, code);
            Assert.Contains("extension module 'cryptography.hazmat.bindings._rust', which does not support " +
                "sub-interpreters", output);
            Assert.Contains("Use --interpreters 1", output);
        }
        finally { File.Delete(app); }
    }

    /// <summary>The interpreter's own _testsinglephase (test builds ship it), else a tiny single-phase extension
    /// built here with gcc against the interpreter's headers; the test is skipped, with gcc's error, when neither
    /// is possible.</summary>
    private static string SinglePhaseModule(string python, out string? pythonPath)
    {
        pythonPath = null;
        if (Interpreters.CanImport(python, "_testsinglephase")) return "_testsinglephase";
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-ext-").FullName;
        var source = Path.Combine(dir, "single.c");
        File.WriteAllText(source, """
            #include <Python.h>
            static struct PyModuleDef def = { PyModuleDef_HEAD_INIT, "sharpwsgi_single", NULL, -1, NULL };
            PyMODINIT_FUNC PyInit_sharpwsgi_single(void) { return PyModule_Create(&def); }
            """);
        var include = Proc.Run(python, new[] { "-c", "import sysconfig; print(sysconfig.get_paths()['include'])" })
            .Stdout.Trim();
        var built = Proc.Run("gcc", new[]
            { "-shared", "-fPIC", "-I", include, source, "-o", Path.Combine(dir, "sharpwsgi_single.so") });
        if (built.ExitCode != 0)
        {
            throw new SkipException($"no _testsinglephase and gcc failed: {built.Stderr}");
        }
        pythonPath = dir;
        return "sharpwsgi_single";
    }

    [SkippableTheory]
    [MemberData(nameof(Versions))]
    public async Task TwoInterpreters_Flask_ServesPagesAndForms(int minor)
    {
        var python = Python(minor);
        const string debian = "/usr/lib/python3/dist-packages";
        if (!File.Exists(Path.Combine(debian, "flask", "__init__.py")))
        {
            throw new SkipException($"Debian's python3-flask is not in {debian}");
        }
        using var server = ServerProcess.Start(new[]
        {
            "--python", python, "--pythonpath", debian, "--interpreters", "2",
            Path.Combine(ServerProcess.AppsDir, "flask_site.py"),
        });
        using var client = ProbeServer.NewClient(server);
        for (int i = 0; i < 8; i++)
        {
            var pages = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => client.GetStringAsync("/")));
            Assert.All(pages, p => Assert.Contains("Hello from Flask", p));
        }
        using var json = await client.GetAsync("/api/info?x=1");
        Assert.Equal(200, (int)json.StatusCode);
        Assert.Contains($"3.{minor}.", await json.Content.ReadAsStringAsync());
        using var missing = await client.GetAsync("/no/such/page");
        Assert.Equal(404, (int)missing.StatusCode);
        Assert.Contains("Serving with 2 Python interpreters", server.Output);
    }

    [SkippableTheory]
    [MemberData(nameof(Versions))]
    public void TwoInterpreters_Sigterm_EndsEveryInterpreterCleanly(int minor)
    {
        var python = Python(minor);
        using var server = ServerProcess.Start(new[] { "--python", python, "--interpreters", "3", App });
        Assert.Equal(3, AnswersByInterpreter(server.Port, want: 3).Count);
        Signals.Send(server.Pid, Signals.SIGTERM);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(30)));
        _out.WriteLine(server.Output);
        Assert.Contains("Worker exited (pid: ", server.Output);
        Assert.Contains("exit code 0", server.Output);
        Assert.DoesNotContain("Ending a Python interpreter", server.Output);
        Assert.DoesNotContain("Fatal Python error", server.Output);
    }

    [SkippableFact]
    public void Interpreters_OnPython311_RefusedWithOneParagraph()
    {
        var python = Interpreters.FindPyenv(11, out var reason);
        if (python == null && File.Exists(Interpreters.SystemPython) &&
            Interpreters.Version(Interpreters.SystemPython).StartsWith("3.11", StringComparison.Ordinal))
            python = Interpreters.SystemPython;
        if (python == null)
        {
            throw new SkipException($"{reason}");
        }
        var (code, output) = ServerProcess.RunToExit(new[] { "--python", python, "--interpreters", "2", App });
        _out.WriteLine(output);
        Assert.NotEqual(0, code);
        Assert.Contains("--interpreters 2 needs CPython 3.12 or newer, but this is Python 3.11", output);
        Assert.Contains("Use --interpreters 1", output);
        Assert.Contains("Worker failed to boot", output);
    }

    [SkippableFact]
    public void Interpreters_BadValue_IsAUsageError()
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--interpreters", "0", App });
        Assert.NotEqual(0, code);
        Assert.Contains("expected a number of interpreters (1 or more) or auto", output);
    }
}

public sealed class ValidatorInterpreters312Tests
    : ValidatorTestsBase, IClassFixture<ValidatedProbeInterpreters312Server>
{
    public ValidatorInterpreters312Tests(ValidatedProbeInterpreters312Server probe, ITestOutputHelper output)
        : base(probe, output) { }
}

public sealed class ValidatorInterpreters313Tests
    : ValidatorTestsBase, IClassFixture<ValidatedProbeInterpreters313Server>
{
    public ValidatorInterpreters313Tests(ValidatedProbeInterpreters313Server probe, ITestOutputHelper output)
        : base(probe, output) { }
}
