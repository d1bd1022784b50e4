using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>What the host may hold of request bodies before a Python thread reads them.</summary>
public sealed class BodyBufferingOptions
{
    /// <summary>A body up to this size is read into memory before the request is queued (0: stream every
    /// body).</summary>
    public long MemoryLimit { get; init; } = 1 << 20;
    /// <summary>A larger body is spooled to a file up to this size; the rest streams while the app reads.</summary>
    public long SpoolLimit { get; init; } = 64 << 20;
    public string TempDirectory { get; init; } = Path.GetTempPath();
    /// <summary>Bytes of bodies held in memory by the whole process; past it bodies are spooled instead.</summary>
    public required ByteBudget MemoryBudget { get; init; }
    /// <summary>--send-timeout: a client that sends no body byte for this long while it is read ahead gets 408
    /// (nginx's client_body_timeout). Kestrel's minimum upload rate is an average over the whole body, so a fast start
    /// then a stall would hold the connection and its spool for hours. Zero: no such bound.</summary>
    public TimeSpan IdleTimeout { get; init; }
}

/// <summary>
/// Reads a request's body asynchronously, on Kestrel's side, before the request is queued for a Python thread, so a
/// slow uploader holds no Python thread: a body of known length up to the memory limit stays in Kestrel's own
/// buffers (the gateway copies it once, into the bytes object the app reads); a body of unknown length is gathered
/// in memory up to the same limit; past it, the body goes to an unlinked spool file up to the spool limit, and only
/// what is larger still is streamed to the app as it arrives (subject to Kestrel's minimum upload rate).
/// </summary>
internal sealed class RequestBodyPrefetch : IDisposable
{
    private const int Block = 64 * 1024;
    private readonly BodyBufferingOptions _options;
    private long _reserved;
    private byte[]? _memory;
    private SafeFileHandle? _spool;
    private CancellationTokenSource? _idle;
    private bool _staleCancel;

    private RequestBodyPrefetch(BodyBufferingOptions options) => _options = options;

    /// <summary>Null when the request has no body or buffering is off: the app reads Kestrel's pipe.</summary>
    public static RequestBodyPrefetch? For(KestrelExchange exchange, BodyBufferingOptions options)
    {
        if (options.MemoryLimit <= 0) return null;
        var detection = exchange.Features.Get<IHttpRequestBodyDetectionFeature>();
        if (detection is { CanHaveBody: false }) return null;
        var length = exchange.KestrelRequestHeaders.ContentLength;
        if (length == 0) return null;
        if (length == null && detection == null) return null;
        return new RequestBodyPrefetch(options);
    }

    /// <summary>
    /// Reads what it may of the body and gives the exchange the body the app will read. Null when done; otherwise
    /// the refusal the host must answer instead of queueing the request, or <see cref="ClientGone"/>.
    /// </summary>
    public async Task<ServerAnswer?> ReadAsync(KestrelExchange exchange)
    {
        // A chunked HTTP/1.1 body's limit is counted by our reader (Kestrel would count the framing too).
        PipeReader reader = exchange.CountBody
            ? new KestrelBodyReader(exchange.KestrelBody, exchange.BodyLimit, count: true) : exchange.KestrelBody;
        var length = exchange.KestrelRequestHeaders.ContentLength;
        try
        {
            var http1 = exchange.Protocol is "HTTP/1.1" or "HTTP/1.0";
            if (length is long known && known <= _options.MemoryLimit && http1 && Reserve(known))
            {
                await HoldInKestrelAsync(reader, known).ConfigureAwait(false);
                await ClearStaleCancelAsync(reader).ConfigureAwait(false);
                exchange.UseBody(new KestrelBodyReader(reader, exchange.BodyLimit));
                return null;
            }
            exchange.UseBody(await GatherAsync(exchange, reader, length, exchange.BodyLimit).ConfigureAwait(false));
            return null;
        }
        catch (RequestBodyException e)
        {
            return e.Answer;
        }
        catch (Exception e) when (KestrelBodyReader.IsClientError(e))
        {
            return KestrelBodyReader.Translate(e, exchange.BodyLimit).Answer;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            return ClientGone;
        }
    }

