using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace SharpWsgi.Hosting;

/// <summary>
/// Zero-copy static files on cleartext HTTP/1.1 (--static without --no-sendfile). Kestrel's socket transport has no
/// sendfile path, so this connection middleware (first on a cleartext listener) takes over the sending side: Kestrel
/// writes into our pipe and one loop per connection sends what it reads straight on the socket, as the transport's
/// own sender would (same buffers, no extra copy). The static handler, having flushed its head through Kestrel,
/// posts a file range here; the loop sends everything flushed before it, then the range with sendfile(2)
/// (<see cref="Socket.SendPacketsAsync"/> does that on Linux), and only then reads Kestrel's pipe again, so
/// keep-alive and pipelined responses stay in order. The transport's own output is never written: it is completed
/// when ours is, so the transport shuts the socket down as before.
/// </summary>
public sealed class SendfileTransport : IDuplexPipe
{
    /// <summary>Largest piece per sendfile call: --min-download-rate is enforced per piece, as Kestrel does per
    /// flush of the old path's 256 KiB chunks.</summary>
    private const int Piece = 256 * 1024;

    private readonly ConnectionContext _connection;
    private readonly IDuplexPipe _original;
    private readonly Socket _socket;
    private readonly Pipe _pipe;
    private readonly SendfileOptions _options;
    private readonly SendArgs _args = new();
    private readonly List<ArraySegment<byte>> _segments = new();
    private FileJob? _job;
    private volatile bool _stopped;
    private CancellationTokenSource? _rateTimer;

    private SendfileTransport(ConnectionContext connection, Socket socket, SendfileOptions options)
    {
        _connection = connection;
        _original = connection.Transport;
        _socket = socket;
        _options = options;
        var pool = connection.Features.Get<IMemoryPoolFeature>()?.MemoryPool ?? MemoryPool<byte>.Shared;
        // The transport's own output pipe's thresholds (SocketTransportOptions.MaxWriteBufferSize), so Kestrel's
        // flushes wait exactly as long as before. Sends run on the thread pool, not inline in the flush: the gateway
        // flushes on a Python thread holding the GIL, and a send there holds the GIL over a syscall. Measured
        // (hello, 2 workers, busy 2-core machine, medians of 6): thread pool 13.3k req/s, no forwarder 13.7k,
        // inline 12.3k, a Kestrel-like IO queue 11.6k.
        _pipe = new Pipe(new PipeOptions(pool, PipeScheduler.ThreadPool, PipeScheduler.ThreadPool,
            options.PauseWriterThreshold, options.PauseWriterThreshold / 2, useSynchronizationContext: false));
    }

    public PipeReader Input => _original.Input;
    public PipeWriter Output => _pipe.Writer;

    /// <summary>Installed only where a socket is underneath (not for TLS: those bytes must be encrypted).</summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(SendfileOptions options) =>
        next => async context =>
        {
            var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
            if (socket == null)
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            var transport = new SendfileTransport(context, socket, options);
            context.Transport = transport;
            context.Features.Set(transport);
            var loop = transport.ForwardAsync();
            try { await next(context).ConfigureAwait(false); }
            finally
            {
                await transport._pipe.Writer.CompleteAsync().ConfigureAwait(false); // Kestrel has done so already
                await loop.ConfigureAwait(false);
            }
        };

    /// <summary>
    /// Sends the file range after every byte flushed so far; true once it is all on the socket, false when the
    /// connection failed (the client went away, Kestrel aborted it, or it read too slowly): then only an abort is
    /// left.
    /// </summary>
    public Task<bool> SendFileAsync(SafeFileHandle file, long offset, long count)
    {
        var job = new FileJob(file, offset, count);
        Volatile.Write(ref _job, job);
        // Wakes the loop if it waits for Kestrel's bytes; if it is sending, it sees the job when done.
        _pipe.Reader.CancelPendingRead();
        if (_stopped) Interlocked.Exchange(ref _job, null)?.Done.TrySetResult(false);
        return job.Done.Task;
    }

