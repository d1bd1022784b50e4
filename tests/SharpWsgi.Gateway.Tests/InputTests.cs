using System.Buffers;
using System.Text;
using SharpWsgi.Python;
using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>wsgi.input (InputStream): read, readline, readlines, iteration, waiting bodies, client errors.</summary>
[Collection(GatewayCollection.Name)]
public sealed class InputTests
{
    /// <summary>Evaluates expression (f is wsgi.input) inside an app; returns its ascii() or the error.</summary>
    private static string Probe(string body, string expression, FakeExchange? exchange = null)
    {
        var x = exchange ?? new FakeExchange("POST", "/").Body(body);
        TestApp.Serve($$"""
def app(environ, start_response):
    f = environ['wsgi.input']
    try:
        shown = ascii({{expression}})
    except Exception as e:
        shown = '%s: %s' % (type(e).__name__, e)
    start_response('200 OK', [])
    return [shown.encode()]
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        return x.BodyText();
    }

    [Fact]
    public void Read_NoSize_WholeBodyThenEmpty() =>
        Assert.Equal("[b'hello\\nworld', b'', b'']", Probe("hello\nworld", "[f.read(), f.read(), f.read()]"));

    [Fact]
    public void Read_Sizes_ExactPiecesThenRestThenEmpty() => Assert.Equal(
        "[b'ab', b'', b'cde', b'fgh', b'', b'']",
        Probe("abcdefgh", "[f.read(2), f.read(0), f.read(3), f.read(100), f.read(1), f.read()]"));

    [Fact]
    public void Read_NoneOrNegativeOrKeyword_ReadsAll() => Assert.Equal(
        "[b'a', b'bc', b'de', b'f']",
        Probe("abcdef", "[f.read(1), f.read(size=2), f.read(2), f.read(None)]"));

    [Fact]
    public void Read_NegativeSize_ReadsTheRest() =>
        Assert.Equal("[b'a', b'bcdef']", Probe("abcdef", "[f.read(1), f.read(-1)]"));

    [Fact]
    public void Read_NoBody_Empty() =>
        Assert.Equal("[b'', b'', b'']", Probe("", "[f.read(), f.read(5), f.readline()]"));

    [Fact]
    public void Read_WrongArguments_RaisesTypeError()
    {
        Assert.Equal("TypeError: read() argument must be int or None, not str", Probe("abc", "f.read('3')"));
        Assert.Equal("TypeError: read() takes at most 1 argument", Probe("abc", "f.read(1, 2)"));
    }

    [Fact]
    public void ReadLine_Lines_EachThroughItsNewlineThenTheTailThenEmpty() => Assert.Equal(
        "[b'one\\n', b'\\n', b'two\\n', b'tail', b'']",
        Probe("one\n\ntwo\ntail", "[f.readline(), f.readline(), f.readline(), f.readline(), f.readline()]"));

    [Fact]
    public void ReadLine_Limit_StopsAtTheLimitOrTheNewline() => Assert.Equal(
        "[b'ab', b'cd', b'\\n', b'xy\\n', b'z', b'', b'']",
        Probe("abcd\nxy\nz", "[f.readline(2), f.readline(2), f.readline(2), f.readline(10), f.readline(None), " +
            "f.readline(0), f.readline()]"));

    [Fact]
    public void ReadLine_AfterPartialRead_ContinuesFromThere() => Assert.Equal(
        "[b'on', b'e\\n', b'tw', b'o\\nthree']",
        Probe("one\ntwo\nthree", "[f.read(2), f.readline(), f.readline(2), f.read()]"));

    [Fact]
    public void ReadLines_NoHint_AllLines() => Assert.Equal(
        "[b'a\\n', b'bb\\n', b'ccc']", Probe("a\nbb\nccc", "f.readlines()"));

    [Fact]
    public void ReadLines_Hint_StopsOnceTheHintIsReached() => Assert.Equal(
        "([b'a\\n', b'bb\\n'], [b'ccc\\n', b'd'])", Probe("a\nbb\nccc\nd", "(f.readlines(3), f.readlines(hint=0))"));

    [Fact]
    public void Iteration_Lines_YieldsEachLine() => Assert.Equal(
        "[b'x\\n', b'y\\n', b'z']", Probe("x\ny\nz", "list(f)"));

    [Fact]
    public void Iteration_IsItsOwnIterator() => Assert.Equal("True", Probe("x", "iter(f) is f"));

    [Fact]
    public void Read_BinaryBody_BytesUnchanged()
    {
        var body = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var x = new FakeExchange("POST", "/").Body(body);
        Assert.Equal("True", Probe("", "f.read() == bytes(range(256))", x));
    }

    [Fact]
    public void Read_AfterTheRequestFinished_RaisesValueError()
    {
        var shown = OnPython.Run(() =>
        {
            using var app = new TestApp("""
def app(environ, start_response):
    global kept
    kept = environ['wsgi.input']
    start_response('200 OK', [])
    return []
""");
            app.Run(new FakeExchange("POST", "/").Body("unread"));
            app.Exec("""
errors = []
for call in (lambda: kept.read(), lambda: kept.readline(), lambda: list(kept)):
    try:
        call()
    except ValueError as e:
        errors.append(str(e))
""");
            return app.Eval("errors");
        });
        Assert.Equal("['wsgi.input read after the request finished', 'wsgi.input read after the request finished', " +
            "'wsgi.input read after the request finished']", shown);
    }

    [Fact]
    public void Read_BodyStillArriving_WaitsWithTheGilReleased()
    {
        var x = new FakeExchange("POST", "/");
        var body = x.StreamedBody();
        using var started = new ManualResetEventSlim();
        var thread = OnPython.Start(() =>
        {
            using var app = new TestApp("""
def app(environ, start_response):
    f = environ['wsgi.input']
    got = [f.read(5), f.readline(), f.read()]
    start_response('200 OK', [])
    return [ascii(got).encode()]
""");
            started.Set();
            app.Run(x);
        }, out var outcome);
        started.Wait();
        body.Writer.Write(Encoding.ASCII.GetBytes("ab"));
        _ = body.Writer.FlushAsync().AsTask().Result;
        // The app waits for 3 more bytes; meanwhile other Python code runs (the wait released the GIL).
        Assert.Equal("4", OnPython.Run(() =>
        {
            using var globals = Py.Dict();
            Py.Exec("x = 2 + 2", globals);
            return Py.SafeStr(Py.DictGet(globals, "x"));
        }));
        Assert.False(x.IsFinished);
        body.Writer.Write(Encoding.ASCII.GetBytes("cdeline\nre"));
        _ = body.Writer.FlushAsync().AsTask().Result;
        body.Writer.Write(Encoding.ASCII.GetBytes("st"));
        body.Writer.Complete();
        Assert.True(thread.Join(10_000));
        outcome.Get();
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("[b'abcde', b'line\\n', b'rest']", x.BodyText());
    }

    [Fact]
    public void Read_LargeBodyInPieces_EveryByteInOrder()
    {
        var data = new byte[3 * 1024 * 1024 + 17];
        new Random(7).NextBytes(data);
        var x = new FakeExchange("POST", "/");
        var body = x.StreamedBody();
        var writer = Task.Run(async () =>
        {
            for (int at = 0; at < data.Length; at += 10_000)
            {
                await body.Writer.WriteAsync(data.AsMemory(at, Math.Min(10_000, data.Length - at)));
            }
            await body.Writer.CompleteAsync();
        });
        TestApp.Serve("""
import hashlib
def app(environ, start_response):
    f = environ['wsgi.input']
    h = hashlib.sha256()
    n = 0
    while True:
        block = f.read(65536)
        if not block:
            break
        n += len(block)
        h.update(block)
    start_response('200 OK', [])
    return [('%d %s' % (n, h.hexdigest())).encode()]
""", x);
        writer.Wait();
        var expected = $"{data.Length} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data))}";
        Assert.Equal(expected, x.BodyText());
    }

    [Fact]
    public void Read_ClientErrorBeforeHeaders_OSErrorInTheAppAndPlainClientError()
    {
        var x = new FakeExchange("POST", "/").FailingBody("part", 413, "the request body is too large");
        var shown = TestApp.Serve("""
seen = None
def app(environ, start_response):
    global seen
    f = environ['wsgi.input']
    first = f.read(4)
    try:
        f.read()
    except OSError as e:
        seen = '%r %s' % (first, e)
        raise
    start_response('200 OK', [])
    return [b'unreachable']
""", x, "seen");
        Assert.Equal("b'part' error reading the request body: the request body is too large", shown);
        Assert.Equal(BodyError(413, "the request body is too large"), x.Result);
        Assert.Equal(0, x.BytesWritten);
        Assert.Contains("the request body could not be read (413", TestApp.Log.Matching("Information"));
        Assert.Empty(TestApp.Log.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal)));
    }

    [Fact]
    public void Read_MalformedBodyAppRaisesItsOwnError_Plain400NotA500()
    {
        // A framework that turns the OSError into its own exception: the client still gets the 400 it caused.
        var x = new FakeExchange("POST", "/").FailingBody("", 400, "malformed request body: bad chunk size");
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    try:
        environ['wsgi.input'].read()
    except OSError:
        raise ValueError('upload failed')
    return [b'unreachable']
""", x);
        Assert.Equal(BodyError(400, "malformed request body: bad chunk size"), x.Result);
        Assert.Equal(0, x.BytesWritten);
        Assert.Empty(TestApp.Log.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal)));
    }

    [Fact]
    public void Read_BodyOverTheLimitWhileStreaming_Plain413()
    {
        var x = new FakeExchange("POST", "/").FailingBody("0123456789", 413,
            "request body exceeds --limit-request-body 10");
        TestApp.Serve("""
def app(environ, start_response):
    while environ['wsgi.input'].read(4):
        pass
    start_response('200 OK', [])
    return [b'unreachable']
""", x);
        Assert.Equal(BodyError(413, "request body exceeds --limit-request-body 10"), x.Result);
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Read_ClientErrorAfterHeaders_Aborted()
    {
        var x = new FakeExchange("POST", "/").FailingBody("", 400, "malformed chunked body");
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    yield b'streaming'
    environ['wsgi.input'].read()
    yield b'never'
""", x);
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Equal(9, x.BytesWritten);
    }

    [Fact]
    public void Read_ClientErrorCaughtByTheApp_TheAppsAnswer()
    {
        var x = new FakeExchange("POST", "/").FailingBody("", 408, "the client sent the body too slowly");
        TestApp.Serve("""
def app(environ, start_response):
    try:
        environ['wsgi.input'].read()
    except OSError:
        start_response('400 Bad Request', [])
        return [b'bad upload']
    start_response('200 OK', [])
    return [b'ok']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(400, x.Status);
        Assert.Equal("bad upload", x.BodyText());
    }

    [Fact]
    public void Read_AfterAClientError_EmptyWithoutWaiting()
    {
        var x = new FakeExchange("POST", "/").FailingBody("", 400, "bad framing");
        var shown = TestApp.Serve("""
def app(environ, start_response):
    global shown
    f = environ['wsgi.input']
    try:
        f.read()
    except OSError as e:
        first = type(e).__name__
    shown = [first, f.read(), f.readline()]
    start_response('200 OK', [])
    return []
""", x, "shown");
        Assert.Equal("['OSError', b'', b'']", shown);
        Assert.Equal(ExchangeResult.Completed, x.Result);
    }

    /// <summary>The host's refusal for a body error, as found while the app was reading the body.</summary>
    private static ExchangeResult BodyError(int status, string reason) =>
        ExchangeResult.Plain(ServerAnswer.Refusal(status, reason).WhileAppRead());
}
