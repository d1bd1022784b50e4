using System.Text.RegularExpressions;
using SharpWsgi.Python;
using Xunit.Abstractions;

namespace SharpWsgi.Interpreters.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InterpretersCollection : ICollectionFixture<Pyenv312Plus>
{
    public const string Name = "Interpreters";
}

/// <summary>pyenv's newest CPython 3.13, else 3.12, embedded in this test process (once: CPython cannot be
/// initialised twice); null with the reason when neither is installed.</summary>
public sealed class Pyenv312Plus
{
    public string? SkipReason { get; }

    public Pyenv312Plus()
    {
        var python = Find(13) ?? Find(12);
        if (python == null)
        {
            SkipReason = "no pyenv CPython 3.12 or 3.13";
            return;
        }
        var info = PythonLocator.Describe(python, "the test fixture");
        PythonRuntime.Embed(info, Array.Empty<string>(), new[] { "interpreter-tests" });
    }

    private static string? Find(int minor)
    {
        var root = Environment.GetEnvironmentVariable("PYENV_ROOT") is { Length: > 0 } r
            ? r : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".pyenv");
        var versions = Path.Combine(root, "versions");
        if (!Directory.Exists(versions)) return null;
        var pattern = new Regex($@"^3\.{minor}\.(\d+)$");
        return Directory.GetDirectories(versions)
            .Select(d => (Dir: d, M: pattern.Match(Path.GetFileName(d))))
            .Where(x => x.M.Success)
            .OrderByDescending(x => int.Parse(x.M.Groups[1].Value))
            .Select(x => Path.Combine(x.Dir, "bin", $"python3.{minor}"))
            .FirstOrDefault(File.Exists);
    }
}

