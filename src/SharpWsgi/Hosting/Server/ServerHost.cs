using SharpWsgi.Python;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;

namespace SharpWsgi.Hosting;

/// <summary>Thrown when the server cannot start (for example an address already in use); one paragraph.</summary>
public sealed class StartupException : Exception
{
    public StartupException(string message) : base(message) { }
}

/// <summary>A listening descriptor handed down by the supervisor, and whether it speaks TLS.</summary>
public readonly record struct InheritedListener(int Fd, bool Tls);

/// <summary>Kestrel wired to the gateway: listeners (TLS, HTTP/2, PROXY protocol), limits, and the request entry
/// point.</summary>
public sealed class ServerHost
{
    private readonly KestrelServer _server;
    private readonly ListenerControl _listeners;
    private readonly WorkerLifecycle _lifecycle;
    private readonly DeliveryWatchdog? _watchdog;

    private ServerHost(KestrelServer server, ListenerControl listeners, WorkerLifecycle lifecycle,
        DeliveryWatchdog? watchdog)
    {
        _server = server;
        _listeners = listeners;
        _lifecycle = lifecycle;
        _watchdog = watchdog;
    }

    /// <summary>
    /// Stops accepting and closes this process's copies of the inherited listening sockets (Kestrel does not close a
    /// descriptor it was handed), so once every process has let go, new clients are refused rather than queued.
    /// </summary>
    public async Task StopAcceptingAsync()
    {
        await _listeners.StopAcceptingAsync().ConfigureAwait(false);
        foreach (var (fd, identity) in _inherited)
            if (DescribeFd(fd) == identity) Libc.Close(fd); // same socket still: not a number reused since
        _inherited.Clear();
    }

    private readonly List<(int Fd, string Identity)> _inherited = new();

    /// <summary>Stops taking new connections for now (see <see cref="ListenerControl.Pause"/>).</summary>
    public void PauseAccepting() => _listeners.Pause();
    public void ResumeAccepting() => _listeners.Resume();

    private static string? DescribeFd(int fd)
    {
        try { return new FileInfo($"/proc/self/fd/{fd}").LinkTarget; }
        catch (IOException) { return null; }
    }

    /// <summary>
    /// Starts Kestrel on the listeners the supervisor handed down: inherited descriptors, and with --reuse-port
    /// addresses this process binds itself with SO_REUSEPORT.
    /// </summary>
    public static async Task<ServerHost> StartAsync(ServerSettings settings, WsgiGateway gateway,
        ILoggerFactory loggers, WorkerLifecycle lifecycle, IReadOnlyList<InheritedListener> inherited,
        IReadOnlyList<string> reusePortAddresses, AcceptBalance? balance, AccessLog? accessLog = null,
        Metrics.WorkerMetrics? metrics = null, string? handoverKey = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        KestrelServices.AddTo(services);
        var provider = services.BuildServiceProvider();

        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            AllowSynchronousIO = false,
            ApplicationServices = provider,
            // PEP 3333 strings are latin-1: header bytes map 1:1 to code points both ways. Content-Length keeps
            // Kestrel's own byte parser: with an encoding Kestrel decodes it into 20 chars (a longer value aborts
            // the connection with a logged stack trace) and parses white space (VT, FF) around the digits.
            RequestHeaderEncodingSelector = static name => IsContentLength(name) ? null : Encoding.Latin1,
            ResponseHeaderEncodingSelector = _ => Encoding.Latin1,
        };
        options.Limits.MaxRequestBodySize = null; // spooled or streamed past the memory buffer: no size cap by default
        // A Content-Length body up to --body-buffer-size waits in the connection's input pipe: it must fit.
        options.Limits.MaxRequestBufferSize = Math.Max(1 << 20, settings.BodyBufferSize + (64 << 10));
        // The in-memory part of the elastic response buffer: flushes complete at once until this much waits.
        options.Limits.MaxResponseBufferSize = Math.Max(64 << 10, settings.ResponseBufferSize);
        var grace = TimeSpan.FromSeconds(Math.Max(1.001, settings.MinRateGrace)); // Kestrel needs more than 1 s
        options.Limits.MinRequestBodyDataRate =
            settings.MinUploadRate > 0 ? new MinDataRate(settings.MinUploadRate, grace) : null;
        options.Limits.MinResponseDataRate =
            settings.MinDownloadRate > 0 ? new MinDataRate(settings.MinDownloadRate, grace) : null;
        options.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(Math.Max(0.001, settings.KeepAliveSeconds));
        options.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(Math.Max(0.001, settings.HeaderTimeout));
        options.Limits.Http2.MaxStreamsPerConnection = settings.Http2MaxConcurrentStreams;
        options.Limits.Http2.InitialStreamWindowSize = (int)Math.Clamp(settings.Http2StreamWindow, 65535, 1 << 30);
        options.Limits.Http2.InitialConnectionWindowSize = (int)Math.Clamp(
            Math.Max(settings.Http2ConnectionWindow, settings.Http2StreamWindow), 65535, 1 << 30);
        // h2c requests say ":scheme: http" on a connection Kestrel is told is HTTP/2 by ALPN (CleartextHttp2); the
        // scheme the app sees is decided by the connection itself (KestrelExchange.Scheme), not by this header.
        options.AllowAlternateSchemes = true;
        RequestLimits.Configure(options, settings);