    private async Task ForwardAsync()
    {
        var reader = _pipe.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                await SendAndAdvanceAsync(reader, result.Buffer).ConfigureAwait(false);
                if (Interlocked.Exchange(ref _job, null) is { } job)
                {
                    // The handler flushed its head before it posted: those bytes are in the pipe now.
                    while (reader.TryRead(out var more))
                    {
                        if (more.Buffer.IsEmpty) { reader.AdvanceTo(more.Buffer.End); break; }
                        await SendAndAdvanceAsync(reader, more.Buffer).ConfigureAwait(false);
                    }
                    await RunAsync(job).ConfigureAwait(false);
                }
                if (result.IsCompleted) break;
            }
        }
        catch (Exception e)
        {
            error = e;
            _options.Log.LogDebug("Connection {Id}: send failed ({Error}); closing it", _connection.ConnectionId,
                e.Message);
            _connection.Abort(new ConnectionAbortedException("the send failed", e));
        }
        finally
        {
            _stopped = true;
            Interlocked.Exchange(ref _job, null)?.Done.TrySetResult(false);
            await reader.CompleteAsync(error).ConfigureAwait(false); // Kestrel's later flushes see the end
            await _original.Output.CompleteAsync().ConfigureAwait(false); // the transport shuts the socket down
            _rateTimer?.Dispose();
            _args.Dispose();
        }
    }

    private async ValueTask SendAndAdvanceAsync(PipeReader reader, ReadOnlySequence<byte> buffer)
    {
        if (!buffer.IsEmpty) await SendAsync(buffer).ConfigureAwait(false);
        reader.AdvanceTo(buffer.End);
    }

    private async ValueTask SendAsync(ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsSingleSegment)
        {
            var memory = buffer.First;
            while (!memory.IsEmpty)
            {
                var sent = await _socket.SendAsync(memory, SocketFlags.None).ConfigureAwait(false);
                memory = memory[sent..];
            }
            return;
        }
        // Several segments in one sendmsg, as the transport's sender does.
        _segments.Clear();
        foreach (var segment in buffer)
            _segments.Add(MemoryMarshal.TryGetArray(segment, out var array) ? array : segment.ToArray());
        var total = buffer.Length;
        var done = await _args.SendBuffersAsync(_socket, _segments).ConfigureAwait(false);
        if (done < total) await SendAsync(buffer.Slice(done)).ConfigureAwait(false); // not seen on Linux
    }

    private async Task RunAsync(FileJob job)
    {
        var ok = false;
        try
        {
            using var stream = new FileStream(job.File, FileAccess.Read, bufferSize: 0, isAsync: true);
            var (offset, left) = (job.Offset, job.Count);
            while (left > 0)
            {
                var size = (int)Math.Min(left, Piece);
                ArmRateTimer(size);
                var error = await _args.SendFileAsync(_socket, stream, offset, size).ConfigureAwait(false);
                if (error != SocketError.Success) throw new SocketException((int)error);
                offset += size;
                left -= size;
            }
            _rateTimer?.CancelAfter(Timeout.Infinite);
            ok = true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            _options.Log.LogDebug("Connection {Id}: the client went away during sendfile ({Error})",
                _connection.ConnectionId, e.Message);
            _connection.Abort(new ConnectionAbortedException("the client went away during sendfile"));
            throw;
        }
        finally
        {
            if (ok) _options.Sent?.Invoke(job.Count);
            job.Done.TrySetResult(ok);
        }
    }

    /// <summary>Kestrel's rule for its own writes: a piece must go out within max(grace, size / rate).</summary>
    private void ArmRateTimer(int size)
    {
        if (_options.MinRate <= 0) return;
        if (_rateTimer == null)
        {
            _rateTimer = new CancellationTokenSource();
            _rateTimer.Token.UnsafeRegister(static state =>
            {
                var self = (SendfileTransport)state!;
                self._options.Log.LogDebug("Connection {Id}: the client read a file below --min-download-rate",
                    self._connection.ConnectionId);
                self._connection.Abort(new ConnectionAbortedException("the client read below --min-download-rate"));
            }, this);
        }
        var seconds = Math.Max(_options.Grace.TotalSeconds, size / _options.MinRate);
        _rateTimer.CancelAfter(TimeSpan.FromSeconds(seconds));
    }

    private sealed class FileJob(SafeFileHandle file, long offset, long count)
    {
        public SafeFileHandle File { get; } = file;
        public long Offset { get; } = offset;
        public long Count { get; } = count;
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>One reusable socket operation per connection: a multi-segment send or a sendfile, allocation-free.
    /// </summary>
    private sealed class SendArgs : SocketAsyncEventArgs, IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core;
        private readonly SendPacketsElement[] _elements = new SendPacketsElement[1];

        public SendArgs() : base(unsafeSuppressExecutionContextFlow: true) { }

        public ValueTask<int> SendBuffersAsync(Socket socket, IList<ArraySegment<byte>> segments)
        {
            _core.Reset();
            SendPacketsElements = null;
            BufferList = segments;
            if (socket.SendAsync(this)) return new ValueTask<int>(this, _core.Version);
            return SocketError == SocketError.Success
                ? new ValueTask<int>(BytesTransferred)
                : ValueTask.FromException<int>(new SocketException((int)SocketError));
        }

        public async ValueTask<SocketError> SendFileAsync(Socket socket, FileStream file, long offset, int count)
        {
            _core.Reset();
            BufferList = null;
            _elements[0] = new SendPacketsElement(file, offset, count);
            SendPacketsElements = _elements;
            if (socket.SendPacketsAsync(this))
            {
                try { await new ValueTask<int>(this, _core.Version).ConfigureAwait(false); }
                catch (SocketException e) { return e.SocketErrorCode; }
            }
            _elements[0] = null!;
            return SocketError;
        }

        protected override void OnCompleted(SocketAsyncEventArgs e)
        {
            if (SocketError == SocketError.Success) _core.SetResult(BytesTransferred);
            else _core.SetException(new SocketException((int)SocketError));
        }

        public int GetResult(short token) => _core.GetResult(token);
        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token,
            ValueTaskSourceOnCompletedFlags flags) => _core.OnCompleted(continuation, state, token, flags);
    }
}

