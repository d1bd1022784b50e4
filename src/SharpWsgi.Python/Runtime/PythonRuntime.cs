using System.Runtime.InteropServices;
using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// The interpreter of this process. A worker is the interpreter's own executable: python imported SharpWsgi's
/// native module, which binds the C API from the process (<see cref="BindToProcess"/>) and is then called on
/// python's main thread with the GIL held (<see cref="Attach"/>); Python has set up sys.path, site and the
/// virtualenv exactly as `python` does, and keeps its own signal handling out of the way (the host's handlers
/// replace it). The in-process test hosts of the interop and gateway rooms, which are not Python, embed a
/// libpython instead (<see cref="Embed"/>). Either way the GIL is released when start-up is done and taken again
/// only by Python threads (<see cref="PythonThread"/>) or <see cref="RunOnMainThreadState"/>.
/// </summary>
public static unsafe class PythonRuntime
{
    private static nint _mainThreadState;
    public static PythonInfo? Info { get; private set; }
    public static bool IsInitialized => Info != null;

    /// <summary>Binds the C API from the running python process (GIL held: its PyInit_ function calls this).
    /// </summary>
    public static void BindToProcess()
    {
        if (PyApi.Py_GetVersion != null) return;
        var lib = LibPython.OfThisProcess();
        PyApi.Bind(lib);
        var (major, minor) = ParseVersion(LoadedVersion());
        PyFeatures.Detect(lib, major, minor);
    }

    /// <summary>
    /// The worker's start, on python's main thread with the GIL held (after <see cref="BindToProcess"/>): puts
    /// the app's directories in front of sys.path (in place of the '' that `python -c` puts there), sets
    /// sys.argv, and releases the GIL. <see cref="Detach"/> takes it back before returning to Python.
    /// </summary>
    public static void Attach(IReadOnlyList<string> leadingSysPath, IReadOnlyList<string> argv)
    {
        if (Info != null) throw new InvalidOperationException("Python is already attached in this process.");
        DetectObjectHeaderSize();
        var sysPath = new List<string>();
        var path = Py.SysGet("path");
        for (nint i = 0, n = Py.ListSize(path); i < n; i++)
            if (Py.StrToString(Py.ListItem(path, i)) is { Length: > 0 } entry) sysPath.Add(entry);
        static string Sys(string name) => Py.StrToString(Py.SysGet(name));
        var (major, minor) = ParseVersion(LoadedVersion());
        Info = new PythonInfo(Sys("executable"), LoadedVersion(), major, minor, Sys("prefix"), Sys("exec_prefix"),
            Sys("base_prefix"), Sys("base_exec_prefix"), sysPath, LibraryOfTheCApi(), "cpython", false);
        _leadingSysPath = leadingSysPath.ToArray();
        _argv = argv.ToArray();
        _embedded = false;
        PythonInterpreter.InitMain();
        ConfigureSys();
        _mainThreadState = PyApi.PyEval_SaveThread();
    }

    /// <summary>Takes the GIL back on the attaching thread, to return to Python (the end of a worker).</summary>
    public static void Detach() => PyApi.PyEval_RestoreThread(_mainThreadState);

    /// <summary>The file the C API lives in: libpython3.X.so, or the python executable itself when it is linked
    /// in statically (Debian's /usr/bin/python3).</summary>
    private static string LibraryOfTheCApi() => Libc.FileOfAddress((nint)PyApi.Py_GetVersion) ?? "unknown";

    private static (int Major, int Minor) ParseVersion(string version)
    {
        var parts = version.Split('.');
        return (int.Parse(parts[0]), int.Parse(parts[1]));
    }

    private static void DetectObjectHeaderSize()
    {
        using var builtins = Py.Import("builtins");
        using var objectType = Py.GetAttr(builtins, "object");
        using var basicSize = Py.GetAttr(objectType, "__basicsize__");
        PyFeatures.SetObjectHeaderSize((int)Py.AsLong(basicSize));
    }