/// <summary>
/// PythonInterpreter: a sub-interpreter with its own GIL on its home thread, its own Python threads and module
/// state, the ownership checks that keep objects in their interpreter, and a clean end.
/// </summary>
[Collection(InterpretersCollection.Name)]
public sealed class SubinterpreterTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly Pyenv312Plus _python;
    private readonly ITestOutputHelper _out;

    public SubinterpreterTests(Pyenv312Plus python, ITestOutputHelper output)
    {
        _python = python;
        _out = output;
    }

    /// <summary>Reports the test as skipped, with the reason, when no CPython 3.12+ is here.</summary>
    private void SkipWithoutPython312()
    {
        if (_python.SkipReason != null) throw new SkipException(_python.SkipReason);
    }

    /// <summary>Runs body on a new Python thread of the interpreter and waits; its exception is rethrown.</summary>
    private static T OnThread<T>(PythonInterpreter interpreter, Func<T> body)
    {
        T result = default!;
        Exception? error = null;
        var t = PythonThread.Start("test", interpreter, () =>
        {
            try { result = body(); }
            catch (Exception e) { error = e; }
        });
        Assert.True(t.Join(Wait));
        if (error != null) throw new AggregateException(error);
        return result;
    }

    private static string Eval(string expression)
    {
        using var globals = Py.Dict();
        Py.Exec("import sys\nresult = " + expression, globals);
        return Py.SafeStr(Py.DictGet(globals, "result"));
    }

    /// <summary>A sub-interpreter whose home thread waits for <paramref name="end"/>, then ends it.</summary>
    private static PythonInterpreter Start(ManualResetEventSlim end, Func<string>? setup = null)
    {
        var (interpreter, _) = PythonInterpreter.StartSubinterpreter("test-home", _ => setup?.Invoke() ?? "",
            (_, _) => { using (Gil.Release()) end.Wait(); }, Wait);
        return interpreter;
    }

    [SkippableFact]
    public void StartSubinterpreter_OwnModulesAndId_EndsCleanly()
    {
        SkipWithoutPython312();
        var mainModules = OnThread(PythonInterpreter.Main, () => Eval("id(sys.modules)"));
        using var end = new ManualResetEventSlim();
        string? inSetup = null;
        var interpreter = Start(end, () => inSetup = Eval("id(sys.modules)"));
        Assert.False(interpreter.IsMain);
        Assert.NotEqual(0, interpreter.Id);
        Assert.NotEqual(mainModules, inSetup);
        // A Python thread of the sub-interpreter runs in it, with its sys.path configured like the main one's.
        var (modules, path) = OnThread(interpreter, () => (Eval("id(sys.modules)"), Eval("len(sys.path)")));
        Assert.Equal(inSetup, modules);
        Assert.Equal(OnThread(PythonInterpreter.Main, () => Eval("len(sys.path)")), path);
        Assert.Same(interpreter, OnThread(interpreter, () => PythonInterpreter.Current));
        end.Set();
        Assert.True(interpreter.WaitFinished(Wait));
        Assert.True(interpreter.Ended);
    }

    [SkippableFact]
    public void ManagedType_InstanceCreatedInAnotherInterpreter_IsRefused()
    {
        SkipWithoutPython312();
        var type = OnThread(PythonInterpreter.Main, () =>
            ManagedType.Create("tests.MainOnly", "a type of the main interpreter", callable: false, iterator: false));
        Assert.Same(PythonInterpreter.Main, type.Interpreter);
        using var end = new ManualResetEventSlim();
        var interpreter = Start(end);
        try
        {
            var e = Assert.Throws<AggregateException>(() => OnThread(interpreter, () =>
            {
                using var o = type.CreateInstance(new object());
                return 0;
            }));
            Assert.IsType<InvalidOperationException>(e.InnerException);
            Assert.Contains("never cross interpreters", e.InnerException!.Message);
            // In its own interpreter it works.
            OnThread(PythonInterpreter.Main, () => { using var o = type.CreateInstance(new object()); return 0; });
        }
        finally
        {
            end.Set();
            Assert.True(interpreter.WaitFinished(Wait));
        }
    }

    [SkippableFact]
    public void PyOwned_DisposedOnAnotherInterpretersThread_IsRefused()
    {
        SkipWithoutPython312();
        using var end = new ManualResetEventSlim();
        var interpreter = Start(end);
        try
        {
            var owned = OnThread(interpreter, () => Py.Intern("belongs-to-the-sub-interpreter"));
            Assert.Same(interpreter, owned.Interpreter);
            var e = Assert.Throws<AggregateException>(() => OnThread(PythonInterpreter.Main, () =>
            {
                owned.Dispose();
                return 0;
            }));
            Assert.IsType<InvalidOperationException>(e.InnerException);
            Assert.NotEqual(0, owned.Handle); // refused before touching it
            OnThread(interpreter, () => { owned.Dispose(); return 0; });
            Assert.Equal(0, owned.Handle);
        }
        finally
        {
            end.Set();
            Assert.True(interpreter.WaitFinished(Wait));
        }
    }

    [SkippableFact]
    public void PyOwned_Finalized_DecrefQueuedToItsOwnInterpreter()
    {
        SkipWithoutPython312();
        using var end = new ManualResetEventSlim();
        var interpreter = Start(end);
        try
        {
            using var keep = new ManualResetEventSlim();
            // A module-level object of the sub-interpreter, and its refcount before and after a leaked PyOwned.
            string Count() => Eval("sys.getrefcount(sys.modules['__main__'].__dict__.setdefault('probe', object()))");
            var before = OnThread(interpreter, Count);
            OnThread(interpreter, () => { Leak(); return 0; });
            var withLeak = OnThread(interpreter, Count);
            Assert.Equal(long.Parse(before) + 1, long.Parse(withLeak));
            GC.Collect();
            GC.WaitForPendingFinalizers();
            // The main interpreter's drain does not touch it; the sub-interpreter's does.
            OnThread(PythonInterpreter.Main, () => { DecRefQueue.Drain(); return 0; });
            Assert.Equal(withLeak, OnThread(interpreter, Count));
            OnThread(interpreter, () => { DecRefQueue.Drain(); return 0; });
            Assert.Equal(before, OnThread(interpreter, Count));
        }
        finally
        {
            end.Set();
            Assert.True(interpreter.WaitFinished(Wait));
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void Leak()
    {
        using var main = Py.Import("__main__");
        using var dict = Py.GetAttr(main, "__dict__");
        var probe = Py.DictGet(dict, "probe").NewReference();
        _ = probe.ToOwned(); // dropped without Dispose: only the finalizer sees it
    }

    [SkippableFact]
    public void Subinterpreter_RunsPython_WhileTheMainGilIsHeld()
    {
        SkipWithoutPython312();
        using var end = new ManualResetEventSlim();
        var interpreter = Start(end);
        try
        {
            // A main-interpreter thread holds its GIL without releasing it while the sub-interpreter's thread runs
            // Python: with one shared GIL this would wait for ever (here: time out).
            var ran = OnThread(PythonInterpreter.Main, () =>
            {
                using var done = new ManualResetEventSlim();
                string? sum = null;
                var t = PythonThread.Start("sub", interpreter, () =>
                {
                    sum = Eval("sum(range(1000))");
                    done.Set();
                });
                var ok = done.Wait(TimeSpan.FromSeconds(10)); // the main GIL is held all along
                t.Join(Wait);
                return ok ? sum : null;
            });
            Assert.Equal("499500", ran);
        }
        finally
        {
            end.Set();
            Assert.True(interpreter.WaitFinished(Wait));
        }
    }
}
