using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using SharpWsgi.Gateway;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting;

/// <summary>
/// Kestrel's application: each request becomes a <see cref="KestrelExchange"/>, its body is read ahead (so a slow
/// uploader holds no Python thread), and it is queued to the gateway's Python threads. Kestrel's threads never run
/// Python and never block: they await the exchange, then finish it as the gateway says, writing the server's own
/// answers through <see cref="PlainResponse"/>.
/// </summary>
public sealed class WsgiHttpApplication : IHttpApplication<KestrelExchange>
{
    private readonly WsgiGateway _gateway;
    private readonly ILogger _log;
    private readonly WorkerLifecycle _lifecycle;
    private readonly BodyBufferingOptions _bodies;
    private readonly RequestLimits _limits;
    private readonly ForwardedHeaders _forwarded;
    private readonly AccessLog? _accessLog;
    private readonly RequestIds? _requestIds;
    private readonly WorkerMetrics? _metrics;

    public WsgiHttpApplication(WsgiGateway gateway, ILogger log, WorkerLifecycle lifecycle, BodyBufferingOptions bodies,
        RequestLimits limits, ForwardedHeaders forwarded, AccessLog? accessLog = null, RequestIds? requestIds = null,
        WorkerMetrics? metrics = null)
    {
        _accessLog = accessLog;
        _requestIds = requestIds;
        _metrics = metrics;
        _gateway = gateway;
        _log = log;
        _lifecycle = lifecycle;
        _bodies = bodies;
        _limits = limits;
        _forwarded = forwarded;
    }

    /// <summary>--static: files answered on Kestrel's thread before anything Python-bound happens.</summary>
    internal StaticFiles? Static { get; init; }

    /// <summary>--internal, --x-sendfile-root and --compress: what the host does with the app's heads.</summary>
    internal AppHeadPolicy? AppHeads { get; init; }

    /// <summary>Sends requests of a frozen worker to its siblings, and trusts theirs.</summary>
    internal StallHandover? Handover { get; init; }

    public KestrelExchange CreateContext(IFeatureCollection contextFeatures) =>
        new(contextFeatures, _lifecycle, AppHeads);

    public Task ProcessRequestAsync(KestrelExchange exchange)
    {
        // First, so even a refusal's log line and answer carry the ID.
        _requestIds?.Assign(exchange);
        // HTTP/2's Connection: close is GOAWAY: the streams in flight finish, the client opens a new connection.
        if (_lifecycle.Draining && exchange.IsHttp2) exchange.CloseAfterResponse();
        if (_limits.Check(exchange) is { } refusal) return RefuseAsync(exchange, refusal);
        if (AppHeads?.Redirects is { } redirects && redirects.IsInternal(exchange.RawTarget))
            return redirects.RefuseOutsideAsync(exchange);
        // A static file is no Python request: it does not count towards --max-requests.
        if (Static?.TryServe(exchange) is { } served) return served;
        _lifecycle.CountRequest();
        if (exchange.IsTls) TlsSetup.Describe(exchange);
        Handover?.Receive(exchange);
        _forwarded.Apply(exchange);
        if (exchange.Scheme == "https") exchange.AddServerVariable("HTTPS", "on");
        var prefetch = RequestBodyPrefetch.For(exchange, _bodies);
        if (prefetch != null) return PrefetchThenDispatchAsync(exchange, prefetch);
        return Dispatch(exchange);
    }

    private async Task PrefetchThenDispatchAsync(KestrelExchange exchange, RequestBodyPrefetch prefetch)
    {
        using (prefetch)
        {
            if (await prefetch.ReadAsync(exchange).ConfigureAwait(false) is { } refusal)
            {
                if (refusal == RequestBodyPrefetch.ClientGone) exchange.AbortConnection();
                else await RefuseAsync(exchange, refusal).ConfigureAwait(false);
                return;
            }
            await Dispatch(exchange).ConfigureAwait(false);
        }
    }

    private Task Dispatch(KestrelExchange exchange)
    {
        if (Handover is { Stalled: true } handover) return handover.SendAsync(exchange);
        if (!_gateway.TryDispatch(exchange)) return RefuseBusyAsync(exchange);
        var completion = exchange.Completion;
        if (completion.IsCompletedSuccessfully && completion.Result.Outcome == ExchangeOutcome.Completed &&
            !exchange.HostFinishes)
            return Task.CompletedTask;
        return FinishAsync(exchange, completion);
    }

