using System.IO.Pipelines;

namespace SharpWsgi.Hosting;

/// <summary>
/// A response body compressed as it flows, off the Python thread. The gateway writes the app's bytes into a pipe of
/// ours (<see cref="Writer"/>, in place of Kestrel's); a pump on the thread pool reads them, compresses them into
/// Kestrel's pipe and flushes it, so the compressor's CPU never holds the GIL. The pipe pauses at
/// --response-buffer-size, as Kestrel's own does: a flush the client cannot take at once stays pending, and the
/// gateway spools the rest as it would without compression (a slow client holds no Python thread). Nothing is
/// compressed until the first flush; a body written whole (a list the app returned) is compressed at the end on
/// Kestrel's thread, without a hop. A compressor holds its input back for a better ratio (brotli and zlib alike
/// hold hundreds of KB of HTML); when the app pauses with bytes held, they are flushed out after
/// <see cref="HoldAtMost"/>, so a slow stream reaches the client as it flows while a fast one keeps whole blocks.
/// The host ends it once the gateway is done (<see cref="EndAsync"/>): the trailer goes out, or nothing more when
/// the response failed.
/// </summary>
internal sealed class CompressedBody
{
    /// <summary>How long bytes the app has written may wait in the compressor while it writes nothing more.
    /// </summary>
    public static readonly TimeSpan HoldAtMost = TimeSpan.FromMilliseconds(20);

    private readonly Pipe _input;
    private readonly PipeWriter _output;
    private readonly BodyEncoder _encoder;
    private Task? _pump;
    private volatile bool _stopping;
    private bool _failed;

    /// <param name="output">Kestrel's response pipe.</param>
    /// <param name="coding">br or gzip.</param>
    /// <param name="bufferSize">Uncompressed bytes that may wait for the compressor before a flush stays pending.
    /// </param>
    public CompressedBody(PipeWriter output, string coding, long bufferSize)
    {
        _output = output;
        _encoder = BodyEncoder.For(coding, output);
        // Both sides resume on the thread pool: never the compressor on the gateway's (Python) thread, never the
        // gateway's drain inline in the pump.
        _input = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.ThreadPool,
            writerScheduler: PipeScheduler.ThreadPool, pauseWriterThreshold: bufferSize,
            resumeWriterThreshold: bufferSize / 2, useSynchronizationContext: false));
        Writer = new InputWriter(this, _input.Writer);
    }

    /// <summary>Where the gateway writes the app's body.</summary>
    public PipeWriter Writer { get; }

    /// <summary>Compressed bytes that reached Kestrel's pipe.</summary>
    public long CompressedBytes => _encoder.Written;

    /// <summary>A request timed out: wakes a gateway flush waiting for room (the pump's wait on Kestrel is woken by
    /// the host's own cancel).</summary>
    public void CancelPendingFlush() => _input.Writer.CancelPendingFlush();

    private void StartPump() => _pump ??= PumpAsync();

    /// <summary>
    /// Kestrel's thread, the gateway done: with sendRest the rest is compressed and the trailer written (true when it
    /// all reached Kestrel's pipe); without, the pump stops where it is and nothing more is written (the host aborts
    /// or answers instead). Releases the compressor either way.
    /// </summary>
    public async Task<bool> EndAsync(bool sendRest)
    {
        if (!sendRest)
        {
            _stopping = true;
            _encoder.Discard();
            _input.Reader.CancelPendingRead();
            _output.CancelPendingFlush();
        }
        _input.Writer.Complete();
        StartPump();
        try { await _pump!.ConfigureAwait(false); }
        finally { _encoder.Dispose(); }
        return sendRest && !_failed;
    }

    private async Task PumpAsync()
    {
        var reader = _input.Reader;
        var holding = false;
        try
        {
            while (true)
            {
                var pending = reader.ReadAsync();
                if (holding && !pending.IsCompleted)
                {
                    // The app paused with bytes still in the compressor: out with them if it stays quiet.
                    var next = pending.AsTask();
                    if (await Task.WhenAny(next, Task.Delay(HoldAtMost)).ConfigureAwait(false) != next)
                    {
                        _encoder.Flush();
                        holding = false;
                        if (!await FlushOutputAsync().ConfigureAwait(false)) return;
                    }
                    pending = new ValueTask<ReadResult>(next);
                }
                var read = await pending.ConfigureAwait(false);
                if (_stopping || read.IsCanceled) return;
                var buffer = read.Buffer;
                foreach (var segment in buffer) _encoder.Write(segment.Span);
                holding |= !buffer.IsEmpty;
                reader.AdvanceTo(buffer.End);
                if (read.IsCompleted)
                {
                    _encoder.Finish(); // Kestrel flushes it with the end of the response
                    return;
                }
                if (!await FlushOutputAsync().ConfigureAwait(false)) return;
            }
        }
        catch (Exception)
        {
            _failed = true; // the client went away (a write or flush on a reset connection), or the encoder failed
        }
        finally
        {
            // The gateway's pending and later flushes report the client gone.
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Flushes Kestrel's pipe when the compressor produced something; false when the client is gone.
    /// </summary>
    private async ValueTask<bool> FlushOutputAsync()
    {
        if (_encoder.TakeUnflushed() == 0) return true;
        var flush = await _output.FlushAsync().ConfigureAwait(false);
        if (!flush.IsCompleted && !flush.IsCanceled) return true;
        _failed = true;
        return false;
    }

    /// <summary>Our pipe's writer, which starts the pump with the first flush.</summary>
    private sealed class InputWriter(CompressedBody owner, PipeWriter inner) : PipeWriter
    {
        public override void Advance(int bytes) => inner.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
        public override long UnflushedBytes => inner.UnflushedBytes;

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            owner.StartPump();
            return inner.FlushAsync(cancellationToken);
        }
    }
}
