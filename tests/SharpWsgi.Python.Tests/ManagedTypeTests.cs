using System.Runtime.CompilerServices;
using SharpWsgi.Python.Tests.Infrastructure;

namespace SharpWsgi.Python.Tests;

/// <summary>Python types implemented in C# (ManagedType): calls, methods, iterators, targets, lifetime.</summary>
[Collection(PythonCollection.Name)]
public sealed class ManagedTypeTests
{
    private static ManagedType? _widget, _counter;

    /// <summary>tests.Widget: callable, with methods describe, echo and fail.</summary>
    private static ManagedType Widget => _widget ??= ManagedType.Create(
        "tests.Widget", "a widget made in C#", callable: true, iterator: false, "describe", "echo", "fail");

    /// <summary>tests.Counter: an iterator.</summary>
    private static ManagedType Counter => _counter ??= ManagedType.Create(
        "tests.Counter", "counts squares", callable: false, iterator: true);

    [Fact]
    public void Create_QualifiedName_TypeHasNameModuleAndDoc() => OnPython.Run(() =>
    {
        using var globals = InGlobals("w", Widget.CreateInstance(new WidgetTarget("w")));
        Assert.Equal("Widget|tests|a widget made in C#", PyTest.ExecAndRead(globals,
            "t = type(w)\nshown = '|'.join([t.__name__, t.__module__, t.__doc__])", "shown"));
        Assert.Equal("tests.Widget", Widget.Name);
        Assert.Equal("Widget", Py.TypeNameOf(Py.DictGet(globals, "w")));
    });

    [Fact]
    public void Call_PositionalAndKeywordArguments_ReachTheTarget() => OnPython.Run(() =>
    {
        using var globals = InGlobals("w", Widget.CreateInstance(new WidgetTarget("w")));
        var source = "shown = str([w(1, 2, 3), w(1, 5, extra=10), w()])";
        Assert.Equal("[6, 16, 0]", PyTest.ExecAndRead(globals, source, "shown"));
    });

    [Fact]
    public void Methods_CalledByName_DispatchToTheirIndex() => OnPython.Run(() =>
    {
        using var globals = InGlobals("w", Widget.CreateInstance(new WidgetTarget("left")));
        Assert.Equal("method 0 of left", PyTest.ExecAndRead(globals, "shown = w.describe()", "shown"));
        Assert.Equal("True", PyTest.ExecAndRead(globals, "x = object()\nsame = w.echo(x) is x", "same"));
        var e = Assert.Throws<PythonException>(() => Py.Exec("w.fail()", globals));
        Assert.Equal("ValueError", e.TypeName);
        Assert.Equal("method 2 fails", e.PythonMessage);
        var missing = Assert.Throws<PythonException>(() => Py.Exec("w.no_such_method()", globals));
        Assert.Equal("AttributeError", missing.TypeName);
    });

    [Fact]
    public void Iterator_ConsumedByPython_YieldsTheTargetsItemsThenStops() => OnPython.Run(() =>
    {
        using var globals = InGlobals("it", Counter.CreateInstance(new Squares(5)));
        Assert.Equal("True", PyTest.ExecAndRead(globals, "same = iter(it) is it", "same"));
        Assert.Equal("[0, 1, 4, 9, 16]", PyTest.ExecAndRead(globals, "shown = str(list(it))", "shown"));
        Assert.Equal("done", PyTest.ExecAndRead(globals,
            "try:\n    next(it)\n    after = 'more'\nexcept StopIteration:\n    after = 'done'", "after"));
    });

    [Fact]
    public void Iterator_NextThrows_ForLoopRaisesAfterTheGoodItems() => OnPython.Run(() =>
    {
        using var globals = InGlobals("it", Counter.CreateInstance(new Squares(3, failAt: 2)));
        Py.Exec("seen = []", globals);
        var e = Assert.Throws<PythonException>(() => Py.Exec("for x in it:\n    seen.append(x)", globals));
        Assert.Equal("RuntimeError", e.TypeName);
        Assert.Equal("square 2 fails", e.PythonMessage);
        Assert.Equal("[0, 1]", PyTest.ExecAndRead(globals, "shown = str(seen)", "shown"));
    });

    [Theory]
    [InlineData("type(w)()")]
    [InlineData("__import__('copy').copy(w)")]
    public void New_FromPython_RaisesTypeErrorInsteadOfATargetlessInstance(string expression) => OnPython.Run(() =>
    {
        // Only C# creates instances (CreateInstance binds the target); one made by Python would have none.
        using var globals = InGlobals("w", Widget.CreateInstance(new WidgetTarget("w")));
        var e = Assert.Throws<PythonException>(() => Py.Exec("made = " + expression, globals));
        Assert.Equal("TypeError", e.TypeName);
        Assert.Contains("Widget", e.PythonMessage);
    });

