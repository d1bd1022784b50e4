using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// A reference the caller does not own (the C docs' "borrowed reference"): valid while its owner
/// keeps the object alive and the GIL is held. Never decref'd.
/// </summary>
public readonly struct BorrowedRef
{
    public readonly nint Handle;
    public BorrowedRef(nint handle) => Handle = handle;
    public bool IsNull => Handle == 0;
    public static BorrowedRef Null => default;
    /// <summary>Takes a new reference of our own (Py_IncRef).</summary>
    public unsafe NewRef NewReference() { PyApi.Py_IncRef(Handle); return new NewRef(Handle); }
    public override string ToString() => $"BorrowedRef(0x{Handle:x})";
}

/// <summary>
/// A reference the caller owns (the C docs' "new reference"): on every path it must be disposed
/// (Py_DecRef) or stolen with <see cref="References.Steal"/> by a call that takes ownership.
/// Declare it with a plain local (not <c>using var</c>) when it will be stolen, because
/// <c>using</c> locals are read-only and Steal needs to clear it.
/// </summary>
public struct NewRef : IDisposable
{
    internal nint _handle;
    internal NewRef(nint handle) => _handle = handle;
    public readonly nint Handle => _handle;
    public readonly bool IsNull => _handle == 0;
    public readonly BorrowedRef Borrow() => new(_handle);
    public static implicit operator BorrowedRef(NewRef r) => new(r._handle);

    public unsafe void Dispose()
    {
        var h = _handle;
        _handle = 0;
        if (h != 0) PyApi.Py_DecRef(h);
    }
}

/// <summary>A reference handed to a C API function that steals it (PyTuple_SetItem, PyErr_Restore).</summary>
public readonly struct StolenRef
{
    public readonly nint Handle;
    internal StolenRef(nint handle) => Handle = handle;
}

public static class References
{
    /// <summary>Gives up ownership: the NewRef is cleared so a later Dispose does nothing.</summary>
    public static StolenRef Steal(ref this NewRef r)
    {
        var h = r._handle;
        r._handle = 0;
        return new StolenRef(h);
    }

    /// <summary>Moves ownership into a long-lived <see cref="PyOwned"/>.</summary>
    public static PyOwned ToOwned(ref this NewRef r) => new(r.Steal().Handle);
}

/// <summary>
/// A long-lived owned reference stored in a managed object (the app callable, the environ template,
/// interned keys). Dispose with the GIL held; if it is only finalized, the decref is queued for a
/// Python thread (finalizers never call Python).
/// </summary>
public sealed class PyOwned : IDisposable
{
    private nint _handle;
    private readonly PythonInterpreter? _owner;
    internal PyOwned(nint handle)
    {
        _handle = handle;
        _owner = PythonInterpreter.CurrentOrNull;
    }

    /// <summary>The interpreter the object belongs to.</summary>
    public PythonInterpreter? Interpreter => _owner;
    public nint Handle => _handle;
    public BorrowedRef Borrow() => new(_handle);
    public static implicit operator BorrowedRef(PyOwned o) => new(o._handle);

    public unsafe void Dispose()
    {
        if (PythonInterpreter.Multiple && _owner != null && _handle != 0) _owner.AssertCurrent("a Python object");
        var h = Interlocked.Exchange(ref _handle, 0);
        if (h != 0) PyApi.Py_DecRef(h);
        GC.SuppressFinalize(this);
    }

    ~PyOwned()
    {
        var h = Interlocked.Exchange(ref _handle, 0);
        if (h != 0) (_owner ?? PythonInterpreter.CurrentOrNull)?.DecRefs.Enqueue(h);
    }
}

/// <summary>Decrefs queued by finalizers, one queue per interpreter; Python threads drain their interpreter's
/// while they hold its GIL.</summary>
public static class DecRefQueue
{
    /// <summary>Call with the GIL held. Cheap when empty.</summary>
    public static void Drain() => PythonInterpreter.Current.DecRefs.Drain();
}
