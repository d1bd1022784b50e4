using BenchmarkDotNet.Attributes;
using SharpWsgi.Gateway;
using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Micro;

/// <summary>
/// Shared setup: the GIL is taken in GlobalSetup and held on the benchmark thread for the whole run
/// (as a SharpWsgi Python thread holds it while it has work), so each operation measures only the gateway code.
/// </summary>
public abstract class PythonBench
{
    private int _gil;
    protected WsgiOptions Options { get; } = new() { Threads = 4 };
    protected WsgiObjects Objects { get; private set; } = null!;
    protected EnvironBuilder Environ { get; private set; } = null!;
    /// <summary>The worker's defaults; the counting sink always flushes at once, so nothing is ever spooled.</summary>
    protected ResponseBuffering Buffering { get; } = new()
    {
        TempDirectory = Path.GetTempPath(),
        SpoolBudget = new ByteBudget(1L << 30),
    };

    protected void SetUpPython()
    {
        _gil = PythonHost.AcquireGil();
        Objects = new WsgiObjects(NullGatewayLog.Instance);
        Environ = new EnvironBuilder(Options, Objects, NullGatewayLog.Instance);
    }

    protected void TearDownPython() => PythonHost.ReleaseGil(_gil);

    /// <summary>Runs Python source and returns one name it defined.</summary>
    protected static PyOwned Define(string source, string name)
    {
        using var globals = Py.Dict();
        Py.Exec(source, globals);
        var value = Py.DictGet(globals, name).NewReference();
        return value.ToOwned();
    }

    protected static PyOwned Own(NewRef r) => r.ToOwned();

    /// <summary>bench/apps, found from the build output or the working directory.</summary>
    protected static string AppsDir()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "bench", "apps");
                if (File.Exists(Path.Combine(candidate, "hello.py"))) return candidate;
                if (dir.Name == "bench" && File.Exists(Path.Combine(dir.FullName, "apps", "hello.py")))
                    return Path.Combine(dir.FullName, "apps");
            }
        }
        throw new DirectoryNotFoundException("bench/apps not found: run from the repository");
    }
}

/// <summary>environ: template copy + per-request keys, for wrk's request (Host only) and a browser's (10 headers).
/// </summary>
[MemoryDiagnoser]
public class EnvironBenchmarks : PythonBench
{
    [Params("wrk", "browser")] public string Request { get; set; } = "wrk";
    private MemoryExchange _x = null!;
    private PyOwned _input = null!;

    [GlobalSetup]
    public void Setup()
    {
        SetUpPython();
        var headers = Request == "wrk" ? MemoryExchange.WrkHeaders : MemoryExchange.BrowserHeaders;
        _x = new MemoryExchange("GET", "/path/to/page?a=1&b=two", headers);
        _input = Own(Objects.InputType.CreateInstance(new InputStream(new RequestLease(_x))));
    }

    [Benchmark]
    public void BuildEnviron()
    {
        var environ = Environ.Build(_x, _input);
        environ.Dispose();
    }

    [GlobalCleanup] public void Cleanup() => TearDownPython();
}

/// <summary>start_response: its ResponseWriter and Python object (as RequestRunner makes them), then the call.
/// </summary>
[MemoryDiagnoser]
public class StartResponseBenchmarks : PythonBench
{
    [Params(1, 5)] public int Headers { get; set; } = 1;
    private MemoryExchange _x = null!;
    private PyOwned _status = null!, _headers = null!;
    private readonly HeaderNames _names = new();

    [GlobalSetup]
    public void Setup()
    {
        SetUpPython();
        _x = new MemoryExchange("GET", "/", MemoryExchange.WrkHeaders);
        _status = Own(Py.Str("200 OK"));
        _headers = Define($$"""
headers = [('Content-Type', 'text/html; charset=utf-8'), ('Content-Length', '1234'), ('Cache-Control', 'no-cache'),
           ('X-Frame-Options', 'DENY'), ('Set-Cookie', 'session=abc; Path=/; HttpOnly')][:{{Headers}}]
""", "headers");
        if (CreateAndCall() != 200 || _x.HeaderCount != Headers)
            throw new InvalidOperationException("start_response did not set the head");
    }

