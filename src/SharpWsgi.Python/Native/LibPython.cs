using System.Runtime.InteropServices;

namespace SharpWsgi.Python.Native;

/// <summary>
/// Where the C API's symbols come from. A worker runs inside the interpreter's own executable and takes them from
/// the process (<see cref="OfThisProcess"/>: the executable itself when libpython is linked in statically, as in
/// Debian's /usr/bin/python3, or the libpython it loaded). Only a process that is not Python, the in-process
/// test hosts of the interop and gateway rooms, opens a libpython (<see cref="Open"/>), with Libc.RTLD_GLOBAL so
/// that C extension modules (which expect the interpreter's symbols to be global, as in the python executable)
/// can resolve them: NativeLibrary.Load keeps them local and e.g. Flask's dependencies then fail.
/// </summary>
internal sealed unsafe class LibPython
{
    private readonly nint _handle;
    public string Path { get; }

    private LibPython(nint handle, string path) { _handle = handle; Path = path; }

    /// <summary>The running process's global symbols (dlopen(NULL)): the python executable that loaded us.</summary>
    public static LibPython OfThisProcess()
    {
        var handle = Libc.DlOpen(null, Libc.RTLD_NOW);
        if (handle == 0)
            throw new PythonStartupException("dlopen(NULL) failed: the process's symbols are unreachable.");
        return new LibPython(handle, Environment.ProcessPath ?? "this process");
    }

    public static LibPython Open(string path)
    {
        var handle = Libc.DlOpen(path, Libc.RTLD_NOW | Libc.RTLD_GLOBAL);
        if (handle == 0)
        {
            var err = Libc.DlError();
            throw new PythonStartupException(
                $"Could not load libpython from {path}: " +
                $"{(err == 0 ? "unknown error" : Marshal.PtrToStringUTF8(err))}.");
        }
        return new LibPython(handle, path);
    }

    /// <summary>Address of an exported function or variable, or 0 when it is absent.</summary>
    public nint TryGet(string symbol) => Libc.DlSym(_handle, symbol);

    public nint Get(string symbol)
    {
        var p = Libc.DlSym(_handle, symbol);
        if (p == 0) throw new PythonStartupException(
            $"{Path} does not export {symbol}; is it a CPython 3.9+ libpython?");
        return p;
    }
}
