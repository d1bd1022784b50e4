using System.IO.Pipelines;

namespace SharpWsgi.Hosting;

/// <summary>Kestrel's response pipe, counting the body bytes for the access log's b and B (only when it is
/// on).</summary>
internal sealed class CountingPipeWriter : PipeWriter
{
    private readonly PipeWriter _inner;
    public long Count;

    public CountingPipeWriter(PipeWriter inner) => _inner = inner;

    public override void Advance(int bytes)
    {
        Count += bytes;
        _inner.Advance(bytes);
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(sizeHint);
    public override Span<byte> GetSpan(int sizeHint = 0) => _inner.GetSpan(sizeHint);
    public override void CancelPendingFlush() => _inner.CancelPendingFlush();
    public override void Complete(Exception? exception = null) => _inner.Complete(exception);
    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);
    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
        _inner.FlushAsync(cancellationToken);
    public override bool CanGetUnflushedBytes => _inner.CanGetUnflushedBytes;
    public override long UnflushedBytes => _inner.UnflushedBytes;

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source,
        CancellationToken cancellationToken = default)
    {
        Count += source.Length;
        return _inner.WriteAsync(source, cancellationToken);
    }
}
