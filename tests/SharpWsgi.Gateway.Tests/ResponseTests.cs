using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>The response rules (ResponseWriter through RequestRunner): lengths, bodyless answers, errors,
/// close().</summary>
[Collection(GatewayCollection.Name)]
public sealed class ResponseTests
{
    private static FakeExchange Serve(string source, string method = "GET")
    {
        var x = new FakeExchange(method, "/");
        TestApp.Serve(source, x);
        return x;
    }

    [Fact]
    public void Run_SingleItemList_ContentLengthAdded()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello world']
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("11", x.ResponseHeader("Content-Length"));
        Assert.Equal("hello world", x.BodyText());
    }

    [Fact]
    public void Run_SingleItemTuple_ContentLengthAdded()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    return (b'abc',)
""");
        Assert.Equal("3", x.ResponseHeader("Content-Length"));
        Assert.Equal("abc", x.BodyText());
    }

    [Fact]
    public void Run_EmptyList_ContentLengthZero()
    {
        var x = Serve("def app(environ, start_response):\n    start_response('200 OK', [])\n    return []\n");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("0", x.ResponseHeader("Content-Length"));
        Assert.Equal("", x.BodyText());
    }

    [Fact]
    public void Run_MultiItemList_NoContentLength()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    return [b'ab', b'', b'cd']
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal("abcd", x.BodyText());
    }

    [Fact]
    public void Run_MultiChunkGenerator_NoContentLengthAndChunksInOrder()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    for i in range(5):
        yield b'%d,' % i
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal("0,1,2,3,4,", x.BodyText());
    }

    [Fact]
    public void Run_EmptyGenerator_ContentLengthZero()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('204 No Content' if False else '200 OK', [])
    return iter([])
""");
        Assert.Equal("0", x.ResponseHeader("Content-Length"));
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Run_AppsOwnContentLength_KeptAndBodySent()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '4')])
    yield b'ab'
    yield b'cd'
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("4", x.ResponseHeader("Content-Length"));
        Assert.Equal("abcd", x.BodyText());
    }

    [Fact]
    public void Run_Head_BodySuppressedAndLengthOfTheBodyKept()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'twelve bytes']
""", "HEAD");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("12", x.ResponseHeader("Content-Length"));
        Assert.Equal(0, x.BytesWritten);
        Assert.Equal("", x.BodyText());
    }

    [Fact]
    public void Run_HeadWithDeclaredLengthAndNoBody_CompletedNotShort()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '1000')])
    return []
""", "HEAD");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("1000", x.ResponseHeader("Content-Length"));
    }

    [Theory]
    [InlineData("204 No Content")]
    [InlineData("304 Not Modified")]
    public void Run_BodylessStatus_BodyDroppedAndNoContentLengthAdded(string status)
    {
        var x = Serve($$"""
def app(environ, start_response):
    start_response('{{status}}', [('ETag', '"v1"')])
    return [b'should not be sent']
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal("\"v1\"", x.ResponseHeader("ETag"));
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Run_204WithAppContentLength_LengthDroppedNotEnforced()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('204 No Content', [('Content-Length', '5')])
    return [b'hello']
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length")); // RFC 9110 8.6: never on a 204; Kestrel failed it as short
        Assert.Equal(0, x.BytesWritten);
    }

    [Theory]
    [InlineData("[('Content-Length', '5')]", "[b'hello']")]
    [InlineData("[]", "[b'hello']")]
    [InlineData("[]", "[]")]
    public void Run_205_BodyDroppedAndContentLengthZero(string headers, string body)
    {
        var x = Serve($$"""
def app(environ, start_response):
    start_response('205 Reset Content', {{headers}})
    return {{body}}
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("0", x.ResponseHeader("Content-Length")); // RFC 9110 15.3.6; Kestrel dropped the connection
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Run_ConnectTunnel2xx_ContentLengthNotFramed()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 Connection Established', [('Content-Length', '0')])
    return [b'tunnel bytes']
""", "CONNECT");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal("tunnel bytes", x.BodyText());
    }

    [Fact]
    public void Run_BodyLongerThanContentLength_TruncatedAndConnectionClosed()
    {
        var x = Serve("""
closed = []
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '5')])
    try:
        yield b'abc'
        yield b'def'
        yield b'never'
    finally:
        closed.append(True)
""");
        Assert.Equal(ExchangeResult.CompletedThenClose, x.Result);
        Assert.Equal("abcde", x.BodyText());
        Assert.Contains("more than its Content-Length (5)", TestApp.Log.Matching("Warning"));
    }

    [Fact]
    public void Run_ListLongerThanContentLength_Truncated()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '2')])
    return [b'abc', b'def']
""");
        Assert.Equal(ExchangeResult.CompletedThenClose, x.Result);
        Assert.Equal("ab", x.BodyText());
    }

    [Fact]
    public void Run_BodyShorterThanContentLength_Aborted()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '10')])
    yield b'abc'
