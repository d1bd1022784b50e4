namespace SharpWsgi.Python.Tests.Infrastructure;

/// <summary>Small helpers for tests that hold the GIL.</summary>
public static class PyTest
{
    /// <summary>
    /// sys.getrefcount(o). The call itself may add a temporary reference, always the same number, so tests
    /// compare counts with each other rather than with absolute values.
    /// </summary>
    public static long RefCount(BorrowedRef o)
    {
        using var sys = Py.Import("sys");
        using var getrefcount = Py.GetAttr(sys, "getrefcount");
        using var count = Py.Call(getrefcount, o);
        return Py.AsLong(count);
    }

    /// <summary>The value of a Python expression (a new reference).</summary>
    public static NewRef Eval(string expression)
    {
        using var globals = Py.Dict();
        Py.Exec("__result = " + expression, globals);
        return Py.DictGet(globals, "__result").NewReference();
    }

    /// <summary>Python's callable(o).</summary>
    public static bool IsCallable(BorrowedRef o)
    {
        using var builtins = Py.Import("builtins");
        using var callable = Py.GetAttr(builtins, "callable");
        using var result = Py.Call(callable, o);
        return result.Handle == Py.True.Handle;
    }

    /// <summary>Runs source in globals, then returns globals[name] as a .NET string (str(value)).</summary>
    public static string ExecAndRead(BorrowedRef globals, string source, string name)
    {
        Py.Exec(source, globals);
        var value = Py.DictGet(globals, name);
        Assert.False(value.IsNull, $"the Python code did not set {name}");
        return Py.SafeStr(value);
    }
}