/// <summary>What the forwarder needs from the settings and the host.</summary>
public sealed record SendfileOptions(long PauseWriterThreshold, double MinRate, TimeSpan Grace, ILogger Log,
    Action<long>? Sent);

/// <summary>
/// Kestrel counts the body bytes written through it and, at the end of a response with Content-Length, takes too few
/// for an application error (logged, connection closed). A body sent by sendfile went past it, so it is told: its
/// private counter is set through an UnsafeAccessor (NativeAOT-safe). If a future Kestrel renames the field, the
/// first use fails with MissingFieldException before anything is sent and sendfile is switched off for good.
/// </summary>
internal static class KestrelBodyCount
{
    private const string HttpProtocol =
        "Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Http.HttpProtocol, Microsoft.AspNetCore.Server.Kestrel.Core";

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_responseBytesWritten")]
    private static extern ref long BytesWritten([UnsafeAccessorType(HttpProtocol)] object protocol);

    private static int _state; // 0 unknown, 1 works, -1 unavailable

    /// <summary>The counter of this request (Kestrel's features object is its HttpProtocol), or false when it
    /// cannot be reached.</summary>
    public static bool CanSet(object features)
    {
        if (_state != 0) return _state > 0;
        try
        {
            _ = BytesWritten(features);
            _state = 1;
        }
        catch (Exception e) when (e is MissingMemberException or InvalidCastException or TypeLoadException
                                      or FileNotFoundException)
        {
            _state = -1;
        }
        return _state > 0;
    }

    public static void Add(object features, long count) => BytesWritten(features) += count;
}
