using System.Runtime.InteropServices;
using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// The CPython extension module that a worker's python imports (single-phase init, the main interpreter only):
/// one function, serve(args: list[str]) -> int, which hands the arguments to the host's handler on python's main
/// thread with the GIL held and returns its exit code. The handler runs the whole worker before it returns.
/// The definitions live in native memory for the life of the process, as a C module's static structs do.
/// </summary>
public static unsafe class ExtensionModule
{
    // PyModuleDef (Include/moduleobject.h): PyModuleDef_Base (object head 16, m_init, m_index, m_copy) = 40 bytes,
    // then m_name, m_doc, m_size, m_methods, m_slots, m_traverse, m_clear, m_free.
    private const int ModuleDefSize = 104, NameOffset = 40, DocOffset = 48, SizeOffset = 56, MethodsOffset = 64;
    // PyMethodDef: ml_name, ml_meth, ml_flags (int, padded), ml_doc; the list ends with a zeroed entry.
    private const int MethodDefSize = 32, METH_O = 0x0008;
    private const int PythonApiVersion = 1013;

    private static Func<string[], int>? _serve;

    /// <summary>Creates the module (GIL held, inside the PyInit_ function; the C API bound from the process).
    /// Returns a new reference, or 0 with a Python error set.</summary>
    public static nint Create(string name, string doc, Func<string[], int> serve)
    {
        _serve = serve;
        var methods = (byte*)NativeMemory.AllocZeroed(2 * MethodDefSize);
        *(nint*)methods = Py.Utf8("serve");
        *(nint*)(methods + 8) = (nint)(delegate* unmanaged<nint, nint, nint>)&Serve;
        *(int*)(methods + 16) = METH_O;
        *(nint*)(methods + 24) = Py.Utf8("serve(args: list[str]) -> int: runs a SharpWsgi worker to its end.");
        var def = (byte*)NativeMemory.AllocZeroed(ModuleDefSize);
        *(nint*)def = 1; // PyModuleDef_HEAD_INIT: a reference count of one, no type yet
        *(nint*)(def + NameOffset) = Py.Utf8(name);
        *(nint*)(def + DocOffset) = Py.Utf8(doc);
        *(nint*)(def + SizeOffset) = -1; // module state in globals: no sub-interpreter imports it
        *(nint*)(def + MethodsOffset) = (nint)methods;
        return PyApi.PyModule_Create2((nint)def, PythonApiVersion);
    }

    [UnmanagedCallersOnly]
    private static nint Serve(nint self, nint arg)
    {
        try
        {
            var list = new BorrowedRef(arg);
            if (PyApi.PyObject_IsInstance(arg, PyApi.ListType) != 1)
                throw new ArgumentException("serve() takes a list of str");
            var args = new string[Py.ListSize(list)];
            for (var i = 0; i < args.Length; i++) args[i] = Py.StrToString(Py.ListItem(list, i));
            return PyApi.PyLong_FromLong(_serve!(args));
        }
        catch (Exception e)
        {
            // Never let an exception cross into C: it becomes the Python error of the call.
            PyApi.PyErr_SetString(PyApi.ExcRuntimeError, (byte*)Py.Utf8($"sharpwsgi worker: {e}"));
            return 0;
        }
    }
}