""");
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Equal(3, x.BytesWritten);
        Assert.Contains("sent 3 bytes of its Content-Length 10", TestApp.Log.Matching("Error"));
    }

    [Fact]
    public void Run_WriteBeforeIterable_WrittenBytesFirstAndNoContentLength()
    {
        var x = Serve("""
def app(environ, start_response):
    write = start_response('200 OK', [])
    write(b'one,')
    write(b'')
    write(b'two,')
    return [b'three']
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal("one,two,three", x.BodyText());
    }

    [Fact]
    public void Run_WriteWithContentLength_Enforced()
    {
        var x = Serve("""
def app(environ, start_response):
    write = start_response('200 OK', [('Content-Length', '3')])
    write(b'ab')
    return [b'cd']
""");
        Assert.Equal(ExchangeResult.CompletedThenClose, x.Result);
        Assert.Equal("abc", x.BodyText());
    }

    [Fact]
    public void Write_NotBytesOrBeforeHead_Raises()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
errors = []
def app(environ, start_response):
    write = start_response('200 OK', [])
    for data in ['text', bytearray(b'x'), None]:
        try:
            write(data)
        except TypeError as e:
            errors.append(str(e))
    try:
        write(b'a', b'b')
    except TypeError as e:
        errors.append(str(e))
    return [b'ok']
""", x, "' | '.join(errors)");
        Assert.Equal("write() argument must be bytes, not str | write() argument must be bytes, not bytearray | " +
            "write() argument must be bytes, not NoneType | write() takes exactly one argument", shown);
        Assert.Equal("ok", x.BodyText());
    }

    [Fact]
    public void Write_AfterAFailedStartResponse_RaisesAssertionError()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
def app(environ, start_response):
    global error
    write = start_response('200 OK', [])
    try:
        start_response('200 OK', [('Bad Name', 'x')], (None, None, None))
    except ValueError:
        pass
    try:
        write(b'x')
    except AssertionError as e:
        error = str(e)
    start_response('200 OK', [], (None, None, None))
    return []
""", x, "error");
        Assert.Equal("write() called before start_response", shown);
        Assert.Equal(ExchangeResult.Completed, x.Result);
    }

    [Fact]
    public void Write_AfterTheRequestFinished_RaisesRuntimeError()
    {
        var shown = OnPython.Run(() =>
        {
            using var app = new TestApp("""
def app(environ, start_response):
    global kept
    kept = start_response('200 OK', [])
    return []
""");
            app.Run(new FakeExchange());
            app.Exec("try:\n    kept(b'late')\n    error = None\nexcept RuntimeError as e:\n    error = str(e)\n");
            return app.Eval("error");
        });
        Assert.Equal("write() called after the request finished", shown);
    }

    [Fact]
    public void Run_LazyStartResponseInGenerator_HeadFromTheFirstNext()
    {
        var x = Serve("""
def app(environ, start_response):
    yield b''
    start_response('202 Accepted', [('X-Lazy', 'yes')])
    yield b'late head'
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(202, x.Status);
        Assert.Equal("yes", x.ResponseHeader("X-Lazy"));
        Assert.Equal("late head", x.BodyText());
    }

    [Fact]
    public void Run_ExceptionBeforeHeaders_PlainInternalErrorAndTracebackLogged()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [('X-Partial', '1')])
    raise LookupError('no such thing')
""");
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppFailed), x.Result);
        Assert.Equal(0, x.BytesWritten);
        var logged = TestApp.Log.Matching("calling the application");
        Assert.Contains("Error handling request GET / (calling the application)", logged);
        Assert.Contains("LookupError: no such thing", logged);
    }

    [Fact]
    public void Run_ExceptionInGeneratorBeforeFirstChunk_PlainInternalError()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    raise ValueError('before any byte')
    yield b'never'
""");
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppFailed), x.Result);
        Assert.Contains("ValueError: before any byte", TestApp.Log.Matching("iterating the response"));
    }

    [Fact]
    public void Run_ExceptionAfterHeaders_Aborted()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    yield b'partial'
    raise ValueError('midway')
""");
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Equal(7, x.BytesWritten);
        Assert.Contains("ValueError: midway", TestApp.Log.Matching("iterating the response"));
    }

    [Fact]
    public void Run_NonBytesItemInList_PlainInternalError()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    return [b'ok', 'text']
