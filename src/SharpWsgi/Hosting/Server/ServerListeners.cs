using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting;

/// <summary>
/// Where a worker listens and what accepts there: the sockets the supervisor handed down (shared with the other
/// workers, accepted from only while this worker's Python runs: <see cref="ResponsiveListener"/>), the addresses it
/// binds itself with --reuse-port (balanced by the kernel), each with its <see cref="ListenerFacts"/>, and the
/// <see cref="ListenerControl"/> over all of them (stop, pause, the connection limit, the open count).
/// </summary>
internal sealed class ServerListeners
{
    private readonly List<Binding> _bindings;
    private readonly List<(int Fd, string Identity)> _inherited = new();

    private ServerListeners(List<Binding> bindings, ListenerControl control, long socketWriteBuffer)
    {
        _bindings = bindings;
        Control = control;
        SocketWriteBuffer = socketWriteBuffer;
        foreach (var binding in bindings)
            if (binding.Fd is int fd && DescribeFd(fd) is { } identity) _inherited.Add((fd, identity));
    }

    public ListenerControl Control { get; }

    /// <summary>The socket transport's write buffer (see <see cref="EdgeChain.Create"/>).</summary>
    public long SocketWriteBuffer { get; }

    /// <summary>The facts of the listeners shared with sibling workers (the ones a stalled worker hands requests
    /// back to).</summary>
    public IEnumerable<ListenerFacts> Shared => _bindings.Where(b => b.Fd != null).Select(b => b.Facts);

    /// <summary>The supervisor's sockets: descriptors handed down, and --reuse-port addresses to bind here.</summary>
    public static ServerListeners FromSupervisor(ServerSettings settings, WsgiGateway gateway, ILoggerFactory loggers,
        IReadOnlyList<InheritedListener> inherited, IReadOnlyList<string> reusePortAddresses, AcceptBalance? balance)
    {
        var bindings = new List<Binding>();
        foreach (var listener in inherited)
            bindings.Add(new Binding(new FileHandleEndPoint((ulong)listener.Fd, FileHandleType.Auto), listener.Fd,
                ListenerFacts.For(settings, listener.Tls)));
        foreach (var handed in reusePortAddresses)
        {
            var (address, tls) = ListenerScheme.FromSupervisor(handed);
            bindings.Add(new Binding(ListenAddress.Parse(address), null, ListenerFacts.For(settings, tls)));
        }

        var transportOptions = new SocketTransportOptions { Backlog = settings.Backlog };
        if (reusePortAddresses.Count > 0) transportOptions.CreateBoundListenSocket = BindReusingPort;
        var kestrelSockets = new SocketTransportFactory(Options.Create(transportOptions), loggers);
        var sockets = new ResponsiveListenerFactory(kestrelSockets, transportOptions, gateway.WaitResponsive,
            () => gateway.LastSignOfLife, loggers);
        // Balancing matters only for shared sockets; SO_REUSEPORT sockets are balanced by the kernel.
        var shared = reusePortAddresses.Count == 0 ? balance : null;
        var control = new ListenerControl(sockets, shared, settings.MaxConnections);
        if (shared != null) sockets.IsAhead = () => shared.IsAhead(control.OpenConnections);
        return new ServerListeners(bindings, control, transportOptions.MaxWriteBufferSize ?? 0);
    }

    /// <summary>Listeners on another transport (the in-memory one of the Hosting tests): each end point is bound by
    /// <paramref name="transport"/>, with the facts given.</summary>
    public static ServerListeners Over(IConnectionListenerFactory transport,
        IReadOnlyList<(EndPoint EndPoint, ListenerFacts Facts)> endPoints, int maxConnections = 0) =>
        new(endPoints.Select(e => new Binding(e.EndPoint, null, e.Facts)).ToList(),
            new ListenerControl(transport, null, maxConnections), new SocketTransportOptions().MaxWriteBufferSize ?? 0);

    /// <summary>Adds every listener to Kestrel's options, each with the edge its facts call for.</summary>
    public void AddTo(KestrelServerOptions options, EdgeChain edge)
    {
        foreach (var binding in _bindings)
            options.Listen(binding.EndPoint, listen => edge.Apply(listen, binding.Facts));
    }

    /// <summary>
    /// Stops accepting and closes this process's copies of the inherited listening sockets (Kestrel does not close a
    /// descriptor it was handed), so once every process has let go, new clients are refused rather than queued.
    /// </summary>
    public async Task StopAcceptingAsync()
    {
        await Control.StopAcceptingAsync().ConfigureAwait(false);
        foreach (var (fd, identity) in _inherited)
            if (DescribeFd(fd) == identity) Libc.Close(fd); // same socket still: not a number reused since
        _inherited.Clear();
    }

    private static string? DescribeFd(int fd)
    {
        try { return new FileInfo($"/proc/self/fd/{fd}").LinkTarget; }
        catch (IOException) { return null; }
    }

    private static Socket BindReusingPort(EndPoint endpoint)
    {
        if (endpoint is not IPEndPoint ip) return SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
        socket.Bind(ip);
        return socket;
    }

    /// <param name="Fd">The descriptor handed down, for a shared socket; null for one of this worker's own.</param>
    private sealed record Binding(EndPoint EndPoint, int? Fd, ListenerFacts Facts);
}

/// <summary>A --bind address (HOST:PORT, [IPv6]:PORT, *:PORT, localhost:PORT) as an IP end point.</summary>
public static class ListenAddress
{
    public static IPEndPoint Parse(string bind)
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
}
