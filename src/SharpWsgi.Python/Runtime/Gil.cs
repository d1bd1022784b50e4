using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// The GIL released for the duration of a wait (socket I/O, queues, sleeps) by a thread that holds it.
/// A ref struct, so the compiler keeps it from living across an <c>await</c>.
/// <code>using (Gil.Release()) { blockingWait(); }</code>
/// </summary>
public ref struct GilReleased
{
    private nint _threadState;
    internal GilReleased(nint threadState) => _threadState = threadState;

    public unsafe void Dispose()
    {
        var ts = _threadState;
        _threadState = 0;
        if (ts != 0) PyApi.PyEval_RestoreThread(ts);
    }
}

public static class Gil
{
    /// <summary>Releases the GIL held by this thread until the returned scope is disposed.</summary>
    public static unsafe GilReleased Release() => new(PyApi.PyEval_SaveThread());
}