    [Fact]
    public void TargetOf_Instance_ReturnsTheSameManagedObject() => OnPython.Run(() =>
    {
        var target = new WidgetTarget("mine");
        using var instance = Widget.CreateInstance(target);
        using var other = Counter.CreateInstance(new Squares(1));
        using var list = Py.List();
        Assert.Same(target, ManagedType.TargetOf(instance));
        Assert.True(Widget.IsInstance(instance));
        Assert.False(Widget.IsInstance(other));
        Assert.False(Widget.IsInstance(list));
        Assert.True(PyTest.IsCallable(instance));
        Assert.False(PyTest.IsCallable(other));
    });

    [Fact]
    public void Instance_HeldOnlyByPython_TargetLivesUntilPythonDropsIt()
    {
        var globals = OnPython.Run(() =>
        {
            var g = InGlobals("w", Widget.CreateInstance(new WidgetTarget("held")));
            return g.ToOwned();
        });
        try
        {
            var target = OnPython.Run(() => new WeakReference(ManagedType.TargetOf(Py.DictGet(globals, "w"))));
            FullCollect();
            Assert.True(target.IsAlive, "the target was collected while Python still referenced the instance");
            OnPython.Run(() => Py.Exec("del w", globals));
            FullCollect();
            Assert.False(target.IsAlive, "the target outlived its Python instance (GCHandle not freed)");
        }
        finally { OnPython.Run(globals.Dispose); }
    }

    [Fact]
    public void Instances_100kCreatedAndDroppedByPython_AllFreedAndTypeRefCountUnchanged()
    {
        const int Cycles = 100_000;
        var finalized = Tracked.FinalizedCount;
        var typeBefore = OnPython.Run(() => PyTest.RefCount(Widget.TypeObject));
        var typeAfter = OnPython.Run(() =>
        {
            using var globals = InGlobals("make", TestTypes.Callable.CreateInstance(new MakesTracked()));
            Py.Exec($"for _ in range({Cycles}):\n    make()", globals);
            return PyTest.RefCount(Widget.TypeObject);
        });
        Assert.Equal(typeBefore, typeAfter); // every instance took a type reference; dealloc gave it back
        FullCollect();
        Assert.Equal(Cycles, Tracked.FinalizedCount - finalized);
    }

    [Fact]
    public void Instances_100kCreatedAndDisposedInCSharp_AllFreedAndTypeRefCountUnchanged()
    {
        const int Cycles = 100_000;
        var finalized = Tracked.FinalizedCount;
        var (before, after) = OnPython.Run(() =>
        {
            var first = PyTest.RefCount(Widget.TypeObject);
            for (int i = 0; i < Cycles; i++)
            {
                using var instance = Widget.CreateInstance(new Tracked());
            }
            return (first, PyTest.RefCount(Widget.TypeObject));
        });
        Assert.Equal(before, after);
        FullCollect();
        Assert.Equal(Cycles, Tracked.FinalizedCount - finalized);
    }

    private static NewRef InGlobals(string name, NewRef value)
    {
        var globals = Py.Dict();
        using (value) Py.DictSet(globals, name, value);
        return globals;
    }

    private static void FullCollect()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    private sealed class WidgetTarget(string name) : IPyCallable, IPyMethods
    {
        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
        {
            long sum = 0;
            for (int i = 0; i < PyArgs.Count(args); i++) sum += Py.AsLong(PyArgs.At(args, i));
            if (PyArgs.HasKeywords(kwargs))
            {
                var extra = PyArgs.Keyword(kwargs, "extra");
                Assert.True(PyArgs.Keyword(kwargs, "absent").IsNull);
                sum += Py.AsLong(extra);
            }
            return Py.Long(sum);
        }

        public NewRef Invoke(int index, BorrowedRef self, BorrowedRef args, BorrowedRef kwargs) => index switch
        {
            0 => Py.Str($"method 0 of {name}"),
            1 => PyArgs.At(args, 0).NewReference(),
            _ => throw new PyRaiseException(PyErrorKind.ValueError, $"method {index} fails"),
        };
    }

    private sealed class Squares(int count, int failAt = -1) : IPyIterator
    {
        private int _next;

        public bool Next(BorrowedRef self, out NewRef item)
        {
            if (_next == failAt) throw new PyRaiseException(PyErrorKind.RuntimeError, $"square {_next} fails");
            if (_next >= count) { item = default; return false; }
            item = Py.Long((long)_next * _next);
            _next++;
            return true;
        }
    }

    /// <summary>Counts finalizations: a target is finalized only after its instance freed its GCHandle.</summary>
    private sealed class Tracked
    {
        private static int _finalized;
        public static int FinalizedCount => Volatile.Read(ref _finalized);
        ~Tracked() => Interlocked.Increment(ref _finalized);
    }

    private sealed class MakesTracked : IPyCallable
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
            => Widget.CreateInstance(new Tracked());
    }
}
