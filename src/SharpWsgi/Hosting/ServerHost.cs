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

namespace SharpWsgi.Hosting;

/// <summary>Thrown when the server cannot start (for example an address already in use); one paragraph.</summary>
public sealed class StartupException : Exception
{
    public StartupException(string message) : base(message) { }
}

/// <summary>Kestrel wired to the gateway: listeners, limits, and the request entry point.</summary>
public sealed class ServerHost : IAsyncDisposable
{
    private readonly KestrelServer _server;
    private readonly List<string> _unixSockets = new();

    private ServerHost(KestrelServer server) => _server = server;

    public IReadOnlyCollection<string> Addresses =>
        _server.Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? new List<string>();

    public static async Task<ServerHost> StartAsync(ServerSettings settings, WsgiGateway gateway, ILoggerFactory loggers)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        var provider = services.BuildServiceProvider();

        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            AllowSynchronousIO = false,
            ApplicationServices = provider,
            // PEP 3333 strings are latin-1: header bytes map 1:1 to code points both ways.
            RequestHeaderEncodingSelector = _ => Encoding.Latin1,
            ResponseHeaderEncodingSelector = _ => Encoding.Latin1,
        };
        options.Limits.MaxRequestBodySize = null; // streamed to the app; no buffering, so no size cap by default
        options.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(Math.Max(0.001, settings.KeepAliveSeconds));

        var host = new ServerHost(null!);
        foreach (var bind in settings.Binds) host.AddListener(options, bind);

        var transport = new SocketTransportFactory(
            Options.Create(new SocketTransportOptions { Backlog = settings.Backlog }), loggers);
        var server = new KestrelServer(Options.Create(options), transport, loggers);
        var app = new WsgiHttpApplication(gateway, loggers.CreateLogger("sharpwsgi.http"));
        try
        {
            await server.StartAsync(app, CancellationToken.None).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            var reason = e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException || e.Message.Contains("in use")
                ? "the address is already in use (another server is listening there; stop it or choose another --bind)"
                : e.Message;
            throw new StartupException($"Cannot listen on {string.Join(", ", settings.Binds)}: {reason}.");
        }
        catch (SocketException e)
        {
            throw new StartupException($"Cannot listen on {string.Join(", ", settings.Binds)}: {e.Message}.");
        }
        var started = new ServerHost(server);
        started._unixSockets.AddRange(host._unixSockets);
        return started;
    }

    private void AddListener(KestrelServerOptions options, string bind)
    {
        if (bind.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = bind["unix:".Length..];
            if (path.Length == 0) throw new StartupException($"--bind {bind}: the unix socket path is empty.");
            // A socket file left by a previous run would make the bind fail (as gunicorn, remove a stale socket).
            if (File.Exists(path) && (File.GetAttributes(path) & FileAttributes.Normal) == 0) TryDelete(path);
            options.ListenUnixSocket(path);
            _unixSockets.Add(path);
            return;
        }
        var (endPoint, isLocalhost) = ParseEndPoint(bind);
        if (isLocalhost && endPoint.Port != 0) options.ListenLocalhost(endPoint.Port);
        else options.Listen(endPoint);
    }

    public static (IPEndPoint EndPoint, bool IsLocalhost) ParseEndPoint(string bind)
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
            return (new IPEndPoint(IPAddress.Loopback, port), true);
        if (IPAddress.TryParse(host, out var address)) return (new IPEndPoint(address, port), false);
        try
        {
            var resolved = Dns.GetHostAddresses(host);
            if (resolved.Length == 0) throw new StartupException($"--bind {bind}: {host} has no address.");
            return (new IPEndPoint(resolved[0], port), false);
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

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public async Task StopAsync(TimeSpan grace)
    {
        using var cts = new CancellationTokenSource(grace);
        try { await _server.StopAsync(cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        foreach (var path in _unixSockets) TryDelete(path);
    }

    public async ValueTask DisposeAsync()
    {
        _server.Dispose();
        await Task.CompletedTask;
    }
}
