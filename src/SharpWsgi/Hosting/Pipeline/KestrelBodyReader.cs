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
    private readonly long _limit;
    private readonly bool _count;
    private long _consumed;
    private System.Buffers.ReadOnlySequence<byte> _last;

    /// <param name="limit">--limit-request-body (0: none); Kestrel's MaxRequestBodySize is only ever this.</param>
    /// <param name="count">Enforce the limit here, on the body's own bytes.</param>
    public KestrelBodyReader(PipeReader inner, long limit, bool count = false)
    {
        _inner = inner;
        _limit = limit;
        _count = count && limit > 0;
    }

    /// <summary>The request's features, to check its trailers when the body ends (null: not checked).</summary>
    public Microsoft.AspNetCore.Http.Features.IFeatureCollection? Features { get; set; }

    private ReadResult Counted(ReadResult result)
    {
        if (result.IsCompleted && Features != null)
        {
            StrictContentLength.BodyEnded(Features);
            if (RequestLimits.CheckTrailers(Features) is { } refused) throw refused;
        }
        if (!_count) return result;
        _last = result.Buffer;
        if (_consumed + result.Buffer.Length > _limit)
            throw new RequestBodyException(ServerAnswer.BodyOverLimit(_limit));
        return result;
    }

    /// <summary>The client's fault in the body (not a connection that went away), as Kestrel reports it.</summary>
    public static bool IsClientError(Exception e) =>
        // A chunk size past int.MaxValue is not a BadHttpRequestException but an IOException around the overflow.
        e is BadHttpRequestException or IOException { InnerException: OverflowException };

    /// <summary>Kestrel's reason in the server's own words (its messages name Kestrel's options, not ours).</summary>
    public static RequestBodyException Translate(Exception e, long limit) => new(e switch
    {
        BadHttpRequestException { StatusCode: 408 } => ServerAnswer.SlowUpload,
        BadHttpRequestException { StatusCode: 413 } => ServerAnswer.BodyOverLimit(limit),
        BadHttpRequestException bad => ServerAnswer.Refusal(bad.StatusCode,
            $"malformed request body: {bad.Message.TrimEnd('.')}"),
        _ => ServerAnswer.MalformedBody("the chunk size is too large"),
    });

    public override bool TryRead(out ReadResult result)
    {
        bool read;
        try { read = _inner.TryRead(out result); }
        catch (Exception e) when (IsClientError(e)) { throw Translate(e, _limit); }
        if (read) result = Counted(result);
        return read;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<ReadResult> pending;
        try { pending = _inner.ReadAsync(cancellationToken); }
        catch (Exception e) when (IsClientError(e)) { throw Translate(e, _limit); }
        return pending.IsCompletedSuccessfully ? new ValueTask<ReadResult>(Counted(pending.Result)) : Awaited(pending);
    }

    private async ValueTask<ReadResult> Awaited(ValueTask<ReadResult> pending)
    {
        try { return Counted(await pending.ConfigureAwait(false)); }
        catch (Exception e) when (IsClientError(e)) { throw Translate(e, _limit); }
    }

    public override void AdvanceTo(SequencePosition consumed)
    {
        if (_count) _consumed += _last.Slice(0, consumed).Length;
        _inner.AdvanceTo(consumed);
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_count) _consumed += _last.Slice(0, consumed).Length;
        _inner.AdvanceTo(consumed, examined);
    }
    public override void CancelPendingRead() => _inner.CancelPendingRead();
    public override void Complete(Exception? exception = null) => _inner.Complete(exception);
}
