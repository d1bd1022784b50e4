using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace SharpWsgi.Gateway.Tests.Infrastructure;

/// <summary>
/// The fake host: one request as a test configures it, and a response sink that records what the gateway did.
/// The response body is a real <see cref="Pipe"/> whose reader belongs to the test: by default it never pauses the
/// writer (a client that takes everything at once); <see cref="SlowClient"/> makes FlushAsync stay pending until the
/// test reads (a client that does not read). Like Kestrel, the response's status and headers are frozen once body
/// bytes reach the pipe, and the host completes the pipe when it is told to <see cref="Finish"/>.
/// <see cref="GatewayWaiting"/> tells a test when the gateway is blocked on the host (a body read or a flush that
/// did not complete at once), so it can act on a waiting request without guessing how long the app takes to get there.
/// </summary>
public sealed class FakeExchange : WsgiExchange
{
    private readonly List<KeyValuePair<string, string>> _requestHeaders = new();
    private readonly List<(string Name, string Value)> _responseHeaders = new();
    private readonly TaskCompletionSource<ExchangeResult> _finished =
        new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _gatewayWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly RecordingWriter _writer;
    private PipeReader? _requestBody;
    private int _finishCount, _abortCount, _cancelCount;

    public FakeExchange(string method = "GET", string target = "/", PipeOptions? response = null)
    {
        Method = method;
        RawTarget = target;
        ResponsePipe = new Pipe(response ?? new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0,
            useSynchronizationContext: false));
        _writer = new RecordingWriter(ResponsePipe.Writer, this);
    }

    /// <summary>A response pipe that holds only a few bytes: FlushAsync stays pending until the test reads.</summary>
    public static PipeOptions SlowClient(int pauseAt = 16) =>
        new(pauseWriterThreshold: pauseAt, resumeWriterThreshold: pauseAt / 2, minimumSegmentSize: 16,
            useSynchronizationContext: false);

    // ---- the request ----

    public override string Method { get; }
    public string? RequestIdValue { get; set; }
    public override string? RequestId => RequestIdValue;
    public override string RawTarget { get; }
    public string ProtocolValue { get; set; } = "HTTP/1.1";
    public override string Protocol => ProtocolValue;
    public string SchemeValue { get; set; } = "http";
    public override string Scheme => SchemeValue;
    public override string RemoteAddress => "192.0.2.7";
    public override int RemotePort => 50123;
    public override string LocalAddress => "127.0.0.1";
    public override int LocalPort => 8000;
    public override IEnumerable<KeyValuePair<string, string>> RequestHeaders => _requestHeaders;

    public FakeExchange Header(string name, string value)
    {
        _requestHeaders.Add(new(name, value));
        return this;
    }

    /// <summary>A body that is all there at once (Content-Length is the caller's business, as a client's).</summary>
    public FakeExchange Body(string latin1) => Body(Encoding.Latin1.GetBytes(latin1));

    public FakeExchange Body(byte[] body)
    {
        _requestBody = PipeReader.Create(new ReadOnlySequence<byte>(body));
        return this;
    }

    /// <summary>A body the test writes into (a slow upload, or one that never ends).</summary>
    public Pipe StreamedBody()
    {
        var pipe = new Pipe(new PipeOptions(useSynchronizationContext: false));
        _requestBody = new WatchedReader(pipe.Reader, this);
        return pipe;
    }

    /// <summary>A body whose first bytes arrive, then the host fails it as the client's fault (400/408/413).</summary>
    public FakeExchange FailingBody(string sentFirst, int status, string message)
    {
        var error = new RequestBodyException(ServerAnswer.Refusal(status, message));
        _requestBody = new FailingReader(Encoding.Latin1.GetBytes(sentFirst), error);
        return this;
    }

    public override PipeReader RequestBody => _requestBody ??= PipeReader.Create(ReadOnlySequence<byte>.Empty);

    // ---- the response ----

    public Pipe ResponsePipe { get; }
    public override PipeWriter ResponseBody => _writer;
    public int Status { get; private set; }
    public string? Reason { get; private set; }
    public int SetStatusCount { get; private set; }
    /// <summary>Body bytes the gateway advanced into the pipe (what the client would get, read or not).</summary>
    public long BytesWritten => _writer.Written;
    /// <summary>Body bytes have reached the pipe: Kestrel would have sent the head.</summary>
    public bool Started => _writer.Written > 0;

    public IReadOnlyList<(string Name, string Value)> ResponseHeaders
    {
        get { lock (_responseHeaders) return _responseHeaders.ToList(); }
    }

    /// <summary>The values of one response header (case-insensitive name), joined with '|'; null when absent.</summary>
    public string? ResponseHeader(string name)
    {
        var values = ResponseHeaders.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            .Select(h => h.Value).ToList();
        return values.Count == 0 ? null : string.Join("|", values);
    }

    public override void SetStatus(int status, string? reasonPhrase)
    {
        ThrowIfStarted();
        Status = status;
        Reason = reasonPhrase;
        SetStatusCount++;
    }

    public override void ClearResponseHeaders()
    {
        ThrowIfStarted();
        lock (_responseHeaders) _responseHeaders.Clear();
    }

    public override void AddResponseHeader(string name, string value)
    {
        ThrowIfStarted();
        lock (_responseHeaders) _responseHeaders.Add((name, value));
    }

    /// <summary>What the host answers when the head is committed (<see cref="BodyDisposition.Discard"/> plays a
    /// host that sends a file in the body's place).</summary>
    public BodyDisposition Disposition { get; set; } = BodyDisposition.Send;
    /// <summary>The head as the gateway committed it; null before.</summary>
    public ResponseHead? CommittedHead { get; private set; }
    public int CommitCount { get; private set; }

    public override BodyDisposition CommitHead(in ResponseHead head)
    {
        CommittedHead = head;
        CommitCount++;
        return Disposition;
    }

    private void ThrowIfStarted()
    {
        if (Started) throw new InvalidOperationException("the response has started: headers are read-only");
    }

    // ---- waits on the host ----

    /// <summary>
    /// Completes the first time the gateway has to wait on the host: a read of a <see cref="StreamedBody"/> with no
    /// data yet, or a response flush the client has not taken (<see cref="SlowClient"/>). The gateway is then about
    /// to block (GIL released) on the very operation that <see cref="CancelPendingIo"/> wakes.
    /// </summary>
    public Task GatewayWaiting => _gatewayWaiting.Task;

    private void NoteWait<T>(ValueTask<T> pending)
    {
        if (!pending.IsCompleted) _gatewayWaiting.TrySetResult();
    }

    // ---- the connection ----

    public int AbortCount => Volatile.Read(ref _abortCount);
    public int CancelCount => Volatile.Read(ref _cancelCount);

    public override void CancelPendingIo()
    {
        Interlocked.Increment(ref _cancelCount);
        _requestBody?.CancelPendingRead();
        ResponsePipe.Writer.CancelPendingFlush();
    }

    /// <summary>A reset connection: the client reads nothing more; pending and later flushes report it.</summary>
    public override void AbortConnection()
    {
        Interlocked.Increment(ref _abortCount);
        ResponsePipe.Reader.Complete();
    }

    /// <summary>The client went away before the response (its side of the pipe is closed).</summary>
    public void DisconnectClient() => ResponsePipe.Reader.Complete();

    // ---- completion ----

    public int FinishCount => Volatile.Read(ref _finishCount);
    public Task<ExchangeResult> Finished => _finished.Task;
    public bool IsFinished => _finished.Task.IsCompleted;

    /// <summary>The result; fails when Finish was not called (await a response still draining first).</summary>
    public ExchangeResult Result
    {
        get
        {
            Assert.True(IsFinished, "Finish was not called");
            return _finished.Task.Result;
        }
    }

    public override void Finish(ExchangeResult result)
    {
        Interlocked.Increment(ref _finishCount);
        _finished.TrySetResult(result);
        ResponsePipe.Writer.Complete(); // the host ends the response; a later write by the gateway would throw
    }

    /// <summary>Waits for Finish (a spooled response finishes on the drain's thread).</summary>
    public ExchangeResult WaitFinished(int milliseconds = 10_000)
    {
        Assert.True(_finished.Task.Wait(milliseconds), $"Finish was not called within {milliseconds} ms");
        return _finished.Task.Result;
    }

    /// <summary>Reads the response body to its end (the host completes the pipe in Finish).</summary>
    public async Task<byte[]> ReadBodyAsync(int delayPerRead = 0)
    {
        var received = new MemoryStream();
        while (true)
        {
            var read = await ResponsePipe.Reader.ReadAsync().ConfigureAwait(false);
            foreach (var segment in read.Buffer) received.Write(segment.Span);
            ResponsePipe.Reader.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted) break;
            // Pacing of a slow client (what some tests play), not a synchronisation.
            if (delayPerRead > 0) await Task.Delay(delayPerRead).ConfigureAwait(false);
        }
        return received.ToArray();
    }

    /// <summary>The whole body as latin-1 text, once the exchange is finished.</summary>
    public string BodyText()
    {
        var read = ReadBodyAsync();
        Assert.True(read.Wait(10_000), "the response body did not end (Finish not called?)");
        return Encoding.Latin1.GetString(read.Result);
    }

    /// <summary>Forwards to the pipe's writer, counting advanced bytes and noting a flush that has to wait.</summary>
    private sealed class RecordingWriter : PipeWriter
    {
        private readonly PipeWriter _inner;
        private readonly FakeExchange _owner;
        private long _written;

        public RecordingWriter(PipeWriter inner, FakeExchange owner)
        {
            _inner = inner;
            _owner = owner;
        }

        public long Written => Interlocked.Read(ref _written);

        public override void Advance(int bytes)
        {
            _inner.Advance(bytes);
            Interlocked.Add(ref _written, bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => _inner.GetSpan(sizeHint);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            var pending = _inner.FlushAsync(cancellationToken);
            _owner.NoteWait(pending);
            return pending;
        }

        public override void CancelPendingFlush() => _inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) =>
            throw new InvalidOperationException("the gateway must not complete the host's response pipe");
    }

    /// <summary>Forwards to a streamed body's reader, noting a read that has to wait for data.</summary>
    private sealed class WatchedReader : PipeReader
    {
        private readonly PipeReader _inner;
        private readonly FakeExchange _owner;

        public WatchedReader(PipeReader inner, FakeExchange owner)
        {
            _inner = inner;
            _owner = owner;
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var pending = _inner.ReadAsync(cancellationToken);
            _owner.NoteWait(pending);
            return pending;
        }

        public override bool TryRead(out ReadResult result) => _inner.TryRead(out result);
        public override void AdvanceTo(SequencePosition consumed) => _inner.AdvanceTo(consumed);
        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) =>
            _inner.AdvanceTo(consumed, examined);
        public override void CancelPendingRead() => _inner.CancelPendingRead();
        public override void Complete(Exception? exception = null) => _inner.Complete(exception);
    }

    /// <summary>Hands out its bytes, then throws the host's body error on the next read.</summary>
    private sealed class FailingReader : PipeReader
    {
        private readonly Exception _error;
        private ReadOnlySequence<byte> _data;
        private bool _failNext;

        public FailingReader(byte[] first, Exception error)
        {
            _data = new ReadOnlySequence<byte>(first);
            _error = error;
            _failNext = first.Length == 0;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (_failNext) throw _error;
            result = new ReadResult(_data, isCanceled: false, isCompleted: false);
            return true;
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            TryRead(out var result);
            return new ValueTask<ReadResult>(result);
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            _data = _data.Slice(consumed);
            if (_data.Length == 0) _failNext = true;
        }

        public override void CancelPendingRead() { }
        public override void Complete(Exception? exception = null) { }
    }
}
