using System.Runtime.InteropServices;
using SharpWsgi.Python;

namespace SharpWsgi.Worker;

/// <summary>
/// SharpWsgi's library as the CPython extension module `_sharpwsgi`: the worker's python (started by the
/// supervisor with <see cref="WorkerProtocol.Bootstrap"/>) loads it by path and calls serve(args), which runs the
/// worker (<see cref="Program.Main"/> in the worker role) on python's main thread and returns its exit code.
/// </summary>
public static class WorkerModule
{
    [UnmanagedCallersOnly(EntryPoint = "PyInit__sharpwsgi")]
    public static nint PyInit()
    {
        try
        {
            PythonRuntime.BindToProcess();
            return ExtensionModule.Create("_sharpwsgi", "SharpWsgi's worker, loaded into the interpreter's own python.",
                Serve);
        }
        catch (Exception e)
        {
            // No Python error can be set without the C API: Python then raises SystemError, and the bootstrap
            // prints both.
            Console.Error.WriteLine($"sharpwsgi: error: the worker library cannot use this python: {e.Message}");
            return 0;
        }
    }

    /// <summary>serve(): the worker from start to end. Called with the GIL held; Python is attached (GIL
    /// released) inside, and the GIL is taken back before returning to Python, where the app's atexit hooks run
    /// as they do when a gunicorn worker exits.</summary>
    private static int Serve(string[] args)
    {
        var code = Program.Main(args);
        if (!PythonRuntime.IsInitialized) return code;
        PythonRuntime.Detach();
        RunAtExitHooks();
        return code;
    }

    private static void RunAtExitHooks()
    {
        try
        {
            using var atexit = Py.Import("atexit");
            using var run = Py.GetAttr(atexit, "_run_exitfuncs");
            using var result = Py.Call(run);
        }
        catch (PythonException e)
        {
            Console.Error.WriteLine($"sharpwsgi: atexit hooks failed: {e.Message}");
        }
    }
}
