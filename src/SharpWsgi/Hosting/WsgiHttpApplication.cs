using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>
/// Kestrel's application: each request becomes a <see cref="KestrelExchange"/> queued to the gateway's
/// Python threads. Kestrel's threads never run Python and never block: they await the exchange.
/// </summary>
public sealed class WsgiHttpApplication : IHttpApplication<KestrelExchange>
{
    private static readonly byte[] BusyBody = Encoding.ASCII.GetBytes("Service Unavailable: all Python threads are busy\n");
    private readonly WsgiGateway _gateway;
    private readonly ILogger _log;
    private readonly WorkerLifecycle _lifecycle;

    public WsgiHttpApplication(WsgiGateway gateway, ILogger log, WorkerLifecycle lifecycle)
    {
        _gateway = gateway;
        _log = log;
        _lifecycle = lifecycle;
    }

    public KestrelExchange CreateContext(IFeatureCollection contextFeatures) => new(contextFeatures, _lifecycle);

    public Task ProcessRequestAsync(KestrelExchange exchange)
    {
        _lifecycle.CountRequest();
        if (!_gateway.TryDispatch(exchange)) return RefuseBusy(exchange);
        var completion = exchange.Completion;
        if (completion.IsCompletedSuccessfully && completion.Result == ExchangeOutcome.Completed) return Task.CompletedTask;
        return AwaitOutcome(exchange, completion);
    }

    private static async Task AwaitOutcome(KestrelExchange exchange, Task<ExchangeOutcome> completion)
    {
        switch (await completion.ConfigureAwait(false))
        {
            case ExchangeOutcome.Aborted:
                exchange.Abort();
                break;
            case ExchangeOutcome.CompletedThenClose:
                await exchange.Features.GetRequiredFeature<IHttpResponseBodyFeature>().CompleteAsync().ConfigureAwait(false);
                exchange.CloseAfterResponse();
                break;
        }
    }

    private Task RefuseBusy(KestrelExchange exchange)
    {
        _log.LogWarning("Queue full ({Queued} waiting): 503 for {Method} {Target}", _gateway.Queued, exchange.Method, exchange.RawTarget);
        exchange.SetResponseHead(503, null, new KeyValuePair<string, string>[]
        {
            new("Content-Type", "text/plain"), new("Content-Length", BusyBody.Length.ToString()), new("Retry-After", "1"),
        });
        if (exchange.IsHeadRequest) return Task.CompletedTask;
        return exchange.ResponseBody.WriteAsync(BusyBody).AsTask();
    }

    public void DisposeContext(KestrelExchange context, Exception? exception) { }
}
