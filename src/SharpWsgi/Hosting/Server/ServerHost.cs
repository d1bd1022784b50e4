using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting;

/// <summary>Thrown when the server cannot start (for example an address already in use); one paragraph.</summary>
public sealed class StartupException : Exception
{
    public StartupException(string message) : base(message) { }
}

/// <summary>
/// Kestrel wired to the gateway, and the worker's handle on it: start, stop accepting, pause, retire, stop. What is
/// wired lives next door: Kestrel's options (<see cref="KestrelSetup"/>, <see cref="TimeoutPolicy"/>), the
/// listeners (<see cref="ServerListeners"/>), each listener's connection middleware (<see cref="EdgeChain"/>) and the
/// request pipeline (<see cref="RequestPipeline"/>).
/// </summary>
public sealed class ServerHost
{
    private readonly KestrelServer _server;
    private readonly ServerListeners _listeners;
    private readonly WorkerLifecycle _lifecycle;
    private readonly EdgeChain _edge;

    private ServerHost(KestrelServer server, ServerListeners listeners, WorkerLifecycle lifecycle, EdgeChain edge)
    {
        _server = server;
        _listeners = listeners;
        _lifecycle = lifecycle;
        _edge = edge;
    }

    /// <summary>
    /// Starts Kestrel on the listeners the supervisor handed down: inherited descriptors, and with --reuse-port
    /// addresses this process binds itself with SO_REUSEPORT.
    /// </summary>
    public static Task<ServerHost> StartAsync(ServerSettings settings, WsgiGateway gateway,
        ILoggerFactory loggers, WorkerLifecycle lifecycle, IReadOnlyList<InheritedListener> inherited,
        IReadOnlyList<string> reusePortAddresses, AcceptBalance? balance, AccessLog? accessLog = null,
        WorkerMetrics? metrics = null, string? handoverKey = null)
    {
        var listeners = ServerListeners.FromSupervisor(settings, gateway, loggers, inherited, reusePortAddresses,
            balance);
        return StartAsync(settings, gateway, loggers, lifecycle, listeners, accessLog, metrics, handoverKey);
    }

    /// <summary>Starts Kestrel on the given listeners (the Hosting tests pass an in-memory transport's).</summary>
    internal static async Task<ServerHost> StartAsync(ServerSettings settings, WsgiGateway gateway,
        ILoggerFactory loggers, WorkerLifecycle lifecycle, ServerListeners listeners, AccessLog? accessLog,
        WorkerMetrics? metrics, string? handoverKey)
    {
        var timeouts = new TimeoutPolicy(settings);
        var options = KestrelSetup.Options(settings, timeouts, KestrelServices.Build(loggers));
        var edge = EdgeChain.Create(settings, timeouts, loggers, listeners.SocketWriteBuffer, accessLog, metrics);
        listeners.AddTo(options, edge);
        var bodies = RequestPipeline.BodyBuffering(settings, timeouts);
        var app = RequestPipeline.Compose(settings, gateway, loggers, lifecycle, bodies,
            RequestPipeline.Handover(listeners, gateway, handoverKey, loggers), accessLog, metrics);
        metrics?.StartGauges(gateway, listeners.Control, bodies.MemoryBudget);
        var server = new KestrelServer(Options.Create(options), listeners.Control, loggers);
        try
        {
            await server.StartAsync(app, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new StartupException($"The worker cannot listen: {e.Message}.");
        }
        return new ServerHost(server, listeners, lifecycle, edge);
    }

    /// <summary>
    /// Stops accepting and closes this process's copies of the inherited listening sockets, so once every process
    /// has let go, new clients are refused rather than queued.
    /// </summary>
    public Task StopAcceptingAsync() => _listeners.StopAcceptingAsync();

    /// <summary>Stops taking new connections for now (see <see cref="ListenerControl.Pause"/>).</summary>
    public void PauseAccepting() => _listeners.Control.Pause();
    public void ResumeAccepting() => _listeners.Control.Resume();

    /// <summary>
    /// Graceful retirement: stop accepting (the other workers go on accepting on the shared sockets), answer
    /// every further request on open connections with Connection: close, wait for the clients to go (at most
    /// the grace period), then stop.
    /// </summary>
    public async Task RetireAsync(TimeSpan grace, Action? stoppedAccepting = null)
    {
        var deadline = DateTime.UtcNow + grace;
        _lifecycle.StartDraining();
        await StopAcceptingAsync().ConfigureAwait(false);
        stoppedAccepting?.Invoke();
        while (_listeners.Control.OpenConnections > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(10).ConfigureAwait(false);
        var left = deadline - DateTime.UtcNow;
        await StopAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero).ConfigureAwait(false);
    }

    public async Task StopAsync(TimeSpan grace)
    {
        using var cts = new CancellationTokenSource(grace);
        try { await _server.StopAsync(cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        _edge.Dispose();
    }
}
