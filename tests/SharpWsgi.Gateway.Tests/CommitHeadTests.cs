using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>
/// The head as the host sees it when the gateway commits it (status, length, body allowed, live stream), and a host
/// that answers <see cref="BodyDisposition.Discard"/> (it sends a file in the body's place, X-Accel-Redirect): the
/// app's body, whatever its form, never reaches the pipe, no length rule fires against it, and the request still
/// completes with close() called.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class CommitHeadTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-commit-{Guid.NewGuid():N}");

    public CommitHeadTests() => File.WriteAllBytes(_path, new byte[100_000]);

    public void Dispose() => File.Delete(_path);

    private static FakeExchange Discarding(string method = "GET") =>
        new(method, "/") { Disposition = BodyDisposition.Discard };

    [Fact]
    public void CommitHead_SingleItemList_ReportsTheLengthTheGatewayAdded()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('201 Created', [('Content-Type', 'application/json')])
    return [b'{"id": 7}']
""", x);
        Assert.Equal(new ResponseHead(201, 9, BodyAllowed: true, LiveStream: false), x.CommittedHead);
        Assert.Equal(1, x.CommitCount);
    }

    [Fact]
    public void CommitHead_GeneratorLiveStream_ReportsUnknownLengthAndLive()
    {
        var x = new FakeExchange();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/event-stream')])
    yield b'data: 1\n\n'
""", x);
        Assert.Equal(new ResponseHead(200, -1, BodyAllowed: true, LiveStream: true), x.CommittedHead);
    }

    [Fact]
    public void CommitHead_Head_ReportsNoBodyAllowed()
    {
        var x = new FakeExchange("HEAD", "/");
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '5')])
    return [b'hello']
""", x);
        Assert.Equal(new ResponseHead(200, 5, BodyAllowed: false, LiveStream: false), x.CommittedHead);
    }

    [Fact]
    public void Discard_ListBody_NothingWrittenNothingCounted()
    {
        var x = Discarding();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('X-Accel-Redirect', '/protected/a.pdf')])
    return [b'ignored body']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(0, x.BytesWritten);
        Assert.Equal(0, x.BodyBytes);
    }

    [Fact]
    public void Discard_ContentLengthOfTheFileWithEmptyBody_NoShortBodyAbort()
    {
        // Apps written for Apache's mod_xsendfile often say the file's length and send nothing.
        var x = Discarding();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('X-Sendfile', '/srv/a.pdf'), ('Content-Length', '123456')])
    return [b'']
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("", TestApp.Log.Matching("Content-Length"));
    }

    [Fact]
    public void Discard_BodyLongerThanContentLength_NoOverrunClose()
    {
        var x = Discarding();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', '2')])
    yield b'more than two'
    yield b'and more'
""", x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Discard_WriteCallableAndGenerator_DroppedAndIterableClosed()
    {
        var x = Discarding();
        var shown = TestApp.Serve("""
closed = False
class Body:
    def __iter__(self):
        yield b'a' * 100000
        yield b'b' * 100000
    def close(self):
        global closed
        closed = True
def app(environ, start_response):
    write = start_response('200 OK', [])
    write(b'x' * 200000)
    return Body()
""", x, "closed");
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("True", shown);
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Discard_FileWrapper_FileNotSentAndClosed()
    {
        var x = Discarding();
        var shown = TestApp.Serve($$"""
def app(environ, start_response):
    global kept
    start_response('200 OK', [])
    kept = open('{{_path}}', 'rb')
    return environ['wsgi.file_wrapper'](kept, 4096)
""", x, "kept.closed");
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal("True", shown);
        Assert.Equal(0, x.BytesWritten);
    }
}
