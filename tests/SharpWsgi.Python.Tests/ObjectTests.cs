using SharpWsgi.Python.Tests.Infrastructure;

namespace SharpWsgi.Python.Tests;

/// <summary>The Py helpers for tuples, lists, dicts, ints, attributes, calls, iteration and sys.</summary>
[Collection(PythonCollection.Name)]
public sealed class ObjectTests
{
    [Fact]
    public void Tuple_ThreeItems_SizeAndItemsInOrder() => OnPython.Run(() =>
    {
        using var a = Py.Long(1);
        using var b = Py.Str("two");
        using var t = Py.Tuple(a, b, Py.None);
        Assert.True(Py.IsTuple(t));
        Assert.True(Py.IsExactTuple(t));
        Assert.Equal(3, Py.TupleSize(t));
        Assert.Equal(a.Handle, Py.TupleItem(t, 0).Handle);
        Assert.Equal(b.Handle, Py.TupleItem(t, 1).Handle);
        Assert.True(Py.IsNone(Py.TupleItem(t, 2)));
        Assert.Equal("(1, 'two', None)", Py.Repr(t));
    });

    [Fact]
    public void TupleItem_OutOfRange_ThrowsIndexError() => OnPython.Run(() =>
    {
        using var t = Py.Tuple();
        Assert.Equal(0, Py.TupleSize(t));
        Assert.Equal("IndexError", Assert.Throws<PythonException>(() => Py.TupleItem(t, 0)).TypeName);
    });

    [Fact]
    public void List_Appended_SizeItemsAndRepr() => OnPython.Run(() =>
    {
        using var list = Py.List();
        for (int i = 0; i < 5; i++)
        {
            using var n = Py.Long(i * 10);
            Py.ListAppend(list, n);
        }
        Assert.True(Py.IsList(list));
        Assert.True(Py.IsExactList(list));
        Assert.Equal(5, Py.ListSize(list));
        Assert.Equal(40, Py.AsLong(Py.ListItem(list, 4)));
        Assert.Equal("[0, 10, 20, 30, 40]", Py.Repr(list));
        Assert.Equal("IndexError", Assert.Throws<PythonException>(() => Py.ListItem(list, 5)).TypeName);
    });

    [Fact]
    public void IsList_ListSubclass_TrueButNotExact() => OnPython.Run(() =>
    {
        using var sub = PyTest.Eval("type('L', (list,), {})([1])");
        Assert.True(Py.IsList(sub));
        Assert.False(Py.IsExactList(sub));
        Assert.False(Py.IsTuple(sub));
    });

    [Fact]
    public void Dict_SetByStringAndObjectKey_GetReturnsBorrowedValues() => OnPython.Run(() =>
    {
        using var dict = Py.Dict();
        using var one = Py.Long(1);
        using var two = Py.Long(2);
        using var key = Py.Str("by-object");
        Py.DictSet(dict, "by-string", one);
        Py.DictSet(dict, key, two);
        Assert.Equal(one.Handle, Py.DictGet(dict, "by-string").Handle);
        Assert.Equal(two.Handle, Py.DictGet(dict, "by-object").Handle);
        Assert.True(Py.DictGet(dict, "missing").IsNull);
        PendingError.ThrowIfAny(); // a missing key is not an error
        Assert.Equal("{'by-string': 1, 'by-object': 2}", Py.Repr(dict));
    });

    [Fact]
    public void DictCopy_ThenChanged_OriginalUnchangedAndValuesShared() => OnPython.Run(() =>
    {
        using var template = Py.Dict();
        using var shared = Py.List();
        Py.DictSet(template, "shared", shared);
        var before = PyTest.RefCount(shared);
        using (var copy = Py.DictCopy(template))
        {
            using var extra = Py.Long(5);
            Py.DictSet(copy, "extra", extra);
            Assert.Equal(shared.Handle, Py.DictGet(copy, "shared").Handle);
            Assert.Equal(before + 1, PyTest.RefCount(shared));
            Assert.True(Py.DictGet(template, "extra").IsNull);
        }
        Assert.Equal(before, PyTest.RefCount(shared));
    });

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    public void Long_AnyInt64_RoundTrips(long value) => OnPython.Run(() =>
    {
        using var n = Py.Long(value);
        Assert.True(Py.IsInt(n));
        Assert.Equal(value, Py.AsLong(n));
        Assert.Equal(value.ToString(), Py.SafeStr(n));
    });

