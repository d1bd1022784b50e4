using System.Runtime.CompilerServices;
using System.Text;
using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>
/// Safe wrappers over the C API for the layers above. Every call requires the GIL.
/// A NULL or -1 from CPython becomes a <see cref="PythonException"/> at once.
/// </summary>
public static unsafe class Py
{
    private const ulong LongSubclass = 1UL << 24, ListSubclass = 1UL << 25, TupleSubclass = 1UL << 26,
        BytesSubclass = 1UL << 27, UnicodeSubclass = 1UL << 28;

    public static BorrowedRef None => new(PyApi.None);
    public static BorrowedRef True => new(PyApi.True);
    public static BorrowedRef False => new(PyApi.False);
    public static BorrowedRef Bool(bool value) => value ? True : False;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static nint TypeOf(nint o) => *(nint*)(o + PyFeatures.ObTypeOffset);

    private static bool HasFlag(BorrowedRef o, ulong flag) => (PyApi.PyType_GetFlags(TypeOf(o.Handle)) & flag) != 0;

    public static bool IsNone(BorrowedRef o) => o.Handle == PyApi.None;
    public static bool IsStr(BorrowedRef o) => HasFlag(o, UnicodeSubclass);
    public static bool IsBytes(BorrowedRef o) => HasFlag(o, BytesSubclass);
    public static bool IsExactList(BorrowedRef o) => TypeOf(o.Handle) == PyApi.ListType;
    public static bool IsExactTuple(BorrowedRef o) => TypeOf(o.Handle) == PyApi.TupleType;
    public static bool IsList(BorrowedRef o) => HasFlag(o, ListSubclass);
    public static bool IsTuple(BorrowedRef o) => HasFlag(o, TupleSubclass);
    public static bool IsInt(BorrowedRef o) => HasFlag(o, LongSubclass);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static NewRef Check(nint result) => result != 0 ? new NewRef(result) : throw PythonException.Fetch();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Check(int status) { if (status < 0) throw PythonException.Fetch(); }

    // ---- errors raised into Python (from C# callbacks) ----
    public static void SetError(PyErrorKind kind, string message)
    {
        var type = kind switch
        {
            PyErrorKind.TypeError => PyApi.ExcTypeError,
            PyErrorKind.ValueError => PyApi.ExcValueError,
            PyErrorKind.OSError => PyApi.ExcOSError,
            PyErrorKind.AssertionError => PyApi.ExcAssertionError,
            PyErrorKind.AttributeError => PyApi.ExcAttributeError,
            _ => PyApi.ExcRuntimeError,
        };
        var bytes = Encoding.UTF8.GetBytes(message + "\0");
        fixed (byte* p = bytes) PyApi.PyErr_SetString(type, p);
    }

    /// <summary>Raises (type, value, traceback) from an exc_info tuple; the caller then returns NULL to
    /// Python.</summary>
    public static void RestoreExcInfo(BorrowedRef excInfo)
    {
        nint t = PyApi.PyTuple_GetItem(excInfo.Handle, 0), v = PyApi.PyTuple_GetItem(excInfo.Handle, 1),
            b = PyApi.PyTuple_GetItem(excInfo.Handle, 2);
        if (t == 0 || v == 0 || b == 0)
        {
            PyApi.PyErr_Clear(); SetError(PyErrorKind.TypeError, "exc_info must be a 3-tuple"); return;
        }
        if (b == PyApi.None) b = 0;
        PyApi.Py_IncRef(t); PyApi.Py_IncRef(v); if (b != 0) PyApi.Py_IncRef(b);
        PyApi.PyErr_Restore(t, v, b);
    }

    // ---- strings ----
    /// <summary>
    /// A str with the chars' code points: latin-1 decoded text (all below U+0100) or any text; a surrogate pair
    /// becomes the one code point it encodes (as UCS-2 it would become two lone surrogates Python cannot encode).
    /// </summary>
    public static NewRef StrFromChars(ReadOnlySpan<char> chars)
    {
        if (chars.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0) return StrFromUtf16(chars);
        fixed (char* p = chars) return Check(PyApi.PyUnicode_FromKindAndData(2, p, chars.Length));
    }

