using System.Text;
using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>wsgi.file_wrapper: a real file is sent by the drain without Python; other file-likes iterate.</summary>
[Collection(GatewayCollection.Name)]
public sealed class FileWrapperTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-gateway-file-{Guid.NewGuid():N}");
    private readonly byte[] _data;

    public FileWrapperTests()
    {
        _data = new byte[200_000];
        new Random(3).NextBytes(_data);
        File.WriteAllBytes(_path, _data);
    }

    public void Dispose() => File.Delete(_path);

    /// <summary>An app serving the temp file through a FileIO subclass that counts Python-side reads.</summary>
    private string FileApp(string headers = "[]", string before = "") => $$"""
import io
reads = 0
class CountingFile(io.FileIO):
    def read(self, *args):
        global reads
        reads += 1
        return super().read(*args)
def app(environ, start_response):
    global kept
    write = start_response('200 OK', {{headers}})
    {{(before.Length == 0 ? "pass" : before)}}
    kept = CountingFile({{PyPath}}, 'rb')
    return environ['wsgi.file_wrapper'](kept, 4096)
""";

    private string PyPath => "'" + _path + "'";

    private static byte[] Body(FakeExchange x)
    {
        var read = x.ReadBodyAsync();
        Assert.True(read.Wait(10_000));
        return read.Result;
    }

    [Fact]
    public void Run_RealFile_SentByTheDrainWithContentLengthAndClosed()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve(FileApp(), x, "(reads, kept.closed)");
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal("(0, True)", shown); // never read by Python; closed through the wrapper's close()
        Assert.Equal(_data.Length.ToString(), x.ResponseHeader("Content-Length"));
        Assert.Equal(_data, Body(x));
    }

    [Fact]
    public void Run_RealFileSeeked_SentFromTheFilePosition()
    {
        var x = new FakeExchange();
        var app = FileApp().Replace("    return environ", "    kept.seek(1000)\n    return environ");
        TestApp.Serve(app, x);
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal((_data.Length - 1000).ToString(), x.ResponseHeader("Content-Length"));
        Assert.Equal(_data[1000..], Body(x));
    }

    [Fact]
    public void Run_RealFileLongerThanContentLength_OnlyTheDeclaredBytes()
    {
        var x = new FakeExchange();
        TestApp.Serve(FileApp("[('Content-Length', '5000')]"), x);
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal("5000", x.ResponseHeader("Content-Length"));
        Assert.Equal(_data[..5000], Body(x));
    }

    [Fact]
    public void Run_RealFileShorterThanContentLength_Aborted()
    {
        var x = new FakeExchange();
        TestApp.Serve(FileApp($"[('Content-Length', '{_data.Length + 1}')]"), x);
        Assert.Equal(ExchangeResult.Aborted, x.WaitFinished());
    }

    [Fact]
    public void Run_RealFileAfterWrite_BothInOrderWithoutContentLength()
    {
        var x = new FakeExchange();
        TestApp.Serve(FileApp(before: "write(b'prefix:')"), x);
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal(Encoding.ASCII.GetBytes("prefix:").Concat(_data).ToArray(), Body(x));
    }

    [Fact]
    public void Run_RealFileForHead_NoBodyButItsLength()
    {
        var x = new FakeExchange("HEAD", "/");
        TestApp.Serve(FileApp(), x);
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal(_data.Length.ToString(), x.ResponseHeader("Content-Length"));
        Assert.Equal(0, x.BytesWritten);
    }

    [Fact]
    public void Run_RealFileToASlowClient_FinishedOnlyAfterTheClientDrains()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient(4096));
        TestApp.Serve(FileApp(), x);
        Assert.False(x.IsFinished);
        var body = Body(x);
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal(_data, body);
    }

    [Fact]
    public void Run_BytesIO_IteratedInBlocksAndClosed()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
import io
def app(environ, start_response):
    global kept
    start_response('200 OK', [])
    kept = io.BytesIO(b'0123456789' * 1000)
    return environ['wsgi.file_wrapper'](kept, 3000)
""", x, "kept.closed");
        Assert.Equal("True", shown);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Null(x.ResponseHeader("Content-Length"));
        Assert.Equal(string.Concat(Enumerable.Repeat("0123456789", 1000)), x.BodyText());
    }

    [Fact]
    public void Run_FileLikeWithoutFileno_IteratedWithItsBlockSize()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
sizes = []
class Source:
    def __init__(self):
        self.left = 10
    def read(self, n):
        sizes.append(n)
        take, self.left = min(n, self.left), self.left - min(n, self.left)
        return b'z' * take
def app(environ, start_response):
    start_response('200 OK', [])
    return environ['wsgi.file_wrapper'](Source(), blksize=4)
""", x, "sizes");
        Assert.Equal("[4, 4, 4, 4]", shown);
        Assert.Equal("zzzzzzzzzz", x.BodyText());
    }

    [Fact]
    public void FileWrapper_BadArguments_Raise()
    {
        var x = new FakeExchange();
        var shown = TestApp.Serve("""
import io
errors = []
def app(environ, start_response):
    fw = environ['wsgi.file_wrapper']
    for args in [(), (io.BytesIO(), 0), (io.BytesIO(), 'big')]:
        try:
            fw(*args)
        except (TypeError, ValueError) as e:
            errors.append(type(e).__name__)
    start_response('200 OK', [])
    return []
""", x, "errors");
        Assert.Equal("['TypeError', 'ValueError', 'TypeError']", shown);
    }
}
