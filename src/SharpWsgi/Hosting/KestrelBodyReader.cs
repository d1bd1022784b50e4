using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>
/// Kestrel's request body pipe as the gateway's port promises it: a malformed, too slow or too large body surfaces
/// as the gateway's <see cref="RequestBodyException"/>, never as an ASP.NET Core type.
/// </summary>
internal sealed class KestrelBodyReader : PipeReader
{
    private readonly PipeReader _inner;
    public KestrelBodyReader(PipeReader inner) => _inner = inner;

    /// <summary>Kestrel's reason in the server's own words (its messages name Kestrel's options, not ours).</summary>
    public static RequestBodyException Translate(BadHttpRequestException e) => e.StatusCode switch
    {
        408 => new(408, "the request body arrived more slowly than --min-upload-rate allows"),
        413 => new(413, "the request body is larger than the server accepts"),
        _ => new(e.StatusCode, $"malformed request body: {e.Message.TrimEnd('.')}"),
    };

    public override bool TryRead(out ReadResult result)
    {
        try { return _inner.TryRead(out result); }
        catch (BadHttpRequestException e) { throw Translate(e); }
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<ReadResult> pending;
        try { pending = _inner.ReadAsync(cancellationToken); }
        catch (BadHttpRequestException e) { throw Translate(e); }
        return pending.IsCompletedSuccessfully ? pending : Awaited(pending);
    }

    private static async ValueTask<ReadResult> Awaited(ValueTask<ReadResult> pending)
    {
        try { return await pending.ConfigureAwait(false); }
        catch (BadHttpRequestException e) { throw Translate(e); }
    }

    public override void AdvanceTo(SequencePosition consumed) => _inner.AdvanceTo(consumed);
    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) =>
        _inner.AdvanceTo(consumed, examined);
    public override void CancelPendingRead() => _inner.CancelPendingRead();
    public override void Complete(Exception? exception = null) => _inner.Complete(exception);
}
