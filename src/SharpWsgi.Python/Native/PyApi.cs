namespace SharpWsgi.Python.Native;

/// <summary>
/// The CPython C API as function pointers resolved at run time from the chosen libpython.
/// Only functions exported by every CPython 3.9–3.13 shared library are bound unconditionally;
/// anything version-dependent goes through <see cref="PyFeatures"/>.
/// Ownership follows the C docs: comments say "new" (caller owns the result), "borrowed", or "steals".
/// </summary>
internal static unsafe class PyApi
{
    // Lifecycle and threads
    public static delegate* unmanaged<int, void> Py_InitializeEx;
    public static delegate* unmanaged<int> Py_IsInitialized;
    public static delegate* unmanaged<byte*> Py_GetVersion;
    public static delegate* unmanaged<nint> PyEval_SaveThread;
    public static delegate* unmanaged<nint, void> PyEval_RestoreThread;
    public static delegate* unmanaged<int> PyGILState_Ensure;
    public static delegate* unmanaged<int, void> PyGILState_Release;
    public static delegate* unmanaged<nuint> PyThread_get_thread_ident;
    public static delegate* unmanaged<nuint, nint, int> PyThreadState_SetAsyncExc;
    public static delegate* unmanaged<nint, nint> PyThreadState_New;       // for a PyInterpreterState*
    public static delegate* unmanaged<nint, void> PyThreadState_Clear;
    public static delegate* unmanaged<void> PyThreadState_DeleteCurrent;   // also releases the GIL
    public static delegate* unmanaged<nint> PyInterpreterState_Get;        // the current thread's interpreter
    public static delegate* unmanaged<nint, long> PyInterpreterState_GetID;
    public static delegate* unmanaged<nint, void> Py_EndInterpreter;       // its last thread state, current

    // Reference counting
    public static delegate* unmanaged<nint, void> Py_IncRef;
    public static delegate* unmanaged<nint, void> Py_DecRef;

    // Errors
    public static delegate* unmanaged<nint> PyErr_Occurred;                       // borrowed
    public static delegate* unmanaged<nint*, nint*, nint*, void> PyErr_Fetch;     // new refs out
    public static delegate* unmanaged<nint*, nint*, nint*, void> PyErr_NormalizeException;
    public static delegate* unmanaged<nint, nint, nint, void> PyErr_Restore;      // steals all three
    public static delegate* unmanaged<nint, byte*, void> PyErr_SetString;
    public static delegate* unmanaged<nint, nint, void> PyErr_SetObject;
    public static delegate* unmanaged<void> PyErr_Clear;
    public static delegate* unmanaged<nint, int> PyErr_ExceptionMatches;
    public static delegate* unmanaged<nint, nint, int> PyErr_GivenExceptionMatches;

    // Objects
    public static delegate* unmanaged<byte*, nint> PyImport_ImportModule;        // new
    public static delegate* unmanaged<nint, byte*, nint> PyObject_GetAttrString; // new
    public static delegate* unmanaged<nint, nint, nint> PyObject_GetAttr;        // new
    public static delegate* unmanaged<nint, nint, nint, nint> PyObject_Call;     // new
    public static delegate* unmanaged<nint, nint, nint> PyObject_CallObject;     // new
    public static delegate* unmanaged<nint, nint> PyObject_GetIter;              // new
    public static delegate* unmanaged<nint, nint> PyIter_Next;                   // new, NULL at end
    public static delegate* unmanaged<nint, nint> PyObject_Str;                  // new
    public static delegate* unmanaged<nint, nint> PyObject_Repr;                 // new
    public static delegate* unmanaged<nint, nint, int> PyObject_IsInstance;
    public static delegate* unmanaged<nint, nuint> PyType_GetFlags;
    public static delegate* unmanaged<nint, nint> PyType_FromSpec;               // new
    public static delegate* unmanaged<nint, int, nint> PyType_GetSlot;
    public static delegate* unmanaged<nint, nint, nint> PyType_GenericAlloc;     // new