    [Fact]
    public void Bool_EachValue_IsPythonsSingleton() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.DictSet(globals, "t", Py.Bool(true));
        Py.DictSet(globals, "f", Py.Bool(false));
        Assert.Equal("True", PyTest.ExecAndRead(globals, "ok = t is True and f is False", "ok"));
        Assert.Equal(Py.False.Handle, Py.Bool(false).Handle);
    });

    [Fact]
    public void Call_ZeroOneTwoArgsAndKeywords_ReachTheFunction() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.Exec("def f(*args, **kwargs):\n    return repr((args, sorted(kwargs.items())))", globals);
        var f = Py.DictGet(globals, "f");
        using var a = Py.Long(1);
        using var b = Py.Str("b");
        using (var r = Py.Call(f)) Assert.Equal("((), [])", Py.StrToString(r));
        using (var r = Py.Call(f, a)) Assert.Equal("((1,), [])", Py.StrToString(r));
        using (var r = Py.Call(f, a, b)) Assert.Equal("((1, 'b'), [])", Py.StrToString(r));
        using var args = Py.Tuple(b);
        using var kwargs = Py.Dict();
        Py.DictSet(kwargs, "k", a);
        using (var r = Py.CallArgs(f, args, kwargs)) Assert.Equal("(('b',), [('k', 1)])", Py.StrToString(r));
    });

    [Fact]
    public void Call_ArgumentsAndResult_NoReferencesLeakedOver10kCalls() => OnPython.Run(() =>
    {
        using var globals = Py.Dict();
        Py.Exec("def same(x, y=None):\n    return x", globals);
        var same = Py.DictGet(globals, "same");
        using var arg = Py.List();
        var before = PyTest.RefCount(arg);
        for (int i = 0; i < 10_000; i++)
        {
            using var r1 = Py.Call(same, arg);
            using var r2 = Py.Call(same, arg, arg);
        }
        Assert.Equal(before, PyTest.RefCount(arg));
    });

    [Fact]
    public void GetIter_OverList_IterNextYieldsEachItemThenFalse() => OnPython.Run(() =>
    {
        using var list = PyTest.Eval("['a', 'b', 'c']");
        using var it = Py.GetIter(list);
        var seen = new List<string>();
        while (Py.IterNext(it, out var item))
            using (item) seen.Add(Py.StrToString(item));
        Assert.Equal(new[] { "a", "b", "c" }, seen);
        Assert.False(Py.IterNext(it, out var after));
        Assert.True(after.IsNull);
    });

    [Fact]
    public void GetIter_NotIterable_ThrowsTypeError() => OnPython.Run(() =>
    {
        using var n = Py.Long(3);
        Assert.Equal("TypeError", Assert.Throws<PythonException>(() => Py.GetIter(n)).TypeName);
    });

    [Fact]
    public void GetAttr_ByStringOrStr_ReturnsTheValue() => OnPython.Run(() =>
    {
        using var obj = PyTest.Eval("type('Plain', (), {'answer': 11})()");
        using var name = Py.Str("answer");
        using (var byString = Py.GetAttr(obj, "answer")) Assert.Equal(11, Py.AsLong(byString));
        using (var byObject = Py.GetAttr(obj, name)) Assert.Equal(11, Py.AsLong(byObject));
    });

    [Fact]
    public void TryGetAttr_Missing_ReturnsFalseWithoutError() => OnPython.Run(() =>
    {
        using var obj = PyTest.Eval("object()");
        using var name = Py.Str("missing");
        Assert.False(Py.TryGetAttr(obj, name, out var value));
        Assert.True(value.IsNull);
        PendingError.ThrowIfAny();
    });

    [Fact]
    public void TryGetAttr_PropertyRaisesOtherError_Throws() => OnPython.Run(() =>
    {
        using var obj = PyTest.Eval("type('P', (), {'p': property(lambda self: int('x'))})()");
        using var name = Py.Str("p");
        var e = Assert.Throws<PythonException>(() => Py.TryGetAttr(obj, name, out _));
        Assert.Equal("ValueError", e.TypeName);
    });

    [Fact]
    public void SysSet_NewAttribute_VisibleToSysGetAndPython() => OnPython.Run(() =>
    {
        using var value = Py.Str("set from C#");
        Py.SysSet("sharpwsgi_test_value", value);
        Assert.Equal(value.Handle, Py.SysGet("sharpwsgi_test_value").Handle);
        using var fromPython = PyTest.Eval("__import__('sys').sharpwsgi_test_value");
        Assert.Equal("set from C#", Py.StrToString(fromPython));
        Assert.True(Py.SysGet("no_such_sys_attribute").IsNull);
    });

    [Fact]
    public void Import_MissingModule_ThrowsModuleNotFoundError() => OnPython.Run(() =>
    {
        var e = Assert.Throws<PythonException>(() => Py.Import("no_such_module_here"));
        Assert.Equal("ModuleNotFoundError", e.TypeName);
        Assert.Contains("no_such_module_here", e.PythonMessage);
    });

    [Fact]
    public void Initialize_TestInterpreter_SysPathAndArgvAsGiven() => OnPython.Run(() =>
    {
        Assert.Equal("['sharpwsgi-python-tests']", Py.Repr(Py.SysGet("argv")));
        Assert.NotNull(PythonRuntime.Info);
        Assert.Equal(3, PythonRuntime.Info!.Major);
        Assert.Equal(PythonRuntime.Info.Version, PythonRuntime.LoadedVersion());
        var path = Py.SysGet("path");
        Assert.Equal(PythonRuntime.Info.SysPath.Distinct().Count(), (int)Py.ListSize(path));
        Assert.Equal(PythonRuntime.Info.SysPath[0], Py.StrToString(Py.ListItem(path, 0)));
    });
}
