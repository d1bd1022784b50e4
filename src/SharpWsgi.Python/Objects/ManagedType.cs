using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using SharpWsgi.Python.Native;

namespace SharpWsgi.Python;

/// <summary>A managed object Python can call: obj(*args, **kwargs).</summary>
public interface IPyCallable
{
    /// <summary>Returns a new reference, or throws (PyRaiseException / PythonException) to raise in Python.</summary>
    NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs);
}

/// <summary>A managed object Python can iterate: iter(obj) is obj, next(obj) calls Next.</summary>
public interface IPyIterator
{
    /// <summary>The next item, or false at the end (StopIteration).</summary>
    bool Next(BorrowedRef self, out NewRef item);
}

/// <summary>A managed object with named methods; index is the method's position in the type's method list.</summary>
public interface IPyMethods
{
    NewRef Invoke(int index, BorrowedRef self, BorrowedRef args, BorrowedRef kwargs);
}

/// <summary>
/// A Python heap type (PyType_FromSpec, stable ABI) whose instances carry a GCHandle to a managed
/// object that implements the behaviour: <see cref="IPyCallable"/>, <see cref="IPyIterator"/>,
/// <see cref="IPyMethods"/>. The handle is freed when Python deallocates the instance.
/// </summary>
public sealed unsafe class ManagedType
{
    private const int Py_tp_call = 50, Py_tp_dealloc = 52, Py_tp_doc = 56, Py_tp_iter = 62, Py_tp_iternext = 63,
        Py_tp_methods = 64, Py_tp_new = 65, Py_tp_free = 74;
    private const uint Py_TPFLAGS_DEFAULT = 1u << 18;
    private const int METH_VARARGS = 1, METH_KEYWORDS = 2;
    public const int MaxMethods = 8;

    private readonly nint _type;
    public string Name { get; }
    public BorrowedRef TypeObject => new(_type);

    /// <summary>The interpreter the type was created in: its instances live there only.</summary>
    public PythonInterpreter Interpreter { get; }

    private ManagedType(nint type, string name)
    {
        _type = type;
        Name = name;
        Interpreter = PythonInterpreter.Current;
    }

    /// <summary>Creates the type (GIL held). Method names map, in order, to IPyMethods indices.</summary>
    public static ManagedType Create(string qualifiedName, string doc, bool callable, bool iterator,
        params string[] methods)
    {
        if (methods.Length > MaxMethods) throw new ArgumentException($"at most {MaxMethods} methods");
        var slots = new List<(int, nint)>
        {
            (Py_tp_dealloc, (nint)(delegate* unmanaged<nint, void>)&Dealloc),
            (Py_tp_doc, Utf8Forever(doc)),
            // Only CreateInstance makes instances: one made by Python (type(o)(), copy) would have no target.
            (Py_tp_new, (nint)(delegate* unmanaged<nint, nint, nint, nint>)&NewFromPython),
        };
        if (callable) slots.Add((Py_tp_call, (nint)(delegate* unmanaged<nint, nint, nint, nint>)&CallTrampoline));
        if (iterator)
        {
            slots.Add((Py_tp_iter, (nint)(delegate* unmanaged<nint, nint>)&IterSelf));
            slots.Add((Py_tp_iternext, (nint)(delegate* unmanaged<nint, nint>)&IterNextTrampoline));
        }
        if (methods.Length > 0)
        {
            // PyMethodDef { const char* name; void* meth; int flags; const char* doc; } = 32 bytes,
            // NULL-terminated array.
            var defs = (byte*)NativeMemory.AllocZeroed((nuint)(32 * (methods.Length + 1)));
            for (int i = 0; i < methods.Length; i++)
            {
                var d = defs + 32 * i;
                *(nint*)d = Utf8Forever(methods[i]);
                *(nint*)(d + 8) = MethodTrampolines[i];
                *(int*)(d + 16) = METH_VARARGS | METH_KEYWORDS;
                *(nint*)(d + 24) = 0;
            }
            slots.Add((Py_tp_methods, (nint)defs));
        }
        // PyType_Slot { int slot; void* pfunc; } = 16 bytes, {0, NULL}-terminated.
        var slotArray = (byte*)NativeMemory.AllocZeroed((nuint)(16 * (slots.Count + 1)));
        for (int i = 0; i < slots.Count; i++)
        {
            *(int*)(slotArray + 16 * i) = slots[i].Item1;
            *(nint*)(slotArray + 16 * i + 8) = slots[i].Item2;
        }
        // PyType_Spec { const char* name; int basicsize; int itemsize; unsigned int flags; PyType_Slot* slots; }
        // = 32 bytes.
        var spec = (byte*)NativeMemory.AllocZeroed(32);
        *(nint*)spec = Utf8Forever(qualifiedName);
        *(int*)(spec + 8) = PyFeatures.ObjectHeaderSize + sizeof(nint);
        *(int*)(spec + 12) = 0;
        *(uint*)(spec + 16) = Py_TPFLAGS_DEFAULT;
        *(nint*)(spec + 24) = (nint)slotArray;
        var type = PyApi.PyType_FromSpec((nint)spec);
        if (type == 0) throw PythonException.Fetch();
        return new ManagedType(type, qualifiedName);
    }

    /// <summary>A new instance bound to target (GIL held).</summary>
    public NewRef CreateInstance(object target)
    {
        if (PythonInterpreter.Multiple) Interpreter.AssertCurrent(Name);
        var obj = PyApi.PyType_GenericAlloc(_type, 0);
        if (obj == 0) throw PythonException.Fetch();
        *(nint*)(obj + PyFeatures.ObjectHeaderSize) = GCHandle.ToIntPtr(GCHandle.Alloc(target));
        return new NewRef(obj);
    }