    // str / bytes
    public static delegate* unmanaged<nint, nint> PyUnicode_AsLatin1String;               // new bytes
    public static delegate* unmanaged<byte*, nint, nint> PyUnicode_FromStringAndSize;     // new (UTF-8)
    public static delegate* unmanaged<nint, nint*, byte*> PyUnicode_AsUTF8AndSize;        // borrowed buffer
    public static delegate* unmanaged<byte*, nint> PyUnicode_InternFromString;            // new
    public static delegate* unmanaged<int, void*, nint, nint> PyUnicode_FromKindAndData;  // new
    public static delegate* unmanaged<byte*, nint, nint> PyBytes_FromStringAndSize;       // new
    public static delegate* unmanaged<nint, byte**, nint*, int> PyBytes_AsStringAndSize;  // borrowed buffer

    // Containers
    public static delegate* unmanaged<nint, nint> PyTuple_New;                 // new
    public static delegate* unmanaged<nint, nint, nint, int> PyTuple_SetItem;  // steals item
    public static delegate* unmanaged<nint, nint, nint> PyTuple_GetItem;       // borrowed
    public static delegate* unmanaged<nint, nint> PyTuple_Size;
    public static delegate* unmanaged<nint, nint> PyList_New;                  // new
    public static delegate* unmanaged<nint, nint, int> PyList_Append;
    public static delegate* unmanaged<nint, nint> PyList_Size;
    public static delegate* unmanaged<nint, nint, nint> PyList_GetItem;        // borrowed
    public static delegate* unmanaged<nint> PyDict_New;                        // new
    public static delegate* unmanaged<nint, nint> PyDict_Copy;                 // new
    public static delegate* unmanaged<nint, nint, nint, int> PyDict_SetItem;   // no steal
    public static delegate* unmanaged<nint, byte*, nint, int> PyDict_SetItemString;
    public static delegate* unmanaged<nint, byte*, nint> PyDict_GetItemString; // borrowed
    public static delegate* unmanaged<nint, nint> PyDict_Size;

    // Numbers
    public static delegate* unmanaged<long, nint> PyLong_FromLong;             // new
    public static delegate* unmanaged<nint, long> PyLong_AsLong;
    public static delegate* unmanaged<nint, nint> PyLong_FromSsize_t;          // new
    public static delegate* unmanaged<nint, nint> PyLong_AsSsize_t;

    // Functions, running code, sys
    public static delegate* unmanaged<nint, nint, nint, nint> PyCFunction_NewEx;        // new
    public static delegate* unmanaged<nint, int, nint> PyModule_Create2;                // new, for a PyModuleDef*
    public static delegate* unmanaged<byte*, int, nint, nint, nint, nint> PyRun_StringFlags; // new
    public static delegate* unmanaged<nint> PyEval_GetBuiltins;                         // borrowed
    public static delegate* unmanaged<byte*, nint> PySys_GetObject;                     // borrowed
    public static delegate* unmanaged<byte*, nint, int> PySys_SetObject;

    // Singletons and types (addresses of the objects themselves)
    public static nint None, True, False;
    public static nint BytesType, ListType, TupleType, UnicodeType;

    // Exception types (values of the exported PyObject* variables)
    public static nint ExcTypeError, ExcValueError, ExcRuntimeError, ExcOSError, ExcAssertionError,
        ExcAttributeError, ExcStopIteration, ExcKeyboardInterrupt, ExcSystemExit, ExcBaseException;

