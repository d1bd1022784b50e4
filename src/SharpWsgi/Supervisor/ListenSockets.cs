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
public sealed record ListenSocket(int Fd, string Url, string? ReusePortAddress, Socket? Socket, string? UnixPath);

public static class ListenSockets
{
    public static List<ListenSocket> Open(ServerSettings settings)
    {
        var result = new List<ListenSocket>();
        // systemd socket activation: descriptors 3.. when LISTEN_PID is us.
        if (Environment.GetEnvironmentVariable("LISTEN_PID") == Environment.ProcessId.ToString() &&
            int.TryParse(Environment.GetEnvironmentVariable("LISTEN_FDS"), out var count) && count > 0)
        {
            for (int fd = 3; fd < 3 + count; fd++) result.Add(Inherited(fd, "systemd"));
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

    private static ListenSocket OpenOne(string bind, ServerSettings settings)
    {
        if (bind.StartsWith("fd://", StringComparison.Ordinal))
        {
            if (!int.TryParse(bind["fd://".Length..], out var fd) || fd < 0)
                throw new StartupException($"--bind {bind}: expected fd://N with a descriptor number.");
            return Inherited(fd, bind);
        }
        if (bind.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = Path.GetFullPath(bind["unix:".Length..]);
            if (File.Exists(path)) File.Delete(path); // a stale socket from an earlier run
            var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            unix.Bind(new UnixDomainSocketEndPoint(path));
            unix.Listen(settings.Backlog);
            var fd = (int)unix.Handle;
            Libc.MakeInheritable(fd);
            return new ListenSocket(fd, "unix:" + path, null, unix, path);
        }
        var endPoint = ServerHost.ParseEndPoint(bind);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        if (settings.ReusePort)
        {
            // Hold the port (bound, not listening, so the kernel gives it no connections); workers bind it too.
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
            socket.Bind(endPoint);
            var held = (IPEndPoint)socket.LocalEndPoint!;
            return new ListenSocket(-1, Url(held), Format(held), socket, null);
        }
        socket.Bind(endPoint);
        socket.Listen(settings.Backlog);
        var handle = (int)socket.Handle;
        Libc.MakeInheritable(handle);
        return new ListenSocket(handle, Url((IPEndPoint)socket.LocalEndPoint!), null, socket, null);
    }

    private static ListenSocket Inherited(int fd, string source)
    {
        if (!Libc.IsOpen(fd)) throw new StartupException($"{source}: descriptor {fd} is not open in this process.");
        Libc.MakeInheritable(fd);
        string url;
        try
        {
            using var probe = new Socket(new SafeSocketHandle(fd, ownsHandle: false));
            url = probe.LocalEndPoint switch
            {
                IPEndPoint ip => Url(ip),
                UnixDomainSocketEndPoint u => "unix:" + u,
                var other => other?.ToString() ?? $"fd://{fd}",
            };
        }
        catch (SocketException) { throw new StartupException($"{source}: descriptor {fd} is not a socket."); }
        return new ListenSocket(fd, url, null, null, null);
    }

    private static string Format(IPEndPoint ep) =>
        ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";
    private static string Url(IPEndPoint ep) => "http://" + Format(ep);
}
