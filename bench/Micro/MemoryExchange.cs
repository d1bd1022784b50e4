using System.Buffers;
using System.IO.Pipelines;
using SharpWsgi.Gateway;

namespace SharpWsgi.Micro;

/// <summary>
/// An in-memory request for the gateway: a fixed request line and headers, a body served from a byte array,
/// and a response sink that counts bytes. <see cref="Reset"/> before each request.
/// </summary>
public sealed class MemoryExchange : WsgiExchange
{
    /// <summary>What wrk sends: just Host.</summary>
    public static readonly KeyValuePair<string, string>[] WrkHeaders =
    {
        new("Host", "127.0.0.1:8000"),
    };

    /// <summary>A browser-like request: 10 headers, a cookie, an Accept list.</summary>
    public static readonly KeyValuePair<string, string>[] BrowserHeaders =
    {
        new("Host", "example.com"),
        new("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        new("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        new("Accept-Language", "en-US,en;q=0.5"),
        new("Accept-Encoding", "gzip, deflate, br"),
        new("Connection", "keep-alive"),
        new("Cookie", "session=0123456789abcdef0123456789abcdef; theme=dark"),
        new("Upgrade-Insecure-Requests", "1"),
        new("Sec-Fetch-Dest", "document"),
        new("Sec-Fetch-Mode", "navigate"),
    };

    private readonly KeyValuePair<string, string>[] _headers;
    private readonly byte[] _body;
    private PipeReader? _reader;

    public MemoryExchange(string method, string target, KeyValuePair<string, string>[] headers, byte[]? body = null)
    {
        Method = method;
        RawTarget = target;
        _body = body ?? Array.Empty<byte>();
        if (_body.Length > 0)
        {
            var all = headers.ToList();
            all.Add(new("Content-Type", "application/octet-stream"));
            all.Add(new("Content-Length", _body.Length.ToString()));
            headers = all.ToArray();
        }
        _headers = headers;
    }

    public override string Method { get; }
    public override string RawTarget { get; }
    public override string Protocol => "HTTP/1.1";
    public override string Scheme => "http";
    public override string RemoteAddress => "127.0.0.1";
    public override int RemotePort => 50123;
    public override string LocalAddress => "127.0.0.1";
    public override int LocalPort => 8000;
    public override IEnumerable<KeyValuePair<string, string>> RequestHeaders => _headers;
    public override PipeReader RequestBody => _reader ??= PipeReader.Create(new ReadOnlySequence<byte>(_body));
    public override PipeWriter ResponseBody => Sink;

    public CountingWriter Sink { get; } = new();
    public int Status { get; private set; }
    public int HeaderCount { get; private set; }
    public ExchangeOutcome? Outcome { get; private set; }

    /// <summary>Ready for the next request: body from the start, empty response.</summary>
    public void Reset()
    {
        _reader = null;
        Status = 0;
        HeaderCount = 0;
        Outcome = null;
        Sink.Written = 0;
    }

    public override void SetStatus(int status, string? reasonPhrase) => Status = status;
    public override void ClearResponseHeaders() => HeaderCount = 0;
    public override void AddResponseHeader(string name, string value) => HeaderCount++;
    public override void CancelPendingIo() { }
    public override void AbortConnection() { }
    public override void Finish(ExchangeResult result) => Outcome = result.Outcome;

    /// <summary>Checks one request's result (used once in each benchmark's setup).</summary>
    public void Expect(int status, long bytes)
    {
        if (Status != status || Sink.Written != bytes || Outcome != ExchangeOutcome.Completed)
            throw new InvalidOperationException($"{Method} {RawTarget}: expected {status} with {bytes} body bytes, " +
                $"got {Status} with {Sink.Written} ({Outcome})");
    }
}

/// <summary>A response pipe that keeps nothing: one reusable buffer, counts what was advanced, flushes at once.
/// </summary>
public sealed class CountingWriter : PipeWriter
{
    private byte[] _buffer = new byte[64 * 1024];
    public long Written;
    public int Flushes;

    public override void Advance(int bytes) => Written += bytes;
    public override Memory<byte> GetMemory(int sizeHint = 0) => Buffer(sizeHint);
    public override Span<byte> GetSpan(int sizeHint = 0) => Buffer(sizeHint).Span;

    private Memory<byte> Buffer(int sizeHint)
    {
        if (sizeHint > _buffer.Length) _buffer = new byte[sizeHint];
        return _buffer;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        Flushes++;
        return new ValueTask<FlushResult>(new FlushResult(false, false));
    }

    public override void CancelPendingFlush() { }
    public override void Complete(Exception? exception = null) { }
}
