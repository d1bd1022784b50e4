namespace SharpWsgi.Python.Native;

/// <summary>
/// Every difference between the supported CPython versions (3.9–3.13) lives here.
/// The object header layout (ob_refcnt, ob_type) is part of the stable ABI for the
/// default (GIL) builds, so reading ob_type is allowed; free-threaded builds are refused at startup.
/// </summary>
internal static unsafe class PyFeatures
{
    public const int MinMajor = 3, MinMinor = 9;

    /// <summary>Offset of ob_type in PyObject (after the 8-byte ob_refcnt) on 64-bit GIL builds.</summary>
    public const int ObTypeOffset = 8;

    public static int Major { get; private set; }
    public static int Minor { get; private set; }

    /// <summary>sizeof(PyObject): where a managed type's own fields start (object.__basicsize__).</summary>
    public static int ObjectHeaderSize { get; private set; } = 16;

    /// <summary>PyObject_Vectorcall is an exported function from 3.12 (an inline before): null when absent.</summary>
    public static delegate* unmanaged<nint, nint*, nuint, nint, nint> Vectorcall { get; private set; }

    /// <summary>Py_NewInterpreterFromConfig (3.12+; null before): a sub-interpreter that may own its GIL.
    /// The config layout (seven ints, <see cref="PyInterpreterConfig"/>) is the same in 3.12 and 3.13.</summary>
    public static delegate* unmanaged<nint*, PyInterpreterConfig*, PyStatus> NewInterpreterFromConfig
    {
        get; private set;
    }

    /// <summary>Sub-interpreters with their own GIL (PEP 684) need CPython 3.12.</summary>
    public static bool OwnGilInterpreters => NewInterpreterFromConfig != null && AtLeast(3, 12);

    internal static void Detect(LibPython lib, int major, int minor)
    {
        Major = major;
        Minor = minor;
        var vc = lib.TryGet("PyObject_Vectorcall");
        Vectorcall = (delegate* unmanaged<nint, nint*, nuint, nint, nint>)vc;
        NewInterpreterFromConfig = AtLeast(3, 12)
            ? (delegate* unmanaged<nint*, PyInterpreterConfig*, PyStatus>)lib.TryGet("Py_NewInterpreterFromConfig")
            : null;
    }

    internal static void SetObjectHeaderSize(int size) => ObjectHeaderSize = size;

    public static bool AtLeast(int major, int minor) => Major > major || (Major == major && Minor >= minor);
}

/// <summary>PyInterpreterConfig of CPython 3.12 and 3.13 (Include/cpython/pylifecycle.h): seven ints.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal struct PyInterpreterConfig
{
    public const int OwnGil = 2; // PyInterpreterConfig_OWN_GIL
    public int UseMainObmalloc, AllowFork, AllowExec, AllowThreads, AllowDaemonThreads,
        CheckMultiInterpExtensions, Gil;
}

/// <summary>PyStatus (Include/cpython/initconfig.h): returned by value.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
internal unsafe struct PyStatus
{
    public int Type; // 0 ok, 1 error, 2 exit
    public byte* Func;
    public byte* ErrMsg;
    public int ExitCode;
}
