using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>start_response: status and header validation, exc_info, and what reaches the host's head.</summary>
[Collection(GatewayCollection.Name)]
public sealed class StartResponseTests
{
    /// <summary>
    /// Calls start_response(STATUS, HEADERS) and answers 200 with "ok", or, when the call raises, answers with the
    /// error's "Type: message" after a second, valid call (a failed call must leave start_response usable).
    /// </summary>
    private static string Attempt(string status, string headers)
    {
        var x = new FakeExchange();
        TestApp.Serve($$"""
def app(environ, start_response):
    try:
        start_response({{status}}, {{headers}})
    except Exception as e:
        start_response('200 OK', [('X-Retried', 'yes')])
        return [('%s: %s' % (type(e).__name__, e)).encode('ascii', 'backslashreplace')]
    return [b'ok']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        var body = x.BodyText();
        if (body != "ok")
        {
            // the retry replaced everything the failed call had put into the head
            Assert.Equal(200, x.Status);
            Assert.Equal(new[] { "X-Retried", "Content-Length" }, x.ResponseHeaders.Select(h => h.Name));
        }
        return body;
    }

    [Theory]
    [InlineData("'200'", "ValueError: status must look like '200 OK', got 200")]
    [InlineData("'2000 OK'", "ValueError: status must look like '200 OK', got 2000 OK")]
    [InlineData("'20x OK'", "ValueError: status must look like '200 OK', got 20x OK")]
    [InlineData("'OK 200'", "ValueError: status must look like '200 OK', got OK 200")]
    [InlineData("'099 Low'", "ValueError: status code 99 is not a valid HTTP status")]
    [InlineData("b'200 OK'", "TypeError: status must be str, not bytes")]
    [InlineData("200", "TypeError: status must be str, not int")]
    [InlineData("'200 OK\\r\\nX-Injected: 1'",
        "ValueError: status must not contain control characters (CR, LF, NUL...)")]
    [InlineData("'200 \\u20ac'", "ValueError: status must be latin-1 encodable")]
    public void Call_BadStatus_Raises(string status, string error) => Assert.Equal(error, Attempt(status, "[]"));

    [Theory]
    [InlineData("()", "TypeError: response_headers must be a list, not tuple")]
    [InlineData("{'A': 'b'}", "TypeError: response_headers must be a list, not dict")]
    [InlineData("['A: b']", "TypeError: each response header must be a (name, value) tuple, got 'A: b'")]
    [InlineData("[('A', 'b', 'c')]",
        "TypeError: each response header must be a (name, value) tuple, got ('A', 'b', 'c')")]
    [InlineData("[('X-Num', 5)]", "TypeError: header name and value must be str, got ('X-Num', 5)")]
    [InlineData("[(b'X-B', 'v')]", "TypeError: header name and value must be str, got (b'X-B', 'v')")]
    [InlineData("[('X-A', 'a\\r\\nX-Injected: 1')]",
        "ValueError: header X-A value contains a control character (CR, LF, NUL...)")]
    [InlineData("[('X-A', 'a\\x00')]", "ValueError: header X-A value contains a control character (CR, LF, NUL...)")]
    [InlineData("[('X-A', '\\u20ac')]", "ValueError: header ('X-A', '\\u20ac') is not latin-1 encodable")]
    [InlineData("[('Bad Name', 'v')]", "ValueError: invalid header name 'Bad Name'")]
    [InlineData("[('Bad:Name', 'v')]", "ValueError: invalid header name 'Bad:Name'")]
    [InlineData("[('', 'v')]", "ValueError: invalid header name ''")]
    public void Call_BadHeaders_Raises(string headers, string error) =>
        Assert.Equal(error, Attempt("'200 OK'", headers));

    [Theory]
    [InlineData("Transfer-Encoding", "chunked")]
    [InlineData("Keep-Alive", "timeout=5")]
    [InlineData("upgrade", "websocket")]
    [InlineData("TE", "trailers")]
    [InlineData("Trailer", "X-Sum")]
    [InlineData("Proxy-Authenticate", "Basic")]
    [InlineData("Proxy-Connection", "keep-alive")]
    public void Call_HopByHopHeader_RaisesAssertionError(string name, string value) => Assert.Equal(
        $"AssertionError: hop-by-hop header {name} is not allowed from a WSGI application (PEP 3333)",
        Attempt("'200 OK'", $"[('{name}', '{value}')]"));

    [Theory]
    [InlineData("keep-alive")]
    [InlineData("Upgrade")]
    public void Call_ConnectionOtherThanClose_RaisesAssertionError(string value) => Assert.Equal(
        $"AssertionError: hop-by-hop header Connection: {value} is not allowed from a WSGI application " +
        "(only 'close' is honoured)", Attempt("'200 OK'", $"[('Connection', '{value}')]"));

    [Fact]
    public void Call_ConnectionClose_PassedToTheHostAsClose()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Connection', 'Upgrade, Close')])
    return [b'x']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("close", x.ResponseHeader("Connection"));
    }

    [Theory]
    [InlineData("+10")]
    [InlineData("-1")]
    [InlineData("0x1")]
    [InlineData("1_0")]
    [InlineData("1 0")]
    [InlineData("")]
    [InlineData("1e3")]
    [InlineData("1234567890123456789")]
    public void Call_InvalidContentLength_RaisesValueError(string value) =>
        Assert.Equal($"ValueError: invalid Content-Length {value}",
            Attempt("'200 OK'", $"[('Content-Length', '{value}')]"));

    [Fact]
    public void Call_DuplicateContentLength_RaisesValueError() => Assert.Equal(
        "ValueError: duplicate Content-Length header",
        Attempt("'200 OK'", "[('Content-Length', '3'), ('content-length', '3')]"));

    [Fact]
    public void Call_ContentLengthWithSpaces_TrimmedValueSent()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', ' 3 ')])
    return [b'abc']
""", x);
        Assert.Equal("3", x.ResponseHeader("Content-Length"));
        Assert.Equal("abc", x.BodyText());
    }

