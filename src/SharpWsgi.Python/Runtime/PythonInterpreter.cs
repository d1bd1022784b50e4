using System.Runtime.InteropServices;
using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// One CPython interpreter of this process: the main one (<see cref="PythonRuntime.Initialize"/>) or a
/// sub-interpreter with its own GIL (PEP 684, CPython 3.12+). Every Python object belongs to exactly one
/// interpreter and never crosses to another: <see cref="PyOwned"/> and <see cref="ManagedType"/> remember theirs and
/// refuse to be used from another one's thread, and finalizers queue decrefs to the owner's queue.
/// <para>A sub-interpreter lives on its home thread: created there (<see cref="StartSubinterpreter{T}"/>), set up,
/// then the home thread runs the caller's loop, and when that returns it waits for the interpreter's other threads
/// (<see cref="PythonThread.Start(string, PythonInterpreter, Action)"/>) to delete their thread states and ends it
/// there (Py_EndInterpreter). Each Python thread has one thread state of its interpreter for its whole life.</para>
/// </summary>
public sealed unsafe class PythonInterpreter
{
    [ThreadStatic] private static PythonInterpreter? _current;
    private static PythonInterpreter? _main;
    private static int _count;

    internal readonly nint State;
    internal readonly PendingDecRefs DecRefs = new();
    private int _threads;
    private readonly ManualResetEventSlim _noThreads = new(true);

    /// <summary>The interpreter's id (0 for the main one), as in Python's interpreters module.</summary>
    public long Id { get; }
    public bool IsMain { get; }
    /// <summary>Ended (Py_EndInterpreter): its objects are gone.</summary>
    public bool Ended { get; private set; }

    private PythonInterpreter(nint state, bool isMain)
    {
        State = state;
        IsMain = isMain;
        Id = PyApi.PyInterpreterState_GetID(state);
    }

    /// <summary>The main interpreter (after <see cref="PythonRuntime.Initialize"/>).</summary>
    public static PythonInterpreter Main => _main ?? throw new InvalidOperationException("Python is not initialised.");

    /// <summary>The interpreter whose thread state this thread runs: a sub-interpreter's threads know theirs; every
    /// other thread (the init thread, test threads) runs the main interpreter.</summary>
    public static PythonInterpreter Current => _current ?? Main;
    internal static PythonInterpreter? CurrentOrNull => _current ?? _main;

    /// <summary>More than one interpreter has been created: the ownership checks are on.</summary>
    public static bool Multiple => Volatile.Read(ref _count) > 1;

    internal static void InitMain()
    {
        _main = new PythonInterpreter(PyApi.PyInterpreterState_Get(), isMain: true);
        _count = 1;
    }

    /// <summary>Throws the refusal when this Python cannot run <paramref name="count"/> interpreters with their own
    /// GIL (before 3.12). Call after <see cref="PythonRuntime.Initialize"/>.</summary>
    public static void CheckSupported(int count)
    {
        if (count <= 1 || PyFeatures.OwnGilInterpreters) return;
        throw new PythonStartupException(
            $"--interpreters {count} needs CPython 3.12 or newer, but this is Python {PyFeatures.Major}." +
            $"{PyFeatures.Minor}: sub-interpreters with their own GIL (PEP 684, Py_NewInterpreterFromConfig) " +
            "arrived in 3.12, and before it every interpreter of a process shares one GIL, so more of them would " +
            "not run Python in parallel. Use --interpreters 1 with --workers N on this Python, or run SharpWsgi " +
            "with --python pointing at a CPython 3.12+ interpreter.");
    }

    /// <summary>
    /// Creates a sub-interpreter with its own GIL and obmalloc, extension checks on, on a new home thread, and runs
    /// <paramref name="setup"/> there with its GIL held; returns setup's result once it is done (its exception, if
    /// any, after the interpreter has been ended). The home thread then runs <paramref name="run"/> (GIL held;
    /// release it around waits) and, when run returns, ends the interpreter after its other threads are gone
    /// (waiting at most <paramref name="threadsGone"/>; if they do not go, the interpreter is left as it is).
    /// </summary>
    public static (PythonInterpreter Interpreter, T Value) StartSubinterpreter<T>(string name,
        Func<PythonInterpreter, T> setup, Action<PythonInterpreter, T> run, TimeSpan threadsGone,
        Action<string>? onEndProblem = null)
    {
        if (!PyFeatures.OwnGilInterpreters)
            throw new PythonStartupException("sub-interpreters with their own GIL need CPython 3.12+");
        var started = new TaskCompletionSource<(PythonInterpreter, T)>(
            TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() => Home(name, setup, run, threadsGone, onEndProblem, started),
            PythonThread.StackSize) { Name = name, IsBackground = true };
        thread.Start();
        try { return started.Task.GetAwaiter().GetResult(); }
        catch (AggregateException e) when (e.InnerException != null) { throw e.InnerException; }
    }

