using System.Runtime.InteropServices;
using SharpWsgi.Python;

namespace SharpWsgi.Micro;

/// <summary>
/// The embedded interpreter for the benchmarks: initialised once per process (as sharpwsgi does it), then
/// each benchmark holds the GIL on its own thread for its whole run, with a thread state of its own
/// (PyGILState_Ensure from the same libpython), like a SharpWsgi Python thread between requests.
/// </summary>
public static unsafe class PythonHost
{
    private static readonly object Lock = new();
    private static delegate* unmanaged<int> _ensure;
    private static delegate* unmanaged<int, void> _release;

    /// <summary>The interpreter (SHARPWSGI_MICRO_PYTHON, default /usr/bin/python3, the one the load suite uses).</summary>
    public static string Interpreter => Environment.GetEnvironmentVariable("SHARPWSGI_MICRO_PYTHON") ?? "/usr/bin/python3";

    public static void EnsureInitialized()
    {
        lock (Lock)
        {
            if (PythonRuntime.IsInitialized) return;
            var (path, source) = PythonLocator.Choose(Interpreter);
            var info = PythonLocator.Describe(path, source);
            PythonRuntime.Embed(info, Array.Empty<string>(), new[] { "sharpwsgi-micro" });
            var lib = NativeLibrary.Load(info.LibPythonPath);
            _ensure = (delegate* unmanaged<int>)NativeLibrary.GetExport(lib, "PyGILState_Ensure");
            _release = (delegate* unmanaged<int, void>)NativeLibrary.GetExport(lib, "PyGILState_Release");
        }
    }

    /// <summary>Takes the GIL on this thread (creating its thread state once); pass the result to <see cref="ReleaseGil"/>.</summary>
    public static int AcquireGil()
    {
        EnsureInitialized();
        return _ensure();
    }

    public static void ReleaseGil(int state) => _release(state);
}
