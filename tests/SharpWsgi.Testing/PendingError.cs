using System.Runtime.InteropServices;
using SharpWsgi.Python;

namespace SharpWsgi.Testing;

/// <summary>
/// The calling thread's pending Python error, for tests that check none is left behind (GIL held). The server never
/// needs this (every C API failure is checked where it happens), so it lives here: PyErr_Occurred is looked up among
/// the process's global symbols, where the embedded libpython was loaded (RTLD_GLOBAL).
/// </summary>
public static class PendingError
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint ErrOccurred();

    private static readonly Lazy<ErrOccurred> Occurred = new(() => Marshal.GetDelegateForFunctionPointer<ErrOccurred>(
        NativeLibrary.GetExport(NativeLibrary.GetMainProgramHandle(), "PyErr_Occurred")));

    /// <summary>Throws the pending Python error as a <see cref="PythonException"/> (clearing it), if there is
    /// one.</summary>
    public static void ThrowIfAny()
    {
        if (Occurred.Value() != 0) throw PythonException.Fetch();
    }
}
