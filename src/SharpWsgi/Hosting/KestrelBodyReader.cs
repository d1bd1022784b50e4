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
    private readonly long? _limit;

    /// <param name="limit">Kestrel's MaxRequestBodySize for this request: only --limit-request-body sets it.</param>
    public KestrelBodyReader(PipeReader inner, long? limit)
    {
        _inner = inner;
        _limit = limit;
    }

    /// <summary>The client's fault in the body (not a connection that went away), as Kestrel reports it.</summary>
    public static bool IsClientError(Exception e) =>
        // A chunk size past int.MaxValue is not a BadHttpRequestException but an IOException around the overflow.
        e is BadHttpRequestException or IOException { InnerException: OverflowException };

    /// <summary>Kestrel's reason in the server's own words (its messages name Kestrel's options, not ours).</summary>
    public static RequestBodyException Translate(Exception e, long? limit) => e switch
    {
        BadHttpRequestException { StatusCode: 408 } =>
            new(408, "the request body arrived more slowly than --min-upload-rate allows"),
        BadHttpRequestException { StatusCode: 413 } => new(413, limit is long n
            ? $"request body exceeds --limit-request-body {n}" : "the request body is larger than the server accepts"),
        BadHttpRequestException bad => new(bad.StatusCode, $"malformed request body: {bad.Message.TrimEnd('.')}"),
        _ => new(400, "malformed request body: the chunk size is too large"),
    };

    public override bool TryRead(out ReadResult result)
    {
        try { return _inner.TryRead(out result); }
        catch (Exception e) when (IsClientError(e)) { throw Translate(e, _limit); }
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<ReadResult> pending;
        try { pending = _inner.ReadAsync(cancellationToken); }
        catch (Exception e) when (IsClientError(e)) { throw Translate(e, _limit); }
        return pending.IsCompletedSuccessfully ? pending : Awaited(pending);
    }

    private async ValueTask<ReadResult> Awaited(ValueTask<ReadResult> pending)
    {
        try { return await pending.ConfigureAwait(false); }
        catch (Exception e) when (IsClientError(e)) { throw Translate(e, _limit); }
    }

    public override void AdvanceTo(SequencePosition consumed) => _inner.AdvanceTo(consumed);
    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) =>
        _inner.AdvanceTo(consumed, examined);
    public override void CancelPendingRead() => _inner.CancelPendingRead();
    public override void Complete(Exception? exception = null) => _inner.Complete(exception);
}