    /// <summary>Text with surrogates as UCS-4: pairs combined, a lone surrogate kept as that code point.</summary>
    private static NewRef StrFromUtf16(ReadOnlySpan<char> chars)
    {
        var codePoints = new int[chars.Length];
        int n = 0;
        for (int i = 0; i < chars.Length; i++)
        {
            var c = chars[i];
            if (char.IsHighSurrogate(c) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
                codePoints[n++] = char.ConvertToUtf32(c, chars[++i]);
            else
                codePoints[n++] = c;
        }
        fixed (int* p = codePoints) return Check(PyApi.PyUnicode_FromKindAndData(4, p, n));
    }

    public static NewRef Str(string s) => StrFromChars(s.AsSpan());

    public static PyOwned Intern(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        fixed (byte* p = bytes) { var r = Check(PyApi.PyUnicode_InternFromString(p)); return r.ToOwned(); }
    }

    /// <summary>Encodes a str as latin-1; false (error cleared) if it has code points above U+00FF.</summary>
    public static bool TryLatin1(BorrowedRef str, out string value)
    {
        // Most header names and values are ASCII: their UTF-8 buffer is the str's own data (no allocation).
        nint length;
        var utf8 = PyApi.PyUnicode_AsUTF8AndSize(str.Handle, &length);
        if (utf8 == null) PyApi.PyErr_Clear();
        else if (System.Text.Ascii.IsValid(new ReadOnlySpan<byte>(utf8, (int)length)))
        {
            value = Encoding.Latin1.GetString(utf8, (int)length);
            return true;
        }
        var encoded = PyApi.PyUnicode_AsLatin1String(str.Handle);
        if (encoded == 0) { PyApi.PyErr_Clear(); value = ""; return false; }
        try
        {
            byte* p; nint n;
            Check(PyApi.PyBytes_AsStringAndSize(encoded, &p, &n));
            value = Encoding.Latin1.GetString(p, (int)n);
            return true;
        }
        finally { PyApi.Py_DecRef(encoded); }
    }

    /// <summary>UTF-8 text of a str object.</summary>
    public static string StrToString(BorrowedRef str)
    {
        nint n;
        var p = PyApi.PyUnicode_AsUTF8AndSize(str.Handle, &n);
        if (p == null) throw PythonException.Fetch();
        return Encoding.UTF8.GetString(p, (int)n);
    }

    /// <summary>str(o), never throwing (for messages).</summary>
    public static string SafeStr(BorrowedRef o)
    {
        var s = PyApi.PyObject_Str(o.Handle);
        if (s == 0) { PyApi.PyErr_Clear(); return "<unprintable>"; }
        try
        {
            nint n;
            var p = PyApi.PyUnicode_AsUTF8AndSize(s, &n);
            if (p == null) { PyApi.PyErr_Clear(); return "<unprintable>"; }
            return Encoding.UTF8.GetString(p, (int)n);
        }
        finally { PyApi.Py_DecRef(s); }
    }

    public static string Repr(BorrowedRef o)
    {
        var s = PyApi.PyObject_Repr(o.Handle);
        if (s == 0) { PyApi.PyErr_Clear(); return "<unrepresentable>"; }
        try { return StrToString(new BorrowedRef(s)); } finally { PyApi.Py_DecRef(s); }
    }

    /// <summary>The qualified name of a type object, or of an object's type.</summary>
    public static string TypeName(BorrowedRef typeObject)
    {
        var name = PyApi.PyObject_GetAttrString(typeObject.Handle, (byte*)Utf8("__name__"));
        if (name == 0) { PyApi.PyErr_Clear(); return "?"; }
        try { return StrToString(new BorrowedRef(name)); } finally { PyApi.Py_DecRef(name); }
    }

    public static string TypeNameOf(BorrowedRef o) => TypeName(new BorrowedRef(TypeOf(o.Handle)));

    /// <summary>traceback.format_exception(...) joined; null if formatting itself fails.</summary>
    internal static string? FormatException(BorrowedRef type, BorrowedRef value, BorrowedRef tb)
    {
        nint module = PyApi.PyImport_ImportModule((byte*)Utf8("traceback"));
        if (module == 0) { PyApi.PyErr_Clear(); return null; }
        nint fn = 0, args = 0, lines = 0, joined = 0, sep = 0, joinFn = 0, joinArgs = 0;
        try
        {
            fn = PyApi.PyObject_GetAttrString(module, (byte*)Utf8("format_exception"));
            if (fn == 0) return null;
            args = PyApi.PyTuple_New(3);
            foreach (var (i, o) in new[] { (0, type.Handle), (1, value.Handle), (2, tb.Handle) })
            {
                var item = o == 0 ? PyApi.None : o;
                PyApi.Py_IncRef(item);
                PyApi.PyTuple_SetItem(args, i, item);
            }
            lines = PyApi.PyObject_CallObject(fn, args);
            if (lines == 0) return null;
            fixed (byte* e = "\0"u8) sep = PyApi.PyUnicode_FromStringAndSize(e, 0);
            joinFn = PyApi.PyObject_GetAttrString(sep, (byte*)Utf8("join"));
            joinArgs = PyApi.PyTuple_New(1);
            PyApi.Py_IncRef(lines);
            PyApi.PyTuple_SetItem(joinArgs, 0, lines);
            joined = PyApi.PyObject_CallObject(joinFn, joinArgs);
            if (joined == 0) return null;
            return StrToString(new BorrowedRef(joined));
        }
        catch (PythonException) { return null; }
        finally
        {
            foreach (var p in new[] { module, fn, args, lines, joined, sep, joinFn, joinArgs })
                if (p != 0) PyApi.Py_DecRef(p);
            if (PyApi.PyErr_Occurred() != 0) PyApi.PyErr_Clear();
        }
    }

    // Null-terminated UTF-8 names that live for the process (attribute names used by the runtime).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, nint> Utf8Cache = new();
    internal static nint Utf8(string s) => Utf8Cache.GetOrAdd(s, static k =>
    {
        var bytes = Encoding.UTF8.GetBytes(k + "\0");
        var p = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes.Length);
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, p, bytes.Length);
        return p;
    });

    // ---- bytes ----
    public static NewRef Bytes(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data) return Check(PyApi.PyBytes_FromStringAndSize(p, data.Length));
    }

    /// <summary>A new bytes object of the given size whose buffer the caller fills before sharing it.</summary>
    public static NewRef NewBytes(int size, out Span<byte> buffer)
    {
        var r = Check(PyApi.PyBytes_FromStringAndSize(null, size));
        byte* p; nint n;
        PyApi.PyBytes_AsStringAndSize(r.Handle, &p, &n);
        buffer = new Span<byte>(p, (int)n);
        return r;
    }

    /// <summary>The contents of a bytes object: valid while the object is alive and the GIL is held.</summary>
    public static ReadOnlySpan<byte> BytesSpan(BorrowedRef bytes)
    {
        byte* p; nint n;
        Check(PyApi.PyBytes_AsStringAndSize(bytes.Handle, &p, &n));
        return new ReadOnlySpan<byte>(p, (int)n);
    }

    // ---- numbers ----
    public static NewRef Long(long value) => Check(PyApi.PyLong_FromLong(value));
    public static long AsLong(BorrowedRef o)
    {
        var v = PyApi.PyLong_AsLong(o.Handle);
        if (v == -1 && PyApi.PyErr_Occurred() != 0) throw PythonException.Fetch();
        return v;
    }

    // ---- containers ----
    public static NewRef Tuple(params ReadOnlySpan<BorrowedRef> items)
    {
        var t = Check(PyApi.PyTuple_New(items.Length));
        for (int i = 0; i < items.Length; i++)
        {
            PyApi.Py_IncRef(items[i].Handle);
            PyApi.PyTuple_SetItem(t.Handle, i, items[i].Handle);
        }
        return t;
    }

    public static nint TupleSize(BorrowedRef t) => PyApi.PyTuple_Size(t.Handle);
    public static BorrowedRef TupleItem(BorrowedRef t, nint i)
    {
        var r = PyApi.PyTuple_GetItem(t.Handle, i);
        return r != 0 ? new BorrowedRef(r) : throw PythonException.Fetch();
    }

    public static NewRef List() => Check(PyApi.PyList_New(0));
    public static void ListAppend(BorrowedRef list, BorrowedRef item)
        => Check(PyApi.PyList_Append(list.Handle, item.Handle));
    public static nint ListSize(BorrowedRef l) => PyApi.PyList_Size(l.Handle);
    public static BorrowedRef ListItem(BorrowedRef l, nint i)
    {
        var r = PyApi.PyList_GetItem(l.Handle, i);
        return r != 0 ? new BorrowedRef(r) : throw PythonException.Fetch();
    }

    public static NewRef Dict() => Check(PyApi.PyDict_New());
    public static NewRef DictCopy(BorrowedRef d) => Check(PyApi.PyDict_Copy(d.Handle));
    public static void DictSet(BorrowedRef dict, BorrowedRef key, BorrowedRef value)
        => Check(PyApi.PyDict_SetItem(dict.Handle, key.Handle, value.Handle));

    /// <summary>Sets dict[key] = value and releases the caller's reference to value.</summary>
    public static void DictSetAndRelease(BorrowedRef dict, BorrowedRef key, NewRef value)
    {
        try { Check(PyApi.PyDict_SetItem(dict.Handle, key.Handle, value.Handle)); }
        finally { value.Dispose(); }
    }

    public static void DictSet(BorrowedRef dict, string key, BorrowedRef value)
        => Check(PyApi.PyDict_SetItemString(dict.Handle, (byte*)Utf8(key), value.Handle));

    /// <summary>dict[key] or null; borrowed.</summary>
    public static BorrowedRef DictGet(BorrowedRef dict, string key)
        => new(PyApi.PyDict_GetItemString(dict.Handle, (byte*)Utf8(key)));

    // ---- attributes, calls, iteration ----
    public static NewRef GetAttr(BorrowedRef o, string name)
        => Check(PyApi.PyObject_GetAttrString(o.Handle, (byte*)Utf8(name)));
    public static NewRef GetAttr(BorrowedRef o, BorrowedRef name)
        => Check(PyApi.PyObject_GetAttr(o.Handle, name.Handle));

    /// <summary>getattr(o, name) or false when the attribute does not exist (other errors throw).</summary>
    public static bool TryGetAttr(BorrowedRef o, BorrowedRef name, out NewRef value)
    {
        var r = PyApi.PyObject_GetAttr(o.Handle, name.Handle);
        if (r != 0) { value = new NewRef(r); return true; }
        value = default;
        if (PyApi.PyErr_ExceptionMatches(PyApi.ExcAttributeError) != 0) { PyApi.PyErr_Clear(); return false; }
        throw PythonException.Fetch();
    }

    public static NewRef Call(BorrowedRef callable) => Check(PyApi.PyObject_CallObject(callable.Handle, 0));

    public static NewRef Call(BorrowedRef callable, BorrowedRef arg)
    {
        if (PyFeatures.Vectorcall != null)
        {
            nint* args = stackalloc nint[2];
            args[0] = 0; args[1] = arg.Handle;
            return Check(PyFeatures.Vectorcall(callable.Handle, args + 1, 1 | VectorcallArgumentsOffset, 0));
        }
        using var t = Tuple(arg);
        return Check(PyApi.PyObject_CallObject(callable.Handle, t.Handle));
    }

    public static NewRef Call(BorrowedRef callable, BorrowedRef arg1, BorrowedRef arg2)
    {
        if (PyFeatures.Vectorcall != null)
        {
            nint* args = stackalloc nint[3];
            args[0] = 0; args[1] = arg1.Handle; args[2] = arg2.Handle;
            return Check(PyFeatures.Vectorcall(callable.Handle, args + 1, 2 | VectorcallArgumentsOffset, 0));
        }
        using var t = Tuple(arg1, arg2);
        return Check(PyApi.PyObject_CallObject(callable.Handle, t.Handle));
    }

    public static NewRef CallArgs(BorrowedRef callable, BorrowedRef argsTuple, BorrowedRef kwargs = default)
        => Check(PyApi.PyObject_Call(callable.Handle, argsTuple.Handle, kwargs.Handle));

    private static readonly nuint VectorcallArgumentsOffset = unchecked((nuint)(1UL << 63));

    public static NewRef GetIter(BorrowedRef o) => Check(PyApi.PyObject_GetIter(o.Handle));

    /// <summary>next(it): false at the end; a raised exception throws.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IterNext(BorrowedRef iterator, out NewRef item)
    {
        var r = PyApi.PyIter_Next(iterator.Handle);
        if (r != 0) { item = new NewRef(r); return true; }
        item = default;
        if (PyApi.PyErr_Occurred() != 0) throw PythonException.Fetch();
        return false;
    }

    public static NewRef Import(string module) => Check(PyApi.PyImport_ImportModule((byte*)Utf8(module)));

    /// <summary>Runs source as a module body in the given globals dict (exec).</summary>
    public static void Exec(string source, BorrowedRef globals)
    {
        const int FileInput = 257;
        var bytes = Encoding.UTF8.GetBytes(source + "\0");
        if (PyApi.PyDict_GetItemString(globals.Handle, (byte*)Utf8("__builtins__")) == 0)
            Check(PyApi.PyDict_SetItemString(globals.Handle, (byte*)Utf8("__builtins__"), PyApi.PyEval_GetBuiltins()));
        fixed (byte* p = bytes)
        {
            using var r = Check(PyApi.PyRun_StringFlags(p, FileInput, globals.Handle, globals.Handle, 0));
        }
    }

    public static BorrowedRef SysGet(string name) => new(PyApi.PySys_GetObject((byte*)Utf8(name)));
    public static void SysSet(string name, BorrowedRef value)
        => Check(PyApi.PySys_SetObject((byte*)Utf8(name), value.Handle));

    // ---- threads ----
    /// <summary>The calling thread's Python thread id (threading.get_ident()).</summary>
    public static ulong CurrentThreadIdent() => PyApi.PyThread_get_thread_ident();

    /// <summary>Raises the exception class asynchronously in the Python thread with that id; true if found.</summary>
    public static bool SetAsyncException(ulong threadIdent, BorrowedRef exceptionClass)
        => PyApi.PyThreadState_SetAsyncExc((nuint)threadIdent, exceptionClass.Handle) > 0;
}