    /// <summary>The client went away while sending: nobody is left to answer.</summary>
    public static readonly ServerAnswer ClientGone = ServerAnswer.Refusal(499, "the client went away");

    /// <summary>The next read of the body; 408 when the client sends nothing for <see
    /// cref="BodyBufferingOptions.IdleTimeout"/>.</summary>
    private async ValueTask<ReadResult> ReadWithinIdleTimeoutAsync(PipeReader reader)
    {
        var timeout = _options.IdleTimeout;
        while (true)
        {
            var read = reader.ReadAsync();
            ReadResult result;
            // Bytes already there (most small bodies arrive with the head): no timer.
            if (read.IsCompleted || timeout <= TimeSpan.Zero) result = await read.ConfigureAwait(false);
            else
            {
                if (_idle == null || !_idle.TryReset()) _idle = new CancellationTokenSource();
                _idle.CancelAfter(timeout);
                using (_idle.Token.UnsafeRegister(static r => ((PipeReader)r!).CancelPendingRead(), reader))
                    result = await read.ConfigureAwait(false);
                var fired = _idle.IsCancellationRequested; // the registration is disposed: a callback has run
                _idle.CancelAfter(Timeout.InfiniteTimeSpan);
                if (fired && result.IsCanceled)
                    throw new RequestBodyException(ServerAnswer.Refusal(408,
                        $"the client sent no body bytes for {timeout.TotalSeconds:0.#}s (--send-timeout)"));
                if (fired) _staleCancel = true; // it fired as the read completed: the pipe cancels the next read
            }
            if (!result.IsCanceled || !_staleCancel) return result;
            _staleCancel = false;
            reader.AdvanceTo(result.Buffer.Start); // the timer's late cancel, not the client's: read again
        }
    }

    /// <summary>Before the body reader goes to the app: a late cancel of the timer must not reach it.</summary>
    private async ValueTask ClearStaleCancelAsync(PipeReader reader)
    {
        if (!_staleCancel) return;
        _staleCancel = false;
        var result = await reader.ReadAsync().ConfigureAwait(false); // returns at once: the cancel is pending
        reader.AdvanceTo(result.Buffer.Start);
    }

    private bool Reserve(long bytes)
    {
        if (!_options.MemoryBudget.TryReserve(bytes)) return false;
        _reserved += bytes;
        return true;
    }

    /// <summary>
    /// A Content-Length body over HTTP/1.x reads straight from the connection's input pipe: leaving it unconsumed keeps
    /// it in Kestrel's buffers, no copy (the server sizes MaxRequestBufferSize to fit the memory limit).
    /// </summary>
    private async Task HoldInKestrelAsync(PipeReader reader, long length)
    {
        while (true)
        {
            var result = await ReadWithinIdleTimeoutAsync(reader).ConfigureAwait(false);
            var buffer = result.Buffer;
            var done = result.IsCompleted || result.IsCanceled || buffer.Length >= length;
            reader.AdvanceTo(buffer.Start, done ? buffer.Start : buffer.End);
            if (done) return;
        }
    }