    [Benchmark]
    public int CreateAndCall()
    {
        var writer = new ResponseWriter(new RequestLease(_x), Buffering);
        var state = new StartResponse(writer, Objects, _names);
        var startResponse = Objects.StartResponseType.CreateInstance(state);
        var write = Py.Call(startResponse, _status, _headers);
        write.Dispose();
        startResponse.Dispose();
        state.DisposePython();
        return writer.Status;
    }

    [GlobalCleanup] public void Cleanup() => TearDownPython();
}

/// <summary>
/// Response chunk handoff: one body chunk from a Python bytes object into the response pipe (headers already
/// sent), alone and as the streaming loop does it (next() on a generator, then the write).
/// </summary>
[MemoryDiagnoser]
public class ResponseChunkBenchmarks : PythonBench
{
    [Params(13, 10240)] public int ChunkSize { get; set; } = 13;
    [Params(false, true)] public bool Flush { get; set; }
    private MemoryExchange _x = null!;
    private ResponseWriter _writer = null!;
    private PyOwned _chunk = null!, _generator = null!;

    [GlobalSetup]
    public void Setup()
    {
        SetUpPython();
        _x = new MemoryExchange("GET", "/", MemoryExchange.WrkHeaders);
        _writer = new ResponseWriter(new RequestLease(_x), Buffering);
        var state = new StartResponse(_writer, Objects, new HeaderNames());
        using (var sr = Objects.StartResponseType.CreateInstance(state))
        using (var status = Py.Str("200 OK"))
        {
            using var headers = Define("headers = [('Content-Type', 'application/octet-stream')]", "headers");
            using var write = Py.Call(sr, status, headers);
        }
        state.DisposePython();
        _writer.SendHeaders();
        _chunk = Own(Py.Bytes(new byte[ChunkSize]));
        using var make = Define($$"""
def make():
    chunk = b'x' * {{ChunkSize}}
    while True:
        yield chunk
""", "make");
        _generator = Own(Py.Call(make));
    }

    [Benchmark]
    public void WriteChunk() => _writer.Write(Py.BytesSpan(_chunk), Flush);

    [Benchmark]
    public void NextAndWriteChunk()
    {
        Py.IterNext(_generator, out var chunk);
        _writer.Write(Py.BytesSpan(chunk), Flush);
        chunk.Dispose();
    }

    [GlobalCleanup] public void Cleanup() => TearDownPython();
}

/// <summary>wsgi.input: a 10 KB body read at once, in 1 KB reads, line by line (100 lines), and read() called from
/// Python.</summary>
[MemoryDiagnoser]
public class InputBenchmarks : PythonBench
{
    private static readonly byte[] Body = Enumerable.Range(0, 10240).Select(i => (byte)i).ToArray();
    private static readonly byte[] Lines = Enumerable.Range(0, 100)
        .SelectMany(i => System.Text.Encoding.ASCII.GetBytes($"line {i:000} ".PadRight(99, '.') + "\n")).ToArray();
    private MemoryExchange _x = null!, _lines = null!;
    private PyOwned _readAll = null!;

    [GlobalSetup]
    public void Setup()
    {
        SetUpPython();
        _x = new MemoryExchange("POST", "/", MemoryExchange.WrkHeaders, Body);
        _lines = new MemoryExchange("POST", "/", MemoryExchange.WrkHeaders, Lines);
        _readAll = Define("def read_all(f):\n    return f.read()\n", "read_all");
        if (ReadAll() != Body.Length || ReadChunks1K() != Body.Length || ReadLines() != 100 ||
            ReadAllFromPython() != Body.Length)
            throw new InvalidOperationException("wsgi.input returned the wrong amount of data");
    }

    [Benchmark]
    public int ReadAll()
    {
        _x.Reset();
        var input = new InputStream(new RequestLease(_x));
        using var data = input.Read(-1);
        input.Finish();
        return Py.BytesSpan(data).Length;
    }