        var tls = TlsSetup.Load(settings);
        var proxyLog = loggers.CreateLogger("sharpwsgi.proxy");
        // Kestrel's own 400s reach the access log and the metrics through its bad-request log event.
        KestrelRefusals? refusals = null;
        if ((accessLog != null || metrics != null) && loggers is ErrorLogProvider errorLog)
        {
            refusals = new KestrelRefusals(accessLog, metrics);
            errorLog.KestrelRefusal = refusals.Record;
        }
        var transportOptions = new SocketTransportOptions { Backlog = settings.Backlog };
        // Only where a file the server sends can use it: otherwise every connection keeps Kestrel's own sender.
        var sendfile = settings.ServesFiles && settings.Sendfile
            ? new SendfileOptions(transportOptions.MaxWriteBufferSize ?? 0, settings.MinDownloadRate, grace,
                loggers.CreateLogger("sharpwsgi.static"),
                metrics == null ? null : n => metrics.Add(Metrics.MetricsTable.StaticSendfileBytes, n))
            : null;
        // Kestrel's MinResponseDataRate above stays as a backstop, but it counts bytes written into its buffer, not
        // bytes the client took: the watchdog is what bounds a client that stops reading.
        var watchdog = DeliveryWatchdog.Create(
            new DeliveryLimits(settings.SendTimeout, settings.MinDownloadRate, settings.MinRateGrace),
            loggers.CreateLogger("sharpwsgi.delivery"),
            metrics == null ? null : rule => metrics.Count(rule == DeliveryRuleBroken.SendTimeout
                ? Metrics.MetricsTable.SlowClientsSendTimeout : Metrics.MetricsTable.SlowClientsMinRate));
        void Configure(ListenOptions listen, bool useTls)
        {
            // Outermost: it only reads the socket's TCP_INFO, and watches the connection's whole life.
            if (watchdog != null) listen.Use(watchdog.Middleware);
            // First, so it sits on the socket itself (the PROXY header and h2c sniffing read through it).
            if (sendfile != null && !useTls) listen.Use(SendfileTransport.Middleware(sendfile));
            // Order is the order on the wire: PROXY header, then TLS, then HTTP.
            if (settings.ProxyProtocol != "off") listen.Use(ProxyProtocol.Middleware(settings, proxyLog));
            if (refusals != null) listen.Use(refusals.Middleware);
            if (useTls)
            {
                listen.Protocols = settings.Http2 ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
                listen.UseHttps(tls!.AdapterOptions(settings.HeaderTimeout));
            }
            else if (settings.Http2)
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.Use(CleartextHttp2.Middleware(TimeSpan.FromSeconds(Math.Max(0.001, settings.HeaderTimeout))));
            }
            else listen.Protocols = HttpProtocols.Http1;
            // Last: it reads the plain HTTP/1 bytes (after the PROXY header and TLS) and needs the protocol choice.
            listen.Use(StrictContentLength.Middleware);
        }
        foreach (var listener in inherited)
        {
            if (listener.Tls && tls == null)
                throw new StartupException("A TLS listener was handed down but --certfile is not set.");
            options.ListenHandle((ulong)listener.Fd, listen => Configure(listen, listener.Tls));
        }
        foreach (var address in reusePortAddresses)
        {
            var useTls = address.StartsWith("https://", StringComparison.Ordinal);
            options.Listen(ParseEndPoint(useTls ? address["https://".Length..] : address),
                listen => Configure(listen, useTls));
        }

        if (reusePortAddresses.Count > 0)
            transportOptions.CreateBoundListenSocket = endpoint =>
            {
                if (endpoint is not IPEndPoint ip)
                    return SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
                socket.Bind(ip);
                return socket;
            };
        // Balancing matters only for shared sockets; SO_REUSEPORT sockets are balanced by the kernel.
        // Shared sockets are accepted from only while this worker's Python runs (ResponsiveListener).
        var kestrelSockets = new SocketTransportFactory(Options.Create(transportOptions), loggers);
        var sockets = new ResponsiveListenerFactory(kestrelSockets, transportOptions, gateway.WaitResponsive,
            () => gateway.LastSignOfLife, loggers);
        var listeners = new ListenerControl(sockets,
            reusePortAddresses.Count == 0 ? balance : null, settings.MaxConnections);
        if (balance != null && reusePortAddresses.Count == 0)
            sockets.IsAhead = () => balance.IsAhead(listeners.OpenConnections);
        var server = new KestrelServer(Options.Create(options), listeners, loggers);
        var bodies = new BodyBufferingOptions
        {
            MemoryLimit = settings.BodyBufferSize,
            SpoolLimit = settings.BodySpoolSize,
            TempDirectory = settings.TempDirectory,
            MemoryBudget = new ByteBudget(Math.Max(settings.BodyBufferTotal, settings.BodyBufferSize)),
            IdleTimeout = TimeSpan.FromSeconds(Math.Max(0, settings.SendTimeout)),
        };
        var forwarded = new ForwardedHeaders(settings, loggers.CreateLogger("sharpwsgi.forwarded"));
        // IDs cost a string per request: made only where something shows them.
        var requestIds = accessLog != null || settings.RequestIdHeader || settings.JsonLogs
            ? new RequestIds(forwarded, settings.RequestIdHeader) : null;
        var app = new WsgiHttpApplication(gateway, loggers.CreateLogger("sharpwsgi.http"), lifecycle, bodies,
            new RequestLimits(settings), forwarded, accessLog, requestIds, metrics)
        {
            Static = StaticFiles.Create(settings, lifecycle, loggers.CreateLogger("sharpwsgi.static")),
            AppHeads = AppHeadPolicy.Create(settings, loggers),
            // Siblings share the sockets handed down; a worker with only --reuse-port sockets of its own has none.
            Handover = inherited.Count > 0
                ? new StallHandover(gateway, handoverKey, settings.ProxyProtocol != "off",
                    loggers.CreateLogger("sharpwsgi.handover"))
                : null,
        };
        metrics?.StartGauges(gateway, listeners, bodies.MemoryBudget);
        try
        {
            await server.StartAsync(app, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new StartupException($"The worker cannot listen: {e.Message}.");
        }
        var host = new ServerHost(server, listeners, lifecycle, watchdog);
        foreach (var listener in inherited)
            if (DescribeFd(listener.Fd) is { } identity) host._inherited.Add((listener.Fd, identity));
        return host;
    }

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
        while (_listeners.OpenConnections > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(10).ConfigureAwait(false);
        var left = deadline - DateTime.UtcNow;
        await StopAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero).ConfigureAwait(false);
    }

    private static bool IsContentLength(string name) =>
        name.Equals(Microsoft.Net.Http.Headers.HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase);

    public static IPEndPoint ParseEndPoint(string bind)
    {
        string host;
        int port = 8000;
        if (bind.StartsWith('['))
        {
            var end = bind.IndexOf(']');
            if (end < 0) throw new StartupException($"--bind {bind}: missing ']' after the IPv6 address.");
            host = bind[1..end];
            var rest = bind[(end + 1)..];
            if (rest.StartsWith(':')) port = ParsePort(bind, rest[1..]);
            else if (rest.Length > 0) throw new StartupException($"--bind {bind}: expected [IPv6]:PORT.");
        }
        else
        {
            var colon = bind.LastIndexOf(':');
            if (colon >= 0) { host = bind[..colon]; port = ParsePort(bind, bind[(colon + 1)..]); }
            else host = bind;
        }
        if (host.Length == 0 || host == "*") host = "0.0.0.0";
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return new IPEndPoint(IPAddress.Loopback, port);
        if (IPAddress.TryParse(host, out var address)) return new IPEndPoint(address, port);
        try
        {
            var resolved = Dns.GetHostAddresses(host);
            if (resolved.Length == 0) throw new StartupException($"--bind {bind}: {host} has no address.");
            return new IPEndPoint(resolved[0], port);
        }
        catch (SocketException e)
        {
            throw new StartupException($"--bind {bind}: cannot resolve {host}: {e.Message}.");
        }
    }

    private static int ParsePort(string bind, string text)
    {
        if (!int.TryParse(text, out var port) || port < 0 || port > 65535 || !text.All(char.IsAsciiDigit))
            throw new StartupException($"--bind {bind}: '{text}' is not a port number (0-65535).");
        return port;
    }

    public async Task StopAsync(TimeSpan grace)
    {
        using var cts = new CancellationTokenSource(grace);
        try { await _server.StopAsync(cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        _watchdog?.Dispose();
    }
}
