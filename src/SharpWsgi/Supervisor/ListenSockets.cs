using SharpWsgi.Python;
using System.Net;
using System.Net.Sockets;
using SharpWsgi.Configuration;
using SharpWsgi.Hosting;

namespace SharpWsgi.Supervisor;

/// <summary>
/// A listening socket the supervisor opened (or inherited from systemd / fd://N) and hands down to every
/// worker by descriptor number. With --reuse-port a TCP address is instead bound by each worker itself
/// (SO_REUSEPORT); the supervisor then only holds the port (bound, not listening) and passes the address.
/// </summary>
public sealed record ListenSocket(int Fd, string Url, string? ReusePortAddress, Socket? Socket, string? UnixPath,
    bool Tls = false);

public static class ListenSockets
{
    public static List<ListenSocket> Open(ServerSettings settings)
    {
        var result = new List<ListenSocket>();
        // systemd socket activation: descriptors 3.. when LISTEN_PID is us.
        if (Environment.GetEnvironmentVariable("LISTEN_PID") == Environment.ProcessId.ToString() &&
            int.TryParse(Environment.GetEnvironmentVariable("LISTEN_FDS"), out var count) && count > 0)
        {
            for (int fd = 3; fd < 3 + count; fd++) result.Add(Inherited(fd, "systemd", settings));
            Environment.SetEnvironmentVariable("LISTEN_PID", null);
            Environment.SetEnvironmentVariable("LISTEN_FDS", null);
            Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
            return result;
        }
        foreach (var bind in settings.Binds)
        {
            try { result.Add(OpenOne(bind, settings)); }
            catch (SocketException e)
            {
                foreach (var r in result) r.Socket?.Dispose();
                var reason = e.SocketErrorCode == SocketError.AddressAlreadyInUse
                    ? "the address is already in use (another server is listening there; " +
                      "stop it or choose another --bind)"
                    : e.Message;
                throw new StartupException($"Cannot listen on {bind}: {reason}.");
            }
        }
        return result;
    }

    /// <summary>
    /// --check-config: what a bind would listen on, checked as far as possible without binding (the live server
    /// may hold the port, and a check must not take it): the syntax, the host's address, a unix socket's
    /// directory. A port in use or a privileged port is not detected.
    /// </summary>
    public static string Describe(string bind, ServerSettings settings)
    {
        if (bind.StartsWith("fd://", StringComparison.Ordinal))
        {
            if (!int.TryParse(bind["fd://".Length..], out var fd) || fd < 0)
                throw new StartupException($"--bind {bind}: expected fd://N with a descriptor number.");
            return bind + " (an inherited descriptor)";
        }
        if (bind.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = Path.GetFullPath(bind["unix:".Length..]);
            var directory = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(directory))
                throw new StartupException($"Cannot listen on {bind}: no such directory {directory}.");
            return "unix:" + path;
        }
        var (address, tls) = ListenerScheme.OfBind(bind, settings);
        return Url(ListenAddress.Parse(address), tls);
    }

    private static ListenSocket OpenOne(string bind, ServerSettings settings)
    {
        if (bind.StartsWith("fd://", StringComparison.Ordinal))
        {
            if (!int.TryParse(bind["fd://".Length..], out var fd) || fd < 0)
                throw new StartupException($"--bind {bind}: expected fd://N with a descriptor number.");
            return Inherited(fd, bind, settings);
        }
        if (bind.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = Path.GetFullPath(bind["unix:".Length..]);
            if (File.Exists(path)) File.Delete(path); // a stale socket from an earlier run
            var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            unix.Bind(new UnixDomainSocketEndPoint(path));
            // gunicorn binds under --umask (default 0): 0777 less the mask. Connecting needs write permission, so
            // by default any local user may, and a proxy running as its own user (nginx's www-data) reaches it.
            // Set before listen(): no client can connect while the mode is still the process's umask's.
            File.SetUnixFileMode(path, (UnixFileMode)(0x1FF & ~(settings.Umask ?? 0)));
            unix.Listen(settings.Backlog);
            var fd = (int)unix.Handle;
            Libc.MakeInheritable(fd);
            return new ListenSocket(fd, "unix:" + path, null, unix, path);
        }
        var (address, tls) = ListenerScheme.OfBind(bind, settings);
        var endPoint = ListenAddress.Parse(address);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        if (settings.ReusePort)
        {
            // Hold the port (bound, not listening, so the kernel gives it no connections); workers bind it too.
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
            socket.Bind(endPoint);
            var held = (IPEndPoint)socket.LocalEndPoint!;
            return new ListenSocket(-1, Url(held, tls), ListenerScheme.ForWorker(Format(held), tls), socket, null,
                tls);
        }
        socket.Bind(endPoint);
        socket.Listen(settings.Backlog);
        var handle = (int)socket.Handle;
        Libc.MakeInheritable(handle);
        return new ListenSocket(handle, Url((IPEndPoint)socket.LocalEndPoint!, tls), null, socket, null, tls);
    }

    private static ListenSocket Inherited(int fd, string source, ServerSettings settings)
    {
        if (!Libc.IsOpen(fd)) throw new StartupException($"{source}: descriptor {fd} is not open in this process.");
        Libc.MakeInheritable(fd);
        string url;
        bool tls = false;
        try
        {
            using var probe = new Socket(new SafeSocketHandle(fd, ownsHandle: false));
            tls = ListenerScheme.OfInherited(probe.LocalEndPoint is IPEndPoint, settings);
            url = probe.LocalEndPoint switch
            {
                IPEndPoint ip => Url(ip, tls),
                UnixDomainSocketEndPoint u => "unix:" + u,
                var other => other?.ToString() ?? $"fd://{fd}",
            };
        }
        catch (SocketException) { throw new StartupException($"{source}: descriptor {fd} is not a socket."); }
        return new ListenSocket(fd, url, null, null, null, tls);
    }

    internal static string Format(IPEndPoint ep) =>
        ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";
    internal static string Url(IPEndPoint ep, bool tls) => (tls ? "https://" : "http://") + Format(ep);
}