    internal static void Bind(LibPython lib)
    {
        Py_InitializeEx = (delegate* unmanaged<int, void>)lib.Get("Py_InitializeEx");
        Py_IsInitialized = (delegate* unmanaged<int>)lib.Get("Py_IsInitialized");
        Py_GetVersion = (delegate* unmanaged<byte*>)lib.Get("Py_GetVersion");
        PyEval_SaveThread = (delegate* unmanaged<nint>)lib.Get("PyEval_SaveThread");
        PyEval_RestoreThread = (delegate* unmanaged<nint, void>)lib.Get("PyEval_RestoreThread");
        PyGILState_Ensure = (delegate* unmanaged<int>)lib.Get("PyGILState_Ensure");
        PyGILState_Release = (delegate* unmanaged<int, void>)lib.Get("PyGILState_Release");
        PyThread_get_thread_ident = (delegate* unmanaged<nuint>)lib.Get("PyThread_get_thread_ident");
        PyThreadState_SetAsyncExc = (delegate* unmanaged<nuint, nint, int>)lib.Get("PyThreadState_SetAsyncExc");
        PyThreadState_New = (delegate* unmanaged<nint, nint>)lib.Get("PyThreadState_New");
        PyThreadState_Clear = (delegate* unmanaged<nint, void>)lib.Get("PyThreadState_Clear");
        PyThreadState_DeleteCurrent = (delegate* unmanaged<void>)lib.Get("PyThreadState_DeleteCurrent");
        PyInterpreterState_Get = (delegate* unmanaged<nint>)lib.Get("PyInterpreterState_Get");
        PyInterpreterState_GetID = (delegate* unmanaged<nint, long>)lib.Get("PyInterpreterState_GetID");
        Py_EndInterpreter = (delegate* unmanaged<nint, void>)lib.Get("Py_EndInterpreter");

        Py_IncRef = (delegate* unmanaged<nint, void>)lib.Get("Py_IncRef");
        Py_DecRef = (delegate* unmanaged<nint, void>)lib.Get("Py_DecRef");

        PyErr_Occurred = (delegate* unmanaged<nint>)lib.Get("PyErr_Occurred");
        PyErr_Fetch = (delegate* unmanaged<nint*, nint*, nint*, void>)lib.Get("PyErr_Fetch");
        PyErr_NormalizeException = (delegate* unmanaged<nint*, nint*, nint*, void>)lib.Get("PyErr_NormalizeException");
        PyErr_Restore = (delegate* unmanaged<nint, nint, nint, void>)lib.Get("PyErr_Restore");
        PyErr_SetString = (delegate* unmanaged<nint, byte*, void>)lib.Get("PyErr_SetString");
        PyErr_SetObject = (delegate* unmanaged<nint, nint, void>)lib.Get("PyErr_SetObject");
        PyErr_Clear = (delegate* unmanaged<void>)lib.Get("PyErr_Clear");
        PyErr_ExceptionMatches = (delegate* unmanaged<nint, int>)lib.Get("PyErr_ExceptionMatches");
        PyErr_GivenExceptionMatches = (delegate* unmanaged<nint, nint, int>)lib.Get("PyErr_GivenExceptionMatches");

        PyImport_ImportModule = (delegate* unmanaged<byte*, nint>)lib.Get("PyImport_ImportModule");
        PyObject_GetAttrString = (delegate* unmanaged<nint, byte*, nint>)lib.Get("PyObject_GetAttrString");
        PyObject_GetAttr = (delegate* unmanaged<nint, nint, nint>)lib.Get("PyObject_GetAttr");
        PyObject_Call = (delegate* unmanaged<nint, nint, nint, nint>)lib.Get("PyObject_Call");
        PyObject_CallObject = (delegate* unmanaged<nint, nint, nint>)lib.Get("PyObject_CallObject");
        PyObject_GetIter = (delegate* unmanaged<nint, nint>)lib.Get("PyObject_GetIter");
        PyIter_Next = (delegate* unmanaged<nint, nint>)lib.Get("PyIter_Next");
        PyObject_Str = (delegate* unmanaged<nint, nint>)lib.Get("PyObject_Str");
        PyObject_Repr = (delegate* unmanaged<nint, nint>)lib.Get("PyObject_Repr");
        PyObject_IsInstance = (delegate* unmanaged<nint, nint, int>)lib.Get("PyObject_IsInstance");
        PyType_GetFlags = (delegate* unmanaged<nint, nuint>)lib.Get("PyType_GetFlags");
        PyType_FromSpec = (delegate* unmanaged<nint, nint>)lib.Get("PyType_FromSpec");
        PyType_GetSlot = (delegate* unmanaged<nint, int, nint>)lib.Get("PyType_GetSlot");
        PyType_GenericAlloc = (delegate* unmanaged<nint, nint, nint>)lib.Get("PyType_GenericAlloc");

        PyUnicode_AsLatin1String = (delegate* unmanaged<nint, nint>)lib.Get("PyUnicode_AsLatin1String");
        PyUnicode_FromStringAndSize = (delegate* unmanaged<byte*, nint, nint>)lib.Get("PyUnicode_FromStringAndSize");
        PyUnicode_AsUTF8AndSize = (delegate* unmanaged<nint, nint*, byte*>)lib.Get("PyUnicode_AsUTF8AndSize");
        PyUnicode_InternFromString = (delegate* unmanaged<byte*, nint>)lib.Get("PyUnicode_InternFromString");
        PyUnicode_FromKindAndData = (delegate* unmanaged<int, void*, nint, nint>)lib.Get("PyUnicode_FromKindAndData");
        PyBytes_FromStringAndSize = (delegate* unmanaged<byte*, nint, nint>)lib.Get("PyBytes_FromStringAndSize");
        PyBytes_AsStringAndSize = (delegate* unmanaged<nint, byte**, nint*, int>)lib.Get("PyBytes_AsStringAndSize");

        PyTuple_New = (delegate* unmanaged<nint, nint>)lib.Get("PyTuple_New");
        PyTuple_SetItem = (delegate* unmanaged<nint, nint, nint, int>)lib.Get("PyTuple_SetItem");
        PyTuple_GetItem = (delegate* unmanaged<nint, nint, nint>)lib.Get("PyTuple_GetItem");
        PyTuple_Size = (delegate* unmanaged<nint, nint>)lib.Get("PyTuple_Size");
        PyList_New = (delegate* unmanaged<nint, nint>)lib.Get("PyList_New");
        PyList_Append = (delegate* unmanaged<nint, nint, int>)lib.Get("PyList_Append");
        PyList_Size = (delegate* unmanaged<nint, nint>)lib.Get("PyList_Size");
        PyList_GetItem = (delegate* unmanaged<nint, nint, nint>)lib.Get("PyList_GetItem");
        PyDict_New = (delegate* unmanaged<nint>)lib.Get("PyDict_New");
        PyDict_Copy = (delegate* unmanaged<nint, nint>)lib.Get("PyDict_Copy");
        PyDict_SetItem = (delegate* unmanaged<nint, nint, nint, int>)lib.Get("PyDict_SetItem");
        PyDict_SetItemString = (delegate* unmanaged<nint, byte*, nint, int>)lib.Get("PyDict_SetItemString");
        PyDict_GetItemString = (delegate* unmanaged<nint, byte*, nint>)lib.Get("PyDict_GetItemString");
        PyDict_Size = (delegate* unmanaged<nint, nint>)lib.Get("PyDict_Size");

        PyLong_FromLong = (delegate* unmanaged<long, nint>)lib.Get("PyLong_FromLong");
        PyLong_AsLong = (delegate* unmanaged<nint, long>)lib.Get("PyLong_AsLong");
        PyLong_FromSsize_t = (delegate* unmanaged<nint, nint>)lib.Get("PyLong_FromSsize_t");
        PyLong_AsSsize_t = (delegate* unmanaged<nint, nint>)lib.Get("PyLong_AsSsize_t");

        PyCFunction_NewEx = (delegate* unmanaged<nint, nint, nint, nint>)lib.Get("PyCFunction_NewEx");
        PyModule_Create2 = (delegate* unmanaged<nint, int, nint>)lib.Get("PyModule_Create2");
        PyRun_StringFlags = (delegate* unmanaged<byte*, int, nint, nint, nint, nint>)lib.Get("PyRun_StringFlags");
        PyEval_GetBuiltins = (delegate* unmanaged<nint>)lib.Get("PyEval_GetBuiltins");
        PySys_GetObject = (delegate* unmanaged<byte*, nint>)lib.Get("PySys_GetObject");
        PySys_SetObject = (delegate* unmanaged<byte*, nint, int>)lib.Get("PySys_SetObject");

        None = lib.Get("_Py_NoneStruct");
        True = lib.Get("_Py_TrueStruct");
        False = lib.Get("_Py_FalseStruct");
        BytesType = lib.Get("PyBytes_Type");
        ListType = lib.Get("PyList_Type");
        TupleType = lib.Get("PyTuple_Type");
        UnicodeType = lib.Get("PyUnicode_Type");

        static nint Exc(LibPython l, string name) => *(nint*)l.Get(name);
        ExcTypeError = Exc(lib, "PyExc_TypeError");
        ExcValueError = Exc(lib, "PyExc_ValueError");
        ExcRuntimeError = Exc(lib, "PyExc_RuntimeError");
        ExcOSError = Exc(lib, "PyExc_OSError");
        ExcAssertionError = Exc(lib, "PyExc_AssertionError");
        ExcAttributeError = Exc(lib, "PyExc_AttributeError");
        ExcStopIteration = Exc(lib, "PyExc_StopIteration");
        ExcKeyboardInterrupt = Exc(lib, "PyExc_KeyboardInterrupt");
        ExcSystemExit = Exc(lib, "PyExc_SystemExit");
        ExcBaseException = Exc(lib, "PyExc_BaseException");
    }
}
