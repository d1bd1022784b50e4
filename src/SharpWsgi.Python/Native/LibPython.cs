using System.Runtime.InteropServices;

namespace SharpWsgi.Python.Native;

/// <summary>
/// The loaded libpython. It is opened with Libc.RTLD_GLOBAL so that C extension modules
/// (which expect the interpreter's symbols to be global, as in the python executable) can resolve them:
/// NativeLibrary.Load keeps them local and e.g. Flask's dependencies then fail with undefined symbols.
/// </summary>
internal sealed unsafe class LibPython
{
    private readonly nint _handle;
    public string Path { get; }

    private LibPython(nint handle, string path) { _handle = handle; Path = path; }

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