    private async Task FinishAsync(KestrelExchange exchange, Task<ExchangeResult> completion)
    {
        var result = await completion.ConfigureAwait(false);
        var appDone = result.Outcome is ExchangeOutcome.Completed or ExchangeOutcome.CompletedThenClose;
        if (exchange.Compressed is { } compressed)
        {
            var complete = await compressed.EndAsync(sendRest: appDone).ConfigureAwait(false);
            // The log and the metrics count what went on the wire.
            exchange.CountBodyBytes(compressed.CompressedBytes - exchange.BodyBytes);
            if (appDone && !complete) result = ExchangeResult.Aborted;
        }
        else if (exchange.Redirect is { } redirect)
        {
            if (appDone)
            {
                // Nothing of the app's body went out: the file is the whole response, and the stream is in step.
                await AppHeads!.Redirects!.ServeAsync(exchange, redirect).ConfigureAwait(false);
                return;
            }
            // The app raised after naming the file (logged): nothing went out yet, so the client can still be told.
            if (result.Outcome == ExchangeOutcome.Aborted && exchange.Timings.AppRaised)
                result = ExchangeResult.Plain(ServerAnswer.AppFailed);
        }
        switch (result.Outcome)
        {
            case ExchangeOutcome.Aborted:
                // What the app produced goes out first (a short body then a reset tells the client it is
                // incomplete, and shows why); a client that does not take it at once is not waited for.
                try
                {
                    var flush = exchange.ResponseBodyFeature.Writer.FlushAsync();
                    if (!flush.IsCompleted) await flush.AsTask().WaitAsync(TimeSpan.FromMilliseconds(200))
                        .ConfigureAwait(false);
                }
                catch (Exception) { } // the client is gone or slow: abort is all that is left
                exchange.AbortConnection();
                break;
            case ExchangeOutcome.CompletedThenClose:
                await exchange.ResponseBodyFeature.CompleteAsync().ConfigureAwait(false);
                // The truncated stream ended in step; on HTTP/2 the connection's other streams are unharmed.
                if (!exchange.IsHttp2) exchange.CloseAfterResponse();
                break;
            case ExchangeOutcome.Withdrawn:
                await Handover!.SendAsync(exchange).ConfigureAwait(false);
                break;
            case ExchangeOutcome.PlainAnswer:
                if (!await PlainResponse.WriteAsync(exchange, result.Answer!).ConfigureAwait(false))
                    exchange.AbortConnection();
                break;
        }
    }

    /// <summary>A request refused before the app (a limit, a malformed head or body): the stream may not be in
    /// step, so the connection closes after the answer (the refusal says so).</summary>
    private async Task RefuseAsync(KestrelExchange exchange, ServerAnswer refusal)
    {
        _log.LogInformation("{Method} {Target}: {Status} before the app ran: {Reason}",
            exchange.Method, exchange.RawTarget.Length > 200 ? exchange.RawTarget[..200] + "..." : exchange.RawTarget,
            refusal.Status, refusal.Reason);
        if (refusal.Status == 413 && exchange.IsHttp2) await DiscardSmallBodyAsync(exchange).ConfigureAwait(false);
        if (!await PlainResponse.WriteAsync(exchange, refusal).ConfigureAwait(false))
            exchange.AbortConnection();
    }

    /// <summary>
    /// An HTTP/2 client still sending the body of a refused request sees the stream end under it (the answer, then
    /// Kestrel's RST_STREAM NO_ERROR); some clients then report an error instead of the answer (curl 7.88: "Stream
    /// error in the HTTP/2 framing layer", about 1 request in 100). A body up to <see cref="DiscardLimit"/> is read
    /// and dropped first, for at most a second, as nginx discards a refused body; a larger one is not waited for.
    /// </summary>
    private static async Task DiscardSmallBodyAsync(KestrelExchange exchange)
    {
        if (exchange.DeclaredRequestLength is not (> 0 and <= DiscardLimit)) return;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var body = exchange.KestrelBody;
        try
        {
            while (true)
            {
                var read = await body.ReadAsync(deadline.Token).ConfigureAwait(false);
                body.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted || read.IsCanceled) return;
            }
        }
        catch (Exception) { } // slow, reset or malformed: answer anyway
    }

    private const long DiscardLimit = 64 << 10;

    private async Task RefuseBusyAsync(KestrelExchange exchange)
    {
        _log.LogWarning("Queue full ({Queued} waiting): 503 for {Method} {Target}",
            _gateway.Queued, exchange.Method, exchange.RawTarget);
        await PlainResponse.WriteAsync(exchange, ServerAnswer.ThreadsBusy).ConfigureAwait(false);
    }

    /// <summary>Kestrel is done with the request (its response complete): the one place every request passes,
    /// answered or not. The access log line is written here, for the app's answers and the server's own alike.
    /// </summary>
    public void DisposeContext(KestrelExchange context, Exception? exception)
    {
        if (context.HandedOver) return; // the sibling that answered it logs and counts it
        _metrics?.RequestDone(context);
        if (_accessLog != null && (context.ResponseStarted || !context.Aborted)) _accessLog.Log(context);
    }
}