    [Fact]
    public void Call_ValidHead_StatusReasonAndHeadersReachTheHostInOrder()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('201 Made It\tHere', [('X-B', '2'), ('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'),
                                          ('X-Empty', ''), ('X-Latin', 'caf\xe9')])
    return [b'']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(201, x.Status);
        Assert.Equal("Made It\tHere", x.Reason);
        Assert.Equal(new[] { ("X-B", "2"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Empty", ""),
            ("X-Latin", "caf\u00e9"), ("Content-Length", "0") }, x.ResponseHeaders);
    }

    [Fact]
    public void Call_WrongArgumentCount_RaisesTypeError()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
def app(environ, start_response):
    global errors
    errors = []
    for args in [('200 OK',), ('200 OK', [], None, None)]:
        try:
            start_response(*args)
        except TypeError as e:
            errors.append(str(e))
    start_response('200 OK', [])
    return []
""", x, "' | '.join(errors)");
        Assert.Equal("start_response() takes 2 or 3 arguments (1 given) | " +
            "start_response() takes 2 or 3 arguments (4 given)", shown);
        Assert.Equal(ExchangeResult.Completed, x.Result);
    }

    [Fact]
    public void Call_ExcInfoAsKeyword_Accepted()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
import sys
def app(environ, start_response):
    start_response('200 OK', [])
    try:
        1 / 0
    except ZeroDivisionError:
        start_response('503 Later', [], exc_info=sys.exc_info())
    return [b'later']
""", x);
        Assert.Equal(503, x.Status);
        Assert.Equal("later", x.BodyText());
    }

    [Fact]
    public void Call_SecondTimeWithoutExcInfo_RaisesAssertionError()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
def app(environ, start_response):
    global error
    start_response('200 OK', [('X-First', '1')])
    try:
        start_response('404 Not Found', [])
    except AssertionError as e:
        error = str(e)
    return [b'first']
""", x, "error");
        Assert.Equal("start_response called a second time without exc_info", shown);
        Assert.Equal(200, x.Status);
        Assert.Equal("1", x.ResponseHeader("X-First"));
        Assert.Equal("first", x.BodyText());
    }

    [Fact]
    public void Call_ExcInfoNone_CountsAsWithoutExcInfo()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
def app(environ, start_response):
    global error
    start_response('200 OK', [])
    try:
        start_response('500 Oops', [], None)
    except AssertionError as e:
        error = type(e).__name__
    return [b'']
""", x, "error");
        Assert.Equal("AssertionError", shown);
        Assert.Equal(200, x.Status);
    }

    [Fact]
    public void Call_ExcInfoBeforeHeadersSent_ReplacesTheHead()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
import sys
def app(environ, start_response):
    start_response('200 OK', [('X-First', '1'), ('Content-Length', '100')])
    try:
        raise KeyError('boom')
    except KeyError:
        start_response('500 Oops', [('X-Second', '2')], sys.exc_info())
    return [b'error page']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(500, x.Status);
        Assert.Equal("Oops", x.Reason);
        Assert.Equal(new[] { ("X-Second", "2"), ("Content-Length", "10") }, x.ResponseHeaders);
        Assert.Equal("error page", x.BodyText());
    }

    [Fact]
    public void Call_ExcInfoAfterHeadersSent_ReraisesTheAppsExceptionAndAborts()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
import sys
reraised = None
def app(environ, start_response):
    start_response('200 OK', [])
    yield b'started'
    try:
        raise KeyError('original')
    except KeyError:
        try:
            start_response('500 Oops', [], sys.exc_info())
        except KeyError as e:
            global reraised
            reraised = repr(e)
            raise
""", x, "reraised");
        Assert.Equal("KeyError('original')", shown);
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Equal(200, x.Status);
        Assert.Equal(1, x.SetStatusCount);
        Assert.Contains("KeyError: 'original'", TestApp.Log.Matching("iterating the response"));
    }

    [Fact]
    public void Call_ExcInfoNotATuple_RaisesTypeError() => Assert.Equal(
        "TypeError: exc_info must be a (type, value, traceback) tuple", Attempt("'200 OK'", "[], (1, 2)"));

    [Fact]
    public void Call_AfterTheRequestFinished_RaisesRuntimeError()
    {
        var shown = OnPython.Run(() =>
        {
            using var app = new TestApp("""
def app(environ, start_response):
    global kept
    kept = start_response
    start_response('200 OK', [])
    return [b'']
""");
            app.Run(new FakeExchange());
            app.Exec("""
try:
    kept('200 OK', [])
    error = None
except RuntimeError as e:
    error = str(e)
""");
            return app.Eval("error");
        });
        Assert.Equal("start_response called after the request finished", shown);
    }

    [Fact]
    public void Call_NeverCalled_PlainInternalError()
    {
        var x = new FakeExchange();
        TestApp.Serve("def app(environ, start_response):\n    return [b'no head']\n", x);
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppFailed), x.Result);
        Assert.Equal(0, x.BytesWritten);
        Assert.Contains("the application returned without calling start_response", TestApp.Log.Matching("Error"));
    }
}
