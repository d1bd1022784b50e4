using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// A Python exception turned into a .NET one: its type name, message and the formatted traceback.
/// While the GIL is held it can also carry the live exception so it can be raised again into Python
/// (for example out of a C# callback); that reference is released like any <see cref="PyOwned"/>.
/// </summary>
public sealed class PythonException : Exception
{
    public string TypeName { get; }
    public string PythonMessage { get; }
    /// <summary>The traceback as Python's traceback module formats it (ends with "Type: message").</summary>
    public string Traceback { get; }
    internal PyOwned? Type { get; }
    internal PyOwned? Value { get; }
    internal PyOwned? Tb { get; }

    internal PythonException(string typeName, string message, string traceback, PyOwned? type, PyOwned? value,
        PyOwned? tb)
        : base($"{typeName}: {message}")
    {
        TypeName = typeName;
        PythonMessage = message;
        Traceback = traceback;
        Type = type; Value = value; Tb = tb;
    }

    /// <summary>Takes the pending Python error (GIL held) and clears it.</summary>
    public static unsafe PythonException Fetch()
    {
        nint type, value, tb;
        PyApi.PyErr_Fetch(&type, &value, &tb);
        if (type == 0)
            return new PythonException("SystemError", "a C API call failed without setting an exception",
                "", null, null, null);
        PyApi.PyErr_NormalizeException(&type, &value, &tb);
        var typeOwned = new PyOwned(type);
        var valueOwned = value == 0 ? null : new PyOwned(value);
        var tbOwned = tb == 0 ? null : new PyOwned(tb);
        string typeName = Py.TypeName(new BorrowedRef(type));
        string message = value == 0 ? "" : Py.SafeStr(new BorrowedRef(value));
        string formatted = Py.FormatException(new BorrowedRef(type), new BorrowedRef(value), new BorrowedRef(tb))
                           ?? $"{typeName}: {message}\n";
        return new PythonException(typeName, message, formatted, typeOwned, valueOwned, tbOwned);
    }

    /// <summary>True when the exception is an instance of the given Python exception class.</summary>
    public unsafe bool Matches(BorrowedRef exceptionClass)
        => Type != null && PyApi.PyErr_GivenExceptionMatches(Type.Handle, exceptionClass.Handle) != 0;

    /// <summary>Raises this exception again in Python (GIL held); used when returning NULL from a callback.</summary>
    internal unsafe void Restore()
    {
        if (Type == null) { Py.SetError(PyErrorKind.RuntimeError, Message); return; }
        nint t = Type.Handle, v = Value?.Handle ?? 0, b = Tb?.Handle ?? 0;
        PyApi.Py_IncRef(t);
        if (v != 0) PyApi.Py_IncRef(v);
        if (b != 0) PyApi.Py_IncRef(b);
        PyApi.PyErr_Restore(t, v, b);
    }
}

/// <summary>The Python exception classes C# code raises into Python.</summary>
public enum PyErrorKind { TypeError, ValueError, RuntimeError, OSError, AssertionError, AttributeError }

/// <summary>Thrown by C# code called from Python to raise a Python exception of the given kind.</summary>
public sealed class PyRaiseException : Exception
{
    public PyErrorKind Kind { get; }
    public PyRaiseException(PyErrorKind kind, string message) : base(message) => Kind = kind;
}

/// <summary>Thrown when the chosen Python cannot be found, loaded or initialised (a one-paragraph message).</summary>
public sealed class PythonStartupException : Exception
{
    public PythonStartupException(string message) : base(message) { }
}
