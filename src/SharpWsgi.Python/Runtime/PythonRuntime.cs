using System.Runtime.InteropServices;
using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// The one embedded interpreter of this process. Initialised once, on the calling thread, without
/// Python's signal handlers (the host owns signals); the GIL is released right after init and taken
/// again only by Python threads (<see cref="PythonThread"/>) or <see cref="RunOnMainThreadState"/>.
/// </summary>
public static unsafe class PythonRuntime
{
    private static nint _mainThreadState;
    public static PythonInfo? Info { get; private set; }
    public static bool IsInitialized => Info != null;

    /// <summary>
    /// Loads the interpreter's libpython and initialises it so that sys.path is what the interpreter
    /// itself would use (a virtualenv's site-packages included), after the given extra directories.
    /// </summary>
    public static void Initialize(PythonInfo info, IReadOnlyList<string> leadingSysPath, IReadOnlyList<string> argv)
    {
        if (Info != null) throw new InvalidOperationException("Python is already initialised in this process.");
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
                "the shared library belongs to another build. Use an interpreter whose own libpython is installed " +
                "(a --enable-shared build).");

        PyApi.Py_InitializeEx(0);
        if (PyApi.Py_IsInitialized() == 0)
            throw new PythonStartupException($"Python {info.Version} from {info.LibPythonPath} failed to initialise.");

        using (var builtins = Py.Import("builtins"))
        using (var objectType = Py.GetAttr(builtins, "object"))
        using (var basicSize = Py.GetAttr(objectType, "__basicsize__"))
            PyFeatures.SetObjectHeaderSize((int)Py.AsLong(basicSize));

        _leadingSysPath = leadingSysPath.ToArray();
        _argv = argv.ToArray();
        Info = info;
        PythonInterpreter.InitMain();
        ConfigureSys();
        _mainThreadState = PyApi.PyEval_SaveThread();
    }

    private static string[] _leadingSysPath = [], _argv = [];

    /// <summary>sys.path, sys.executable, prefixes and argv of the current interpreter (GIL held): the app
    /// directories first, then exactly what `python -c` sees (venv included). Every interpreter gets the
    /// same.</summary>
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
        foreach (var (name, value) in new[]
            { ("executable", info.Executable), ("prefix", info.Prefix), ("exec_prefix", info.ExecPrefix) })
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
