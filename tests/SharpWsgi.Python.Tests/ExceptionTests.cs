using SharpWsgi.Python.Tests.Infrastructure;

namespace SharpWsgi.Python.Tests;

/// <summary>Python errors as PythonException, and C# exceptions raised into Python from callbacks.</summary>
[Collection(PythonCollection.Name)]
public sealed class ExceptionTests
{
    [Fact]
    public void Exec_RaisesValueError_PythonExceptionHasTypeMessageAndTraceback() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        var source = "def fail():\n    raise ValueError('bad thing')\nfail()";
        var e = Assert.Throws<PythonException>(() => Py.Exec(source, globals));
        Assert.Equal("ValueError", e.TypeName);
        Assert.Equal("bad thing", e.PythonMessage);
        Assert.Equal("ValueError: bad thing", e.Message);
        Assert.StartsWith("Traceback (most recent call last):\n", e.Traceback);
        Assert.Contains(", in fail\n", e.Traceback);
        Assert.EndsWith("ValueError: bad thing\n", e.Traceback);
        PendingError.ThrowIfAny(); // fetched: nothing is left pending
    });

    /// <summary>The harness's own check (every OnPython body ends with it) must see a pending error.</summary>
    [Fact]
    public void PendingErrorCheck_ErrorSet_ThrowsItOnceThenNothingIsPending() => OnPython.Run(() =>
    {
        PendingError.ThrowIfAny();
        Py.SetError(PyErrorKind.ValueError, "left pending");
        var e = Assert.Throws<PythonException>(PendingError.ThrowIfAny);
        Assert.Equal("ValueError", e.TypeName);
        Assert.Equal("left pending", e.PythonMessage);
        PendingError.ThrowIfAny(); // fetched: cleared
    });

    [Fact]
    public void Exec_RaisesOwnExceptionClass_MatchesItsBasesOnly() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        var e = Assert.Throws<PythonException>(() =>
            Py.Exec("class AppError(LookupError):\n    pass\nraise AppError('no such thing')", globals));
        Assert.Equal("AppError", e.TypeName);
        Assert.Equal("no such thing", e.PythonMessage);
        using var lookupError = PyTest.Eval("LookupError");
        using var exception = PyTest.Eval("Exception");
        using var runtimeError = PyTest.Eval("RuntimeError");
        using var osError = PyTest.Eval("OSError");
        Assert.True(e.Matches(lookupError));
        Assert.True(e.Matches(exception));
        Assert.False(e.Matches(runtimeError));
        Assert.False(e.Matches(osError));
    });

    [Fact]
    public void GetAttr_MissingAttribute_ThrowsAttributeError() => OnPython.Run(() =>
    {
        using var list = Py.List();
        var e = Assert.Throws<PythonException>(() => Py.GetAttr(list, "no_such_attribute"));
        Assert.Equal("AttributeError", e.TypeName);
        Assert.Contains("no_such_attribute", e.PythonMessage);
    });

    [Fact]
    public void AsLong_OnStr_ThrowsTypeError() => OnPython.Run(() =>
    {
        using var s = Py.Str("12");
        var e = Assert.Throws<PythonException>(() => Py.AsLong(s));
        Assert.Equal("TypeError", e.TypeName);
    });

    [Fact]
    public void AsLong_IntBeyondInt64_ThrowsOverflowError() => OnPython.Run(() =>
    {
        using var big = PyTest.Eval("2 ** 64");
        Assert.Equal("OverflowError", Assert.Throws<PythonException>(() => Py.AsLong(big)).TypeName);
    });

    [Fact]
    public void Exec_SyntaxError_ThrowsSyntaxError() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Assert.Equal("SyntaxError", Assert.Throws<PythonException>(() => Py.Exec("def (:", globals)).TypeName);
    });

    [Theory]
    [InlineData(PyErrorKind.TypeError, "TypeError")]
    [InlineData(PyErrorKind.ValueError, "ValueError")]
    [InlineData(PyErrorKind.RuntimeError, "RuntimeError")]
    [InlineData(PyErrorKind.OSError, "OSError")]
    [InlineData(PyErrorKind.AssertionError, "AssertionError")]
    [InlineData(PyErrorKind.AttributeError, "AttributeError")]
    public void PyRaiseException_FromCallable_PythonCatchesThatClass(PyErrorKind kind, string pythonClass)
        => OnPython.Run(() =>
        {
            using var globals = CallableInGlobals(new Throws(new PyRaiseException(kind, "raised from C#")));
            var source = $"try:\n    f()\nexcept {pythonClass} as e:\n    caught = type(e).__name__ + ': ' + str(e)";
            Assert.Equal($"{pythonClass}: raised from C#", PyTest.ExecAndRead(globals, source, "caught"));
        });

    [Fact]
    public void PyRaiseException_UncaughtInPython_ComesBackAsPythonException() => OnPython.Run(() =>
    {
        using var globals = CallableInGlobals(new Throws(new PyRaiseException(PyErrorKind.TypeError, "wrong type")));
        var e = Assert.Throws<PythonException>(() => Py.Exec("def outer():\n    f()\nouter()", globals));
        Assert.Equal("TypeError", e.TypeName);
        Assert.Equal("wrong type", e.PythonMessage);
        Assert.Contains(", in outer\n", e.Traceback);
    });

    [Fact]
    public void UnexpectedManagedException_FromCallable_BecomesRuntimeError() => OnPython.Run(() =>
    {
        using var globals = CallableInGlobals(new Throws(new InvalidOperationException("broken invariant")));
        var source = "try:\n    f()\nexcept RuntimeError as e:\n    caught = str(e)";
        Assert.Equal("internal SharpWsgi error: InvalidOperationException: broken invariant",
            PyTest.ExecAndRead(globals, source, "caught"));
    });

    [Fact]
    public void PythonException_RethrownFromCallable_PythonSeesTheOriginalException() => OnPython.Run(() =>
    {
        // The callable calls back into Python, which raises; the PythonException goes back to Python as it was.
        using var globals = Py.Dict();
        Py.Exec("class Original(Exception):\n    pass\ndef inner():\n    raise Original('from inner', 42)", globals);
        using var inner = Py.DictGet(globals, "inner").NewReference();
        using var callable = CallableInstance(new CallsBack(inner.Handle));
        Py.DictSet(globals, "f", callable);
        var source = "try:\n    f()\nexcept Original as e:\n    caught = repr(e.args)";
        Assert.Equal("('from inner', 42)", PyTest.ExecAndRead(globals, source, "caught"));
    });

    [Fact]
    public void PythonErrorAlreadySet_FromCallable_PythonSeesTheErrorTheCallableSet() => OnPython.Run(() =>
    {
        using var globals = CallableInGlobals(new SetsErrorItself());
        var source = "try:\n    f()\nexcept ValueError as e:\n    caught = str(e)";
        Assert.Equal("set by the callable", PyTest.ExecAndRead(globals, source, "caught"));
    });

    [Fact]
    public void IterNext_GeneratorRaisesMidway_ThrowsAfterTheGoodItems() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.Exec("def gen():\n    yield 1\n    yield 2\n    raise KeyError('midway')\nit = gen()", globals);
        var items = new List<long>();
        var e = Assert.Throws<PythonException>(() =>
        {
            while (Py.IterNext(Py.DictGet(globals, "it"), out var item))
                using (item) items.Add(Py.AsLong(item));
        });
        Assert.Equal(new long[] { 1, 2 }, items);
        Assert.Equal("KeyError", e.TypeName);
        Assert.Equal("'midway'", e.PythonMessage);
    });

    [Fact]
    public void SafeStr_StrRaises_ReturnsPlaceholderAndClearsTheError() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.Exec("class Bad:\n    def __str__(self):\n        raise ValueError('no')\n    __repr__ = __str__\n" +
                "bad = Bad()", globals);
        var bad = Py.DictGet(globals, "bad");
        Assert.Equal("<unprintable>", Py.SafeStr(bad));
        Assert.Equal("<unrepresentable>", Py.Repr(bad));
        PendingError.ThrowIfAny();
    });

    private static NewRef CallableInstance(object target) => TestTypes.Callable.CreateInstance(target);

    private static NewRef CallableInGlobals(IPyCallable target)
    {
        var globals = Py.Dict();
        using var callable = CallableInstance(target);
        Py.DictSet(globals, "f", callable);
        return globals;
    }

    private sealed class Throws(Exception exception) : IPyCallable
    {
        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs) => throw exception;
    }

    private sealed class CallsBack(nint function) : IPyCallable
    {
        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
            => Py.Call(new BorrowedRef(function));
    }

    private sealed class SetsErrorItself : IPyCallable
    {
        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
        {
            Py.SetError(PyErrorKind.ValueError, "set by the callable");
            throw PythonErrorAlreadySet.Instance;
        }
    }
}
