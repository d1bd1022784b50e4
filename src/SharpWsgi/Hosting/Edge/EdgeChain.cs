using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Logging;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting;

/// <summary>
/// The connection middleware of every listener, in wire order, built once per worker: the delivery watchdog, the
/// sendfile transport, the PROXY header, Kestrel's refusals, TLS or h2c sniffing, then strict Content-Length.
/// <see cref="Apply"/> puts on one listener what its <see cref="ListenerFacts"/> call for.
/// </summary>
public sealed class EdgeChain : IDisposable
{
    private readonly TimeoutPolicy _timeouts;
    private readonly DeliveryWatchdog? _watchdog;
    private readonly SendfileOptions? _sendfile;
    private readonly TrustedPeers _proxyPeers;
    private readonly ILogger _proxyLog;
    private readonly KestrelRefusals? _refusals;
    private readonly TlsSetup? _tls;

    private EdgeChain(TimeoutPolicy timeouts, DeliveryWatchdog? watchdog, SendfileOptions? sendfile,
        TrustedPeers proxyPeers, ILogger proxyLog, KestrelRefusals? refusals, TlsSetup? tls)
    {
        _timeouts = timeouts;
        _watchdog = watchdog;
        _sendfile = sendfile;
        _proxyPeers = proxyPeers;
        _proxyLog = proxyLog;
        _refusals = refusals;
        _tls = tls;
    }

    /// <param name="socketWriteBuffer">The socket transport's write buffer: the sendfile transport's pipe pauses
    /// Kestrel's flushes exactly where the transport's own would.</param>
    public static EdgeChain Create(ServerSettings settings, TimeoutPolicy timeouts, ILoggerFactory loggers,
        long socketWriteBuffer, AccessLog? accessLog = null, WorkerMetrics? metrics = null)
    {
        // Kestrel's MinResponseDataRate stays as a backstop, but it counts bytes written into its buffer, not bytes
        // the client took: the watchdog is what bounds a client that stops reading.
        var watchdog = DeliveryWatchdog.Create(timeouts.Delivery, loggers.CreateLogger("sharpwsgi.delivery"),
            metrics == null ? null : rule => metrics.Count(rule == DeliveryRuleBroken.SendTimeout
                ? MetricsTable.SlowClientsSendTimeout : MetricsTable.SlowClientsMinRate));
        // Built when a cleartext listener would use it (TLS listeners never do).
        var sendfile = ListenerFacts.For(settings, tls: false).Sendfile
            ? new SendfileOptions(socketWriteBuffer, settings.MinDownloadRate, timeouts.RateGrace,
                loggers.CreateLogger("sharpwsgi.static"),
                metrics == null ? null : n => metrics.Add(MetricsTable.StaticSendfileBytes, n))
            : null;
        // Kestrel's own 400s reach the access log and the metrics through its bad-request log event.
        KestrelRefusals? refusals = null;
        if ((accessLog != null || metrics != null) && loggers is ErrorLogProvider errorLog)
        {
            refusals = new KestrelRefusals(accessLog, metrics);
            errorLog.KestrelRefusal = refusals.Record;
        }
        return new EdgeChain(timeouts, watchdog, sendfile, new TrustedPeers(settings.ProxyAllowFrom),
            loggers.CreateLogger("sharpwsgi.proxy"), refusals, TlsSetup.Load(settings));
    }

    /// <summary>Whether TLS listeners can be served (--certfile given).</summary>
    public bool HasCertificate => _tls != null;

    /// <summary>Adds the listener's middleware in the order its bytes arrive.</summary>
    public void Apply(ListenOptions listen, ListenerFacts facts)
    {
        if (facts.Tls && _tls == null)
            throw new StartupException("A TLS listener was handed down but --certfile is not set.");
        // Outermost: it only reads the socket's TCP_INFO, and watches the connection's whole life.
        if (_watchdog != null) listen.Use(_watchdog.Middleware);
        // First on the bytes, so it sits on the socket itself (the PROXY header and h2c sniffing read through it).
        if (facts.Sendfile && _sendfile != null) listen.Use(SendfileTransport.Middleware(_sendfile));
        if (facts.ProxyProtocol != ProxyProtocolMode.Off)
            listen.Use(ProxyProtocol.Middleware(facts.ProxyProtocol, _proxyPeers, _timeouts.RequestHead, _proxyLog));
        // After the PROXY header (its peer is the client), before TLS and HTTP.
        if (_refusals != null) listen.Use(_refusals.Middleware);
        listen.Protocols = facts.Protocols;
        if (facts.Tls) listen.UseHttps(_tls!.AdapterOptions(_timeouts.TlsHandshake));
        else if (facts.Http2 == Http2Mode.CleartextPreface)
            listen.Use(CleartextHttp2.Middleware(_timeouts.RequestHead));
        // Last: it reads the plain HTTP/1 bytes (after the PROXY header and TLS) and needs the protocol choice.
        listen.Use(StrictContentLength.Middleware);
    }

    /// <summary>Stops the watchdog's timer (the server has stopped).</summary>
    public void Dispose() => _watchdog?.Dispose();
}