""");
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppFailed), x.Result);
        Assert.Equal(0, x.BytesWritten);
        Assert.Contains("TypeError: the application's iterable must yield bytes, not str",
            TestApp.Log.Matching("sending the response"));
    }

    [Fact]
    public void Run_NonBytesChunkAfterHeaders_Aborted()
    {
        var x = Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    yield b'ok'
    yield 42
""");
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Contains("must yield bytes, not int", TestApp.Log.Matching("sending the response"));
    }

    [Fact]
    public void Run_AppNotCallable_PlainInternalError()
    {
        var x = Serve("app = 42\n");
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppFailed), x.Result);
        Assert.Contains("TypeError", TestApp.Log.Matching("calling the application"));
    }

    [Fact]
    public void Run_ClientGoneBeforeTheBody_Aborted()
    {
        var x = new FakeExchange();
        x.DisconnectClient();
        var closes = TestApp.Serve("""
closes = 0
class Body:
    def __iter__(self):
        yield b'a'
        yield b'b'
    def close(self):
        global closes
        closes += 1
def app(environ, start_response):
    start_response('200 OK', [])
    return Body()
""", x, "closes");
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Equal("1", closes);
    }

    /// <summary>The iterable's close() is called exactly once whatever happens.</summary>
    [Theory]
    [InlineData("ok", "Completed", "abc")]
    [InlineData("raise_in_iter", "Plain", "")]
    [InlineData("raise_midway", "Aborted", "a")]
    [InlineData("not_bytes", "Aborted", "a")]
    [InlineData("overrun", "CompletedThenClose", "ab")]
    [InlineData("short", "Aborted", "abc")]
    [InlineData("no_start_response", "Plain", "")]
    [InlineData("exc_info_after_headers", "Aborted", "a")]
    public void Run_AnyPath_CloseCalledExactlyOnce(string mode, string outcome, string body)
    {
        var x = new FakeExchange();
        var closes = TestApp.Serve($$"""
closes = 0
mode = '{{mode}}'
class Body:
    def __iter__(self):
        if mode == 'raise_in_iter':
            raise RuntimeError('no iterator')
        yield b'a'
        if mode == 'raise_midway':
            raise RuntimeError('midway')
        if mode == 'not_bytes':
            yield 'text'
        if mode == 'exc_info_after_headers':
            import sys
            try:
                raise KeyError('k')
            except KeyError:
                self.start_response('500 Oops', [], sys.exc_info())
        yield b'b'
        yield b'c'
    def close(self):
        global closes
        closes += 1
def app(environ, start_response):
    headers = {'overrun': [('Content-Length', '2')], 'short': [('Content-Length', '9')]}.get(mode, [])
    if mode != 'no_start_response':
        start_response('200 OK', headers)
    body = Body()
    body.start_response = start_response
    return body
""", x, "closes");
        Assert.Equal("1", closes);
        Assert.Equal(outcome, x.Result.Outcome switch
        {
            ExchangeOutcome.PlainAnswer => "Plain",
            var o => o.ToString(),
        });
        Assert.Equal(body, x.BodyText());
    }

    [Fact]
    public void Run_CloseRaises_LoggedAndResponseStillComplete()
    {
        var x = Serve("""
class Body:
    def __iter__(self):
        yield b'done'
    def close(self):
        raise OSError('close failed')
def app(environ, start_response):
    start_response('200 OK', [])
    return Body()
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("done", x.BodyText());
        Assert.Contains("OSError: close failed", TestApp.Log.Matching("Error closing the response iterable of GET /"));
    }

    [Fact]
    public void Run_AppCallRaises_NothingToClose()
    {
        var x = Serve("""
def app(environ, start_response):
    raise MemoryError('big')
""");
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppFailed), x.Result);
        Assert.Equal(1, x.FinishCount);
    }

    [Fact]
    public void Run_ErrorsStream_LinesReachTheLog()
    {
        var x = Serve("""
def app(environ, start_response):
    err = environ['wsgi.errors']
    err.write('first line\nsecond ')
    err.writelines(['part\n', 'tail'])
    err.flush()
    start_response('200 OK', [])
    return []
""");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(new[] { "Error: first line", "Error: second part", "Error: tail" },
            TestApp.Log.Lines.Where(l => l.StartsWith("Error: ", StringComparison.Ordinal)));
    }

    [Fact]
    public void Run_EveryRequest_FinishCalledExactlyOnce()
    {
        var x = Serve("def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'x']\n");
        Assert.Equal(1, x.FinishCount);
        Assert.Equal(0, x.AbortCount);
        Assert.Equal(1, x.SetStatusCount);
    }
}