    [Benchmark]
    public int ReadChunks1K()
    {
        _x.Reset();
        var input = new InputStream(new RequestLease(_x));
        int total = 0, n;
        do
        {
            using var data = input.Read(1024);
            n = Py.BytesSpan(data).Length;
            total += n;
        } while (n > 0);
        input.Finish();
        return total;
    }

    [Benchmark]
    public int ReadLines()
    {
        _lines.Reset();
        var input = new InputStream(new RequestLease(_lines));
        int lines = 0;
        while (true)
        {
            using var line = input.ReadLine(-1);
            if (Py.BytesSpan(line).Length == 0) break;
            lines++;
        }
        input.Finish();
        return lines;
    }

    [Benchmark]
    public int ReadAllFromPython()
    {
        _x.Reset();
        var input = new InputStream(new RequestLease(_x));
        var obj = Objects.InputType.CreateInstance(input);
        using var data = Py.Call(_readAll, obj);
        obj.Dispose();
        input.Finish();
        return Py.BytesSpan(data).Length;
    }

    [GlobalCleanup] public void Cleanup() => TearDownPython();
}

/// <summary>
/// A whole request through the gateway (RequestRunner.Run: environ, start_response, the app, the body into the
/// pipe, close) for the suite's apps, next to PythonOnly: the same app called from Python with a copied
/// environ and a no-op start_response, the least any server must do. The difference is the bridge's cost.
/// </summary>
[MemoryDiagnoser]
public class RequestBenchmarks : PythonBench
{
    [Params("hello", "static10k", "echo10k", "stream100")] public string App { get; set; } = "hello";
    private static readonly byte[] EchoBody = Enumerable.Range(0, 10240).Select(i => (byte)i).ToArray();
    private MemoryExchange _x = null!;
    private RequestRunner _runner = null!;
    private PyOwned _pythonOnly = null!;

    [GlobalSetup]
    public void Setup()
    {
        SetUpPython();
        var app = AppLoader.Load(Path.Combine(AppsDir(), App + ".py"), "micro");
        var timeoutClass = Define("class RequestTimeout(BaseException):\n    pass\n", "RequestTimeout");
        _runner = new RequestRunner(app, Objects, Environ, NullGatewayLog.Instance, Options, timeoutClass,
            Buffering);
        bool post = App == "echo10k";
        _x = new MemoryExchange(post ? "POST" : "GET", "/", MemoryExchange.WrkHeaders, post ? EchoBody : null);
        Run();
        _x.Expect(200, App switch { "hello" => 13, "stream100" => 10000, _ => 10240 });

        // PythonOnly: environ as the gateway builds it, copied per call; wsgi.input a fresh BytesIO.
        using var input = Objects.InputType.CreateInstance(new InputStream(new RequestLease(_x)));
        using var environ = Environ.Build(_x, input);
        using var body = Py.Bytes(post ? EchoBody : Array.Empty<byte>());
        using var make = Define("""
import io
def make(app, environ, body):
    def start_response(status, headers, exc_info=None):
        return None
    def run():
        env = environ.copy()
        env['wsgi.input'] = io.BytesIO(body)
        result = app(env, start_response)
        n = 0
        try:
            for chunk in result:
                n += len(chunk)
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                close()
        return n
    return run
""", "make");
        using var args = Py.Tuple(app.Borrow(), environ, body);
        _pythonOnly = Own(Py.CallArgs(make, args));
    }

    [Benchmark]
    public void Run()
    {
        _x.Reset();
        _runner.Run(new RequestLease(_x));
    }

    [Benchmark]
    public void PythonOnly()
    {
        var n = Py.Call(_pythonOnly);
        n.Dispose();
    }

    [GlobalCleanup] public void Cleanup() => TearDownPython();
}

/// <summary>A gateway log that drops everything (the benchmarks measure the gateway, not logging).</summary>
public sealed class NullGatewayLog : IGatewayLog
{
    public static readonly NullGatewayLog Instance = new();
    public bool IsEnabled(GatewayLogLevel level) => false;
    public void Write(GatewayLogLevel level, string message) { }
}
