using System.Text;
using SharpWsgi.Python.Tests.Infrastructure;

namespace SharpWsgi.Python.Tests;

/// <summary>str and bytes: latin-1 (PEP 3333's native strings), UTF-8 text, interning, bytes spans.</summary>
[Collection(PythonCollection.Name)]
public sealed class StringTests
{
    private static readonly byte[] AllBytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();

    [Fact]
    public void TryLatin1_StrOfAllLatin1CodePoints_RoundTripsToTheSameChars() => OnPython.Run(() =>
    {
        using var s = PyTest.Eval("''.join(map(chr, range(256)))");
        Assert.True(Py.IsStr(s));
        Assert.True(Py.TryLatin1(s, out var value));
        Assert.Equal(Encoding.Latin1.GetString(AllBytes), value);
    });

    [Fact]
    public void TryLatin1_CodePointAboveFF_ReturnsFalseAndLeavesNoError() => OnPython.Run(() =>
    {
        using var s = Py.Str("price: 5 €");
        Assert.False(Py.TryLatin1(s, out var value));
        Assert.Equal("", value);
        PendingError.ThrowIfAny();
    });

    [Fact]
    public void StrFromChars_Latin1Chars_SameStrAsPythonsLatin1Decoding() => OnPython.Run(() =>
    {
        using var fromChars = Py.StrFromChars("caf\u00e9 \u00ff\u0000end".AsSpan());
        using var bytes = Py.Bytes(Encoding.Latin1.GetBytes("caf\u00e9 \u00ff\u0000end"));
        using var globals = Py.Dict();
        Py.DictSet(globals, "a", fromChars);
        Py.DictSet(globals, "b", bytes);
        Assert.Equal("True 10", PyTest.ExecAndRead(globals, "shown = f'{a == b.decode(\"latin-1\")} {len(a)}'",
            "shown"));
    });

    [Theory]
    [InlineData("plain ascii")]
    [InlineData("h\u00e9llo \u2713 \u4e2d\u6587")]
    [InlineData("emoji \U0001F600 and \U0001F680 outside the BMP")]
    [InlineData("")]
    public void Str_AnyText_RoundTripsThroughUtf8(string text) => OnPython.Run(() =>
    {
        using var s = Py.Str(text);
        Assert.Equal(text, Py.StrToString(s));
        using var globals = Py.Dict();
        Py.DictSet(globals, "s", s);
        // Python counts code points: a character outside the BMP is one, not a surrogate pair.
        var codePoints = text.EnumerateRunes().Count();
        Assert.Equal(codePoints.ToString(), PyTest.ExecAndRead(globals, "n = len(s)", "n"));
    });

    [Fact]
    public void Str_LoneSurrogate_KeptAsThatCodePoint() => OnPython.Run(() =>
    {
        using var s = Py.Str("a\uD800b\uDC00");
        using var globals = Py.Dict();
        Py.DictSet(globals, "s", s);
        var shown = PyTest.ExecAndRead(globals, "shown = str([ord(c) for c in s])", "shown");
        Assert.Equal("[97, 55296, 98, 56320]", shown);
    });

    [Fact]
    public void StrToString_Utf8FromPython_DecodedExactly() => OnPython.Run(() =>
    {
        using var s = PyTest.Eval("'\\u00e9\\u2713' + chr(0x1F600)");
        Assert.Equal("\u00e9\u2713\U0001F600", Py.StrToString(s));
    });

    [Fact]
    public void Intern_SameText_ReturnsTheSameObjectAsSysIntern() => OnPython.Run(() =>
    {
        var first = Py.Intern("x-interned-key");
        var second = Py.Intern("x-interned-key");
        using var fromPython = PyTest.Eval("__import__('sys').intern('x-interned' + '-key')");
        Assert.Equal(first.Handle, second.Handle);
        Assert.Equal(first.Handle, fromPython.Handle);
        first.Dispose();
        second.Dispose();
    });

    [Fact]
    public void Bytes_FromSpan_BytesSpanReturnsTheSameContents() => OnPython.Run(() =>
    {
        var data = new byte[1000];
        new Random(7).NextBytes(data);
        using var b = Py.Bytes(data);
        Assert.True(Py.IsBytes(b));
        Assert.False(Py.IsStr(b));
        Assert.Equal(data, Py.BytesSpan(b).ToArray());
    });

    [Fact]
    public void NewBytes_BufferFilled_PythonSeesTheBytes() => OnPython.Run(() =>
    {
        using var b = Py.NewBytes(5, out var buffer);
        Assert.Equal(5, buffer.Length);
        "hello"u8.CopyTo(buffer);
        using var globals = Py.Dict();
        Py.DictSet(globals, "b", b);
        Assert.Equal("True", PyTest.ExecAndRead(globals, "ok = b == b'hello'", "ok"));
    });

    [Fact]
    public void BytesSpan_OfStr_ThrowsTypeError() => OnPython.Run(() =>
    {
        using var s = Py.Str("not bytes");
        Assert.Equal("TypeError", Assert.Throws<PythonException>(() => Py.BytesSpan(s).Length).TypeName);
    });

    [Fact]
    public void IsBytes_BytesSubclass_TrueAndItsSpanReadable() => OnPython.Run(() =>
    {
        using var sub = PyTest.Eval("type('B', (bytes,), {})(b'x')");
        Assert.True(Py.IsBytes(sub));
        Assert.Equal("x", Encoding.ASCII.GetString(Py.BytesSpan(sub)));
    });

    [Fact]
    public void SafeStrAndRepr_OrdinaryObjects_MatchPython() => OnPython.Run(() =>
    {
        using var s = Py.Str("quote'd");
        using var n = Py.Long(-42);
        Assert.Equal("quote'd", Py.SafeStr(s));
        Assert.Equal("\"quote'd\"", Py.Repr(s));
        Assert.Equal("-42", Py.SafeStr(n));
        Assert.Equal("int", Py.TypeNameOf(n));
        Assert.Equal("str", Py.TypeNameOf(s));
    });
}
