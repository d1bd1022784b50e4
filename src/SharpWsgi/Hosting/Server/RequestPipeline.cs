using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting;

/// <summary>
/// The request pipeline put together from the settings: Kestrel's application (<see cref="WsgiHttpApplication"/>)
/// with its body read-ahead, limits, forwarded headers, request IDs, static files and stall handover.
/// </summary>
internal static class RequestPipeline
{
    public static BodyBufferingOptions BodyBuffering(ServerSettings settings, TimeoutPolicy timeouts) => new()
    {
        MemoryLimit = settings.BodyBufferSize,
        SpoolLimit = settings.BodySpoolSize,
        TempDirectory = settings.TempDirectory,
        MemoryBudget = new ByteBudget(Math.Max(settings.BodyBufferTotal, settings.BodyBufferSize)),
        IdleTimeout = timeouts.BodyIdle,
    };

    /// <param name="handover">Null where no sibling shares this worker's sockets.</param>
    public static WsgiHttpApplication Compose(ServerSettings settings, WsgiGateway gateway, ILoggerFactory loggers,
        WorkerLifecycle lifecycle, BodyBufferingOptions bodies, StallHandover? handover, AccessLog? accessLog,
        WorkerMetrics? metrics)
    {
        var forwarded = new ForwardedHeaders(settings, loggers.CreateLogger("sharpwsgi.forwarded"));
        // IDs cost a string per request: made only where something shows them.
        var requestIds = accessLog != null || settings.RequestIdHeader || settings.JsonLogs
            ? new RequestIds(forwarded, settings.RequestIdHeader) : null;
        return new WsgiHttpApplication(gateway, loggers.CreateLogger("sharpwsgi.http"), lifecycle, bodies,
            new RequestLimits(settings), forwarded, accessLog, requestIds, metrics)
        {
            Static = StaticFiles.Create(settings, lifecycle, loggers.CreateLogger("sharpwsgi.static")),
            AppHeads = AppHeadPolicy.Create(settings, loggers),
            Handover = handover,
        };
    }

    /// <summary>Requests of a frozen worker go to its siblings through the sockets they share; a worker with only
    /// --reuse-port sockets of its own has none.</summary>
    public static StallHandover? Handover(ServerListeners listeners, WsgiGateway gateway, string? key,
        ILoggerFactory loggers)
    {
        var shared = listeners.Shared.ToList();
        if (shared.Count == 0) return null;
        // A relayed request carries no PROXY header: behind the PROXY protocol such requests get a 503 instead.
        var behindProxyProtocol = shared.Any(facts => facts.ProxyProtocol != ProxyProtocolMode.Off);
        return new StallHandover(gateway, key, behindProxyProtocol, loggers.CreateLogger("sharpwsgi.handover"));
    }
}
