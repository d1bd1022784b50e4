using System.Runtime.CompilerServices;
using SharpWsgi.Python.Tests.Infrastructure;

namespace SharpWsgi.Python.Tests;

/// <summary>NewRef, BorrowedRef, StolenRef, PyOwned and DecRefQueue, observed through sys.getrefcount.</summary>
[Collection(PythonCollection.Name)]
public sealed class ReferenceTests
{
    [Fact]
    public void BorrowedRef_NewReference_AddsExactlyOneReference() => OnPython.Run(() =>
    {
        using var list = Py.List();
        var before = PyTest.RefCount(list);
        using (var extra = list.Borrow().NewReference())
        {
            Assert.Equal(list.Handle, extra.Handle);
            Assert.Equal(before + 1, PyTest.RefCount(list));
        }
        Assert.Equal(before, PyTest.RefCount(list));
    });

    [Fact]
    public void NewRef_TenThousandCreatedAndDisposed_RefCountUnchanged() => OnPython.Run(() =>
    {
        using var item = Py.Str("shared item");
        var before = PyTest.RefCount(item);
        for (int i = 0; i < 10_000; i++)
        {
            using var extra = item.Borrow().NewReference();
            using var tuple = Py.Tuple(item, item);
            using var list = Py.List();
            Py.ListAppend(list, item);
        }
        Assert.Equal(before, PyTest.RefCount(item));
    });

    [Fact]
    public void NewRef_DisposedTwice_DecrefsOnce() => OnPython.Run(() =>
    {
        using var list = Py.List();
        var before = PyTest.RefCount(list);
        var extra = list.Borrow().NewReference();
        extra.Dispose();
        extra.Dispose();
        Assert.True(extra.IsNull);
        Assert.Equal(before, PyTest.RefCount(list));
    });

    [Fact]
    public void NewRef_Stolen_ClearedAndNotDecrefdByDispose() => OnPython.Run(() =>
    {
        using var list = Py.List();
        var before = PyTest.RefCount(list);
        var extra = list.Borrow().NewReference();
        var stolen = extra.Steal();
        extra.Dispose();
        Assert.True(extra.IsNull);
        Assert.Equal(list.Handle, stolen.Handle);
        // The stolen reference still counts: no public call consumes a StolenRef, so this one empty list leaks.
        Assert.Equal(before + 1, PyTest.RefCount(list));
    });

    [Fact]
    public void ToOwned_MovesOwnership_DisposeDecrefsOnce() => OnPython.Run(() =>
    {
        using var list = Py.List();
        var before = PyTest.RefCount(list);
        var extra = list.Borrow().NewReference();
        var owned = extra.ToOwned();
        Assert.True(extra.IsNull);
        extra.Dispose();
        Assert.Equal(list.Handle, owned.Handle);
        Assert.Equal(before + 1, PyTest.RefCount(list));
        owned.Dispose();
        owned.Dispose();
        Assert.Equal(0, owned.Handle);
        Assert.Equal(before, PyTest.RefCount(list));
    });

    [Fact]
    public void DictSetAndRelease_NewValue_OnlyTheDictKeepsIt() => OnPython.Run(() =>
    {
        using var dict = Py.Dict();
        using var key = Py.Str("key");
        using var reference = Py.List();
        var alone = PyTest.RefCount(reference); // a list owned by one reference
        var value = Py.List();
        var handle = value.Handle;
        Py.DictSetAndRelease(dict, key, value);
        var inDict = Py.DictGet(dict, "key");
        Assert.Equal(handle, inDict.Handle);
        Assert.Equal(alone, PyTest.RefCount(inDict));
    });

    [Fact]
    public void CallableResult_StolenByTrampoline_NotDecrefdTwice() => OnPython.Run(() =>
    {
        // The C# callable hands Python a new reference each call; the trampoline must steal it (not dispose it).
        using var result = Py.List();
        using var callable = TestTypes.Callable.CreateInstance(new ReturnsReference(result.Handle));
        var before = PyTest.RefCount(result);
        using var globals = Py.Dict();
        Py.DictSet(globals, "f", callable);
        Py.Exec("for _ in range(1000): f()", globals);
        Assert.Equal(before, PyTest.RefCount(result));
        Py.Exec("kept = [f() for _ in range(10)]", globals);
        Assert.Equal(before + 10, PyTest.RefCount(result));
    });

    [Fact]
    public void PyOwned_Finalized_DecrefWaitsForDrainOnPythonThread()
    {
        nint handle = 0;
        long before = 0;
        var keeper = OnPython.Run(() =>
        {
            var list = Py.List();
            handle = list.Handle;
            before = PyTest.RefCount(list);
            DropOwnedReference(list.Borrow());
            return list.ToOwned();
        });
        // The finalizer runs on the finalizer thread without the GIL: it may only queue the decref.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        OnPython.Run(() =>
        {
            // OnPython.Run drains the queue only after the body, so the count still includes the dropped reference.
            Assert.Equal(before + 1, PyTest.RefCount(new BorrowedRef(handle)));
            DecRefQueue.Drain();
            Assert.Equal(before, PyTest.RefCount(new BorrowedRef(handle)));
            keeper.Dispose();
        });
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropOwnedReference(BorrowedRef o)
    {
        var extra = o.NewReference();
        _ = extra.ToOwned(); // never disposed: only the finalizer releases it
    }

    private sealed class ReturnsReference(nint handle) : IPyCallable
    {
        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
            => new BorrowedRef(handle).NewReference();
    }
}