    private static void Home<T>(string name, Func<PythonInterpreter, T> setup, Action<PythonInterpreter, T> run,
        TimeSpan threadsGone, Action<string>? onEndProblem, TaskCompletionSource<(PythonInterpreter, T)> started)
    {
        PythonInterpreter interpreter;
        try { interpreter = Create(); }
        catch (Exception e) { started.SetException(e); return; }
        T value;
        try
        {
            value = setup(interpreter);
        }
        catch (Exception e)
        {
            interpreter.End(threadsGone, onEndProblem);
            started.SetException(e);
            return;
        }
        started.SetResult((interpreter, value));
        try { run(interpreter, value); }
        catch (Exception e) { onEndProblem?.Invoke($"interpreter {interpreter.Id} ({name}): {e}"); }
        interpreter.End(threadsGone, onEndProblem);
    }

    /// <summary>Py_NewInterpreterFromConfig on this thread (which has no thread state): the new interpreter's thread
    /// state is current and its GIL held when it returns.</summary>
    private static PythonInterpreter Create()
    {
        var config = new PyInterpreterConfig
        {
            UseMainObmalloc = 0,
            AllowFork = 0,
            AllowExec = 1, // subprocess (fork + exec at once) keeps working
            AllowThreads = 1,
            AllowDaemonThreads = 0, // Py_EndInterpreter cannot end an interpreter whose daemon threads still run
            CheckMultiInterpExtensions = 1,
            Gil = PyInterpreterConfig.OwnGil,
        };
        nint tstate = 0;
        var status = PyFeatures.NewInterpreterFromConfig(&tstate, &config);
        if (status.Type != 0 || tstate == 0)
        {
            var message = status.ErrMsg != null ? Marshal.PtrToStringUTF8((nint)status.ErrMsg) : null;
            var func = status.Func != null ? Marshal.PtrToStringUTF8((nint)status.Func) : null;
            throw new PythonStartupException(
                $"Py_NewInterpreterFromConfig failed: {message ?? "no interpreter was created"}" +
                (func != null ? $" (in {func})" : "") + ".");
        }
        var interpreter = new PythonInterpreter(PyApi.PyInterpreterState_Get(), isMain: false)
            { _homeThreadState = tstate };
        _current = interpreter;
        Interlocked.Increment(ref _count);
        PythonRuntime.ConfigureSys();
        return interpreter;
    }

    private nint _homeThreadState;
    private readonly ManualResetEventSlim _finished = new(false);

    /// <summary>Waits until the home thread is done with the interpreter (ended, or left after a failed
    /// wait).</summary>
    public bool WaitFinished(TimeSpan wait) => _finished.Wait(wait);

    /// <summary>On the home thread, GIL held: waits (GIL released) for the other threads, then Py_EndInterpreter.
    /// </summary>
    private void End(TimeSpan threadsGone, Action<string>? onEndProblem)
    {
        bool gone;
        var ts = PyApi.PyEval_SaveThread();
        try { gone = _noThreads.Wait(threadsGone); }
        finally { PyApi.PyEval_RestoreThread(ts); }
        if (!gone)
        {
            onEndProblem?.Invoke($"interpreter {Id}: {Volatile.Read(ref _threads)} Python thread(s) still run " +
                "after the shutdown wait; the interpreter is left running until the process exits");
            PyApi.PyEval_SaveThread();
            _current = null;
            _finished.Set();
            return;
        }
        DecRefs.Drain();
        DecRefs.Close();
        PyApi.Py_EndInterpreter(_homeThreadState);
        Ended = true;
        _current = null;
        _finished.Set();
    }

    // ---- the interpreter's other threads (PythonThread) ----

    /// <summary>A new thread state of this interpreter for the calling thread, GIL taken.</summary>
    internal nint Attach()
    {
        lock (_noThreads)
        {
            if (Ended) throw new InvalidOperationException($"interpreter {Id} has ended");
            if (_threads++ == 0) _noThreads.Reset();
        }
        var ts = PyApi.PyThreadState_New(State);
        PyApi.PyEval_RestoreThread(ts);
        _current = this;
        return ts;
    }

    /// <summary>GIL held: clears and deletes the thread's state (which releases the GIL).</summary>
    internal void Detach(nint ts)
    {
        PyApi.PyThreadState_Clear(ts);
        PyApi.PyThreadState_DeleteCurrent();
        _current = null;
        lock (_noThreads)
            if (--_threads == 0) _noThreads.Set();
    }

    /// <summary>Refuses (InvalidOperationException) a Python object of this interpreter on another one's
    /// thread.</summary>
    internal void AssertCurrent(string what)
    {
        var current = Current;
        if (current != this)
            throw new InvalidOperationException(
                $"{what} belongs to Python interpreter {Id} but was used on a thread of interpreter {current.Id}: " +
                "Python objects never cross interpreters");
    }

    public override string ToString() => IsMain ? "main interpreter" : $"interpreter {Id}";
}

/// <summary>The decrefs finalizers queued for one interpreter; its threads drain them while they hold its
/// GIL.</summary>
internal sealed class PendingDecRefs
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<nint> _pending = new();
    private int _count;
    private volatile bool _closed;

    public void Enqueue(nint handle)
    {
        if (_closed) return; // the interpreter has ended: its objects went with it
        _pending.Enqueue(handle);
        Interlocked.Increment(ref _count);
    }

    public unsafe void Drain()
    {
        if (Volatile.Read(ref _count) == 0) return;
        while (_pending.TryDequeue(out var h))
        {
            Interlocked.Decrement(ref _count);
            PyApi.Py_DecRef(h);
        }
    }

    public void Close()
    {
        _closed = true;
        _pending.Clear();
    }
}
