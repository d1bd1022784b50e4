using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// A dedicated OS thread that runs Python. It creates its thread state once (PyGILState_Ensure on
/// first use) and keeps it for its whole life: creating one per GIL acquisition costs ~9 µs.
/// The body runs with the GIL held and releases it around every wait with <see cref="Gil.Release"/>.
/// The stack is large so deep recursion hits Python's RecursionError before the C stack ends.
/// </summary>
public static class PythonThread
{
    /// <summary>Enough for sys.setrecursionlimit(10000) of pure-Python recursion on 3.9/3.10
    /// (C-stack frames).</summary>
    public const int StackSize = 256 * 1024 * 1024;

    public static Thread Start(string name, Action body)
    {
        var thread = new Thread(() => Run(body), StackSize) { Name = name, IsBackground = true };
        thread.Start();
        return thread;
    }

    /// <summary>A Python thread of the given interpreter. The main interpreter's threads are as above; a
    /// sub-interpreter's create their thread state with PyThreadState_New and delete it when the body returns, so
    /// the interpreter can end (PyGILState_Ensure knows only the main interpreter).</summary>
    public static Thread Start(string name, PythonInterpreter interpreter, Action body)
    {
        if (interpreter.IsMain) return Start(name, body);
        var thread = new Thread(() =>
        {
            var ts = interpreter.Attach();
            try { body(); }
            finally { interpreter.Detach(ts); }
        }, StackSize) { Name = name, IsBackground = true };
        thread.Start();
        return thread;
    }

    private static unsafe void Run(Action body)
    {
        var state = PyApi.PyGILState_Ensure();
        try { body(); }
        finally { PyApi.PyGILState_Release(state); }
    }
}