    /// <summary>Copies the body into memory, then a spool file; returns the pipe the app will read.</summary>
    private async Task<PipeReader> GatherAsync(KestrelExchange exchange, PipeReader reader, long? length, long limit)
    {
        long gathered = 0;
        var inMemory = length is not long known || known <= _options.MemoryLimit;
        while (true)
        {
            var result = await ReadWithinIdleTimeoutAsync(reader).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length > 0)
            {
                if (inMemory && gathered + buffer.Length <= _options.MemoryLimit && Reserve(buffer.Length))
                {
                    Append(buffer, gathered);
                }
                else
                {
                    if (_spool == null)
                    {
                        _spool = SpoolFile.Create(_options.TempDirectory);
                        if (gathered > 0) RandomAccess.Write(_spool, _memory.AsSpan(0, (int)gathered), 0);
                        ReturnMemory();
                        inMemory = false;
                    }
                    var at = gathered;
                    foreach (var segment in buffer)
                    {
                        await RandomAccess.WriteAsync(_spool, segment, at).ConfigureAwait(false);
                        at += segment.Length;
                    }
                }
                gathered += buffer.Length;
            }
            reader.AdvanceTo(buffer.End);
            exchange.GatheredBodyBytes = gathered; // a chunked body's size, for the request-bytes metric
            if (result.IsCompleted || result.IsCanceled)
            {
                if (result.IsCompleted)
                {
                    StrictContentLength.BodyEnded(exchange.Features);
                    if (RequestLimits.CheckTrailers(exchange.Features) is { } refused) throw refused;
                }
                if (_spool == null)
                    return PipeReader.Create(new ReadOnlySequence<byte>(_memory ?? [], 0, (int)gathered));
                return PipeReader.Create(new SpoolThenPipeStream(_spool, gathered, null));
            }
            if (_spool != null && gathered >= _options.SpoolLimit)
            {
                await ClearStaleCancelAsync(reader).ConfigureAwait(false);
                // Already counting when CountBody; Kestrel's own limit otherwise.
                var rest = reader as KestrelBodyReader ?? new KestrelBodyReader(reader, limit);
                rest.Features = exchange.Features; // the trailers are checked when the app reads to the end
                return PipeReader.Create(new SpoolThenPipeStream(_spool, gathered, rest));
            }
        }
    }

    private void Append(ReadOnlySequence<byte> data, long at)
    {
        var needed = (int)(at + data.Length);
        if (_memory == null || _memory.Length < needed)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Min((int)_options.MemoryLimit, Block)));
            if (_memory != null)
            {
                _memory.AsSpan(0, (int)at).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_memory);
            }
            _memory = bigger;
        }
        data.CopyTo(_memory.AsSpan((int)at));
    }

    private void ReturnMemory()
    {
        if (_memory != null) ArrayPool<byte>.Shared.Return(_memory);
        _memory = null;
        _options.MemoryBudget.Release(_reserved);
        _reserved = 0;
    }

    /// <summary>The request is over: memory back to the pool and the budget, the spool file closed (and so
    /// gone).</summary>
    public void Dispose()
    {
        ReturnMemory();
        _spool?.Dispose();
        _spool = null;
        _idle?.Dispose();
    }

    /// <summary>The spooled part of a body, then whatever still arrives on Kestrel's pipe.</summary>
    private sealed class SpoolThenPipeStream : Stream
    {
        private readonly SafeFileHandle _file;
        private readonly long _spooled;
        private readonly PipeReader? _rest;
        private readonly Stream? _restStream;
        private long _position;

        public SpoolThenPipeStream(SafeFileHandle file, long spooled, PipeReader? rest)
        {
            _file = file;
            _spooled = spooled;
            _rest = rest;
            _restStream = rest?.AsStream(leaveOpen: true);
        }

        public override int Read(Span<byte> buffer)
        {
            if (_position < _spooled)
            {
                var n = RandomAccess.Read(_file, buffer[..(int)Math.Min(buffer.Length, _spooled - _position)],
                    _position);
                _position += n;
                return n;
            }
            return _restStream?.Read(buffer) ?? 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer,
            CancellationToken cancellationToken = default)
        {
            if (_position < _spooled)
            {
                var want = (int)Math.Min(buffer.Length, _spooled - _position);
                var n = await RandomAccess.ReadAsync(_file, buffer[..want], _position, cancellationToken)
                    .ConfigureAwait(false);
                _position += n;
                return n;
            }
            return _restStream == null ? 0
                : await _restStream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