    /// <summary>
    /// For a process that is not Python (the in-process test hosts): loads the interpreter's libpython and
    /// initialises it so that sys.path is what the interpreter itself would use (a virtualenv's site-packages
    /// included), after the given extra directories. The server never embeds: its workers are python.
    /// </summary>
    public static void Embed(PythonInfo info, IReadOnlyList<string> leadingSysPath, IReadOnlyList<string> argv)
    {
        if (Info != null) throw new InvalidOperationException("Python is already initialised in this process.");
        if (string.IsNullOrEmpty(info.LibPythonPath))
            throw new PythonStartupException($"{info.Executable} has no shared libpython to embed.");
        // The stdlib location comes from PYTHONHOME, read by Py_InitializeEx: it must be in the C environment,
        // which .NET's Environment.SetEnvironmentVariable does not change on Unix.
        Libc.SetEnv("PYTHONHOME",
            info.BasePrefix == info.BaseExecPrefix ? info.BasePrefix : $"{info.BasePrefix}:{info.BaseExecPrefix}", 1);
        Libc.SetEnv("PYTHONNOUSERSITE", "1", 0);
        var lib = LibPython.Open(info.LibPythonPath);
        PyApi.Bind(lib);
        PyFeatures.Detect(lib, info.Major, info.Minor);
        var loaded = LoadedVersion();
        if (loaded != info.Version)
            throw new PythonStartupException(
                $"{info.LibPythonPath} is Python {loaded}, but {info.Executable} is Python {info.Version}: " +
                "the shared library belongs to another build.");

        PyApi.Py_InitializeEx(0);
        if (PyApi.Py_IsInitialized() == 0)
            throw new PythonStartupException($"Python {info.Version} from {info.LibPythonPath} failed to initialise.");
        DetectObjectHeaderSize();
        _leadingSysPath = leadingSysPath.ToArray();
        _argv = argv.ToArray();
        _embedded = true;
        Info = info;
        PythonInterpreter.InitMain();
        ConfigureSys();
        _mainThreadState = PyApi.PyEval_SaveThread();
    }

    private static string[] _leadingSysPath = [], _argv = [];
    private static bool _embedded;

    /// <summary>sys.path and argv of the current interpreter (GIL held): the app directories first, then exactly
    /// what `python -c` sees (venv included); an embedded one also gets sys.executable and the prefixes of the
    /// interpreter it stands for. Every interpreter of the process gets the same.</summary>
    internal static void ConfigureSys()
    {
        var info = Info!;
        using (var path = Py.List())
        {
            foreach (var p in _leadingSysPath.Concat(info.SysPath).Distinct())
            {
                using var s = Py.Str(p);
                Py.ListAppend(path, s);
            }
            Py.SysSet("path", path);
        }
        foreach (var (name, value) in _embedded
            ? new[] { ("executable", info.Executable), ("prefix", info.Prefix), ("exec_prefix", info.ExecPrefix) }
            : [])
        {
            using var s = Py.Str(value);
            Py.SysSet(name, s);
        }
        using (var args = Py.List())
        {
            foreach (var a in _argv) { using var s = Py.Str(a); Py.ListAppend(args, s); }
            Py.SysSet("argv", args);
        }
    }

    /// <summary>The version string the loaded library reports (Py_GetVersion), e.g. "3.11.7 (main, ...)".</summary>
    public static string LoadedVersion() => System.Text.Encoding.UTF8.GetString(
        System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(PyApi.Py_GetVersion()))
        .Split(' ')[0];

    /// <summary>Runs an action with the GIL on the initialising thread's state (startup and shutdown work).</summary>
    public static T RunOnMainThreadState<T>(Func<T> action)
    {
        PyApi.PyEval_RestoreThread(_mainThreadState);
        try { return action(); }
        finally { _mainThreadState = PyApi.PyEval_SaveThread(); }
    }

    public static void RunOnMainThreadState(Action action) => RunOnMainThreadState(() => { action(); return 0; });
}