    /// <summary>True when o is an instance of exactly this type.</summary>
    public bool IsInstance(BorrowedRef o) => Py.TypeOf(o.Handle) == _type;

    /// <summary>The managed object behind an instance of a managed type.</summary>
    public static object? TargetOf(BorrowedRef o)
    {
        var h = *(nint*)(o.Handle + PyFeatures.ObjectHeaderSize);
        return h == 0 ? null : GCHandle.FromIntPtr(h).Target;
    }

    private static nint Utf8Forever(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        var p = (nint)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>((void*)p, bytes.Length));
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static object Target(nint self)
        => GCHandle.FromIntPtr(*(nint*)(self + PyFeatures.ObjectHeaderSize)).Target!;

    /// <summary>Turns a managed exception into a raised Python exception (the callback then returns NULL).</summary>
    internal static void RaiseInPython(Exception e)
    {
        switch (e)
        {
            case PythonException pe: pe.Restore(); break;
            case PyRaiseException re: Py.SetError(re.Kind, re.Message); break;
            case PythonErrorAlreadySet: break;
            default: Py.SetError(PyErrorKind.RuntimeError,
                $"internal SharpWsgi error: {e.GetType().Name}: {e.Message}"); break;
        }
    }

    [UnmanagedCallersOnly]
    private static void Dealloc(nint self)
    {
        var slot = (nint*)(self + PyFeatures.ObjectHeaderSize);
        if (*slot != 0) { GCHandle.FromIntPtr(*slot).Free(); *slot = 0; }
        var type = Py.TypeOf(self);
        var free = (delegate* unmanaged<nint, void>)PyApi.PyType_GetSlot(type, Py_tp_free);
        free(self);
        PyApi.Py_DecRef(type);
    }

    [UnmanagedCallersOnly]
    private static nint NewFromPython(nint type, nint args, nint kwargs)
    {
        try { Py.SetError(PyErrorKind.TypeError, $"cannot create '{Py.TypeName(new(type))}' instances from Python"); }
        catch (Exception e) { RaiseInPython(e); }
        return 0;
    }

    [UnmanagedCallersOnly]
    private static nint CallTrampoline(nint self, nint args, nint kwargs)
    {
        try { var r = ((IPyCallable)Target(self)).Call(new(self), new(args), new(kwargs)); return r.Steal().Handle; }
        catch (Exception e) { RaiseInPython(e); return 0; }
    }

    [UnmanagedCallersOnly]
    private static nint IterSelf(nint self) { PyApi.Py_IncRef(self); return self; }

    [UnmanagedCallersOnly]
    private static nint IterNextTrampoline(nint self)
    {
        try { return ((IPyIterator)Target(self)).Next(new(self), out var item) ? item.Steal().Handle : 0; }
        catch (Exception e) { RaiseInPython(e); return 0; }
    }

    private static nint Invoke(int index, nint self, nint args, nint kwargs)
    {
        try
        {
            var r = ((IPyMethods)Target(self)).Invoke(index, new(self), new(args), new(kwargs));
            return r.Steal().Handle;
        }
        catch (Exception e) { RaiseInPython(e); return 0; }
    }

    [UnmanagedCallersOnly] private static nint M0(nint s, nint a, nint k) => Invoke(0, s, a, k);
    [UnmanagedCallersOnly] private static nint M1(nint s, nint a, nint k) => Invoke(1, s, a, k);
    [UnmanagedCallersOnly] private static nint M2(nint s, nint a, nint k) => Invoke(2, s, a, k);
    [UnmanagedCallersOnly] private static nint M3(nint s, nint a, nint k) => Invoke(3, s, a, k);
    [UnmanagedCallersOnly] private static nint M4(nint s, nint a, nint k) => Invoke(4, s, a, k);
    [UnmanagedCallersOnly] private static nint M5(nint s, nint a, nint k) => Invoke(5, s, a, k);
    [UnmanagedCallersOnly] private static nint M6(nint s, nint a, nint k) => Invoke(6, s, a, k);
    [UnmanagedCallersOnly] private static nint M7(nint s, nint a, nint k) => Invoke(7, s, a, k);

    private static readonly nint[] MethodTrampolines =
    {
        (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M0, (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M1,
        (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M2, (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M3,
        (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M4, (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M5,
        (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M6, (nint)(delegate* unmanaged<nint, nint, nint, nint>)&M7,
    };
}

/// <summary>Thrown by C# code called from Python after it has itself set the Python error indicator.</summary>
public sealed class PythonErrorAlreadySet : Exception
{
    public static readonly PythonErrorAlreadySet Instance = new();
}

/// <summary>Argument helpers for managed callables.</summary>
public static class PyArgs
{
    public static int Count(BorrowedRef args) => args.IsNull ? 0 : (int)Py.TupleSize(args);
    public static BorrowedRef At(BorrowedRef args, int i) => Py.TupleItem(args, i);
    public static unsafe bool HasKeywords(BorrowedRef kwargs) => !kwargs.IsNull && PyApi.PyDict_Size(kwargs.Handle) > 0;
    /// <summary>kwargs[name] or null.</summary>
    public static BorrowedRef Keyword(BorrowedRef kwargs, string name)
        => kwargs.IsNull ? default : Py.DictGet(kwargs, name);
}
