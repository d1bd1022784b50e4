using SharpWsgi.Python.Tests.Infrastructure;

namespace SharpWsgi.Python.Tests;

/// <summary>GIL scopes (Gil.Release), Python threads and the main thread state, proved with two threads.</summary>
[Collection(PythonCollection.Name)]
public sealed class GilTests
{
    private static readonly TimeSpan Blocked = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public void Release_ScopeDisposed_SameThreadStateHoldsTheGilAgain() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.Exec("import threading\nlocal = threading.local()\nlocal.value = 'before release'", globals);
        var ident = Py.CurrentThreadIdent();
        // While released, another Python thread takes the GIL and sets its own threading.local value.
        using (Gil.Release()) OnPython.Run(() => Py.Exec("local.value = 'other thread'", globals));
        // Python works again, with this thread's own thread state: its threading.local value is still there.
        Assert.Equal("before release", PyTest.ExecAndRead(globals, "seen = local.value", "seen"));
        Assert.Equal(ident, Py.CurrentThreadIdent());
        Assert.Equal(ident.ToString(), PyTest.ExecAndRead(globals, "ident = threading.get_ident()", "ident"));
    });

    [Fact]
    public void Release_WhileReleased_AnotherPythonThreadRuns_AndNotBefore() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.Exec("events = []", globals);
        using var ran = new ManualResetEventSlim();
        var eventsRef = Py.DictGet(globals, "events").NewReference();
        var events = eventsRef.ToOwned();
        var other = OnPython.Start(() =>
        {
            // Starting a Python thread takes the GIL (PyGILState_Ensure): it waits while the test thread holds it.
            using var item = Py.Str("other thread ran");
            Py.ListAppend(events, item);
            ran.Set();
            return 0;
        }, out var outcome);

        Assert.False(ran.Wait(Blocked), "another Python thread ran while this thread held the GIL");
        using (Gil.Release())
            Assert.True(ran.Wait(Patience), "the other Python thread did not run while the GIL was released");
        using (Gil.Release()) Assert.True(other.Join(Patience));
        outcome.Get();
        Assert.Equal("['other thread ran']", PyTest.ExecAndRead(globals, "shown = repr(events)", "shown"));
        events.Dispose();
    });

    [Fact]
    public void PythonThread_TwoLiveThreads_EachHasItsOwnThreadIdent()
    {
        // Both threads are alive at once (an ended thread's ident is reused by the next one).
        using var bothStarted = new Barrier(2);
        Func<(ulong, string)> body = () =>
        {
            using (Gil.Release()) Assert.True(bothStarted.SignalAndWait(Patience));
            using var globals = Py.Dict();
            var fromPython = PyTest.ExecAndRead(globals, "import threading\nident = threading.get_ident()", "ident");
            return (Py.CurrentThreadIdent(), fromPython);
        };
        var a = OnPython.Start(body, out var first);
        var b = OnPython.Start(body, out var second);
        Assert.True(a.Join(Patience) && b.Join(Patience));
        var (identA, fromPythonA) = first.Get();
        var (identB, fromPythonB) = second.Get();
        Assert.NotEqual(0UL, identA);
        Assert.NotEqual(identA, identB);
        Assert.Equal(identA.ToString(), fromPythonA);
        Assert.Equal(identB.ToString(), fromPythonB);
    }

    [Fact]
    public void PythonThread_RecursionDepth9000_RunsAndDeeperRaisesRecursionError() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        var source = """
            import sys
            sys.setrecursionlimit(10000)
            def down(n):
                return 0 if n == 0 else 1 + down(n - 1)
            depth = down(9000)
            """;
        try { Assert.Equal("9000", PyTest.ExecAndRead(globals, source, "depth")); }
        finally { Py.Exec("sys.setrecursionlimit(1000)", globals); }
        var e = Assert.Throws<PythonException>(() => Py.Exec("down(5000)", globals));
        Assert.Equal("RecursionError", e.TypeName);
    });

    [Fact]
    public void SetAsyncException_LoopingPythonThread_RaisesInThatThread()
    {
        using var started = new ManualResetEventSlim();
        ulong ident = 0;
        var looping = OnPython.Start(() =>
        {
            ident = Py.CurrentThreadIdent();
            using var globals = Py.Dict();
            Py.Exec("import time\nstarted_at = time.monotonic()", globals);
            started.Set();
            // A Python loop drops the GIL every switch interval, so the other thread gets to raise in it.
            var e = Assert.Throws<PythonException>(() =>
                Py.Exec("while time.monotonic() - started_at < 30: pass", globals));
            return e.TypeName;
        }, out var outcome);
        Assert.True(started.Wait(Patience));
        var found = OnPython.Run(() =>
        {
            using var runtimeError = PyTest.Eval("RuntimeError");
            return Py.SetAsyncException(ident, runtimeError);
        });
        Assert.True(looping.Join(Patience), "the async exception did not stop the loop");
        Assert.True(found);
        Assert.Equal("RuntimeError", outcome.Get());
    }

    [Fact]
    public void SetAsyncException_NoSuchThreadIdent_ReturnsFalse()
    {
        Assert.False(OnPython.Run(() =>
        {
            using var runtimeError = PyTest.Eval("RuntimeError");
            return Py.SetAsyncException(1, runtimeError);
        }));
    }

    [Fact]
    public void RunOnMainThreadState_FromNonPythonThread_RunsPythonAndReleasesTheGilAfter()
    {
        var value = PythonRuntime.RunOnMainThreadState(() =>
        {
            using var sum = PyTest.Eval("sum(range(101))");
            return Py.AsLong(sum);
        });
        Assert.Equal(5050, value);
        // The GIL was released again: a Python thread can take it.
        Assert.Equal(7, OnPython.Run(() => { using var seven = Py.Long(7); return Py.AsLong(seven); }));
    }
}
