using System.Net.Sockets;

namespace SharpWsgi.Logging;

/// <summary>How messages reach the syslog daemon.</summary>
public enum SyslogTransport
{
    /// <summary>A unix socket of either kind: datagram tried first, then stream (what Python's SysLogHandler and
    /// glibc's syslog(3) do; /dev/log is a datagram socket under systemd and rsyslog).</summary>
    UnixAny,
    UnixDatagram,
    UnixStream,
    Udp,
    Tcp,
}

/// <summary>
/// --log-syslog-to, with gunicorn's spellings: unix://PATH[#dgram|#stream], udp://HOST[:PORT], tcp://HOST[:PORT]
/// (port 514 when left out; an IPv6 host in brackets).
/// </summary>
public sealed record SyslogAddress(SyslogTransport Transport, string PathOrHost, int Port)
{
    public const int DefaultPort = 514;

    public bool IsUnix => Transport is SyslogTransport.UnixAny or SyslogTransport.UnixDatagram
        or SyslogTransport.UnixStream;

    /// <summary>Null when <paramref name="text"/> is an address, else why not (for the settings registry).</summary>
    public static string? Validate(string text)
    {
        try
        {
            Parse(text);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    public static SyslogAddress Parse(string text)
    {
        const string expected = "expected unix://PATH, udp://HOST:PORT or tcp://HOST:PORT";
        if (text.StartsWith("unix://", StringComparison.Ordinal))
        {
            var rest = text["unix://".Length..];
            var hash = rest.LastIndexOf('#');
            var transport = SyslogTransport.UnixAny;
            if (hash >= 0)
            {
                transport = rest[(hash + 1)..] switch
                {
                    "dgram" => SyslogTransport.UnixDatagram,
                    "stream" => SyslogTransport.UnixStream,
                    _ => throw new FormatException($"'#{rest[(hash + 1)..]}' is not #dgram or #stream"),
                };
                rest = rest[..hash];
            }
            if (rest.Length == 0) throw new FormatException("unix:// needs a socket path, e.g. unix:///dev/log");
            return new SyslogAddress(transport, rest, 0);
        }
        SyslogTransport network;
        string hostPort;
        if (text.StartsWith("udp://", StringComparison.Ordinal))
            (network, hostPort) = (SyslogTransport.Udp, text["udp://".Length..]);
        else if (text.StartsWith("tcp://", StringComparison.Ordinal))
            (network, hostPort) = (SyslogTransport.Tcp, text["tcp://".Length..]);
        else throw new FormatException(expected);
        var (host, port) = SplitHostPort(hostPort, DefaultPort);
        return new SyslogAddress(network, host, port);
    }

    /// <summary>HOST, HOST:PORT, [IPv6] or [IPv6]:PORT; an empty host is localhost (as in gunicorn).</summary>
    internal static (string Host, int Port) SplitHostPort(string text, int defaultPort)
    {
        string host, portText = "";
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0) throw new FormatException($"'{text}' has no closing ']'");
            host = text[1..close];
            var after = text[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':') throw new FormatException($"'{text}': expected :PORT after ']'");
                portText = after[1..];
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            host = colon < 0 ? text : text[..colon];
            if (colon >= 0) portText = text[(colon + 1)..];
            if (host.Contains(':')) throw new FormatException($"'{text}': put an IPv6 address in brackets");
        }
        if (host.Length == 0) host = "localhost";
        var port = defaultPort;
        if (portText.Length > 0 &&
            (!portText.All(char.IsAsciiDigit) || !int.TryParse(portText, out port) || port is < 1 or > 65535))
            throw new FormatException($"'{portText}' is not a port number (1-65535)");
        return (host, port);
    }

    public SocketType SocketType => Transport is SyslogTransport.Tcp or SyslogTransport.UnixStream
        ? SocketType.Stream : SocketType.Dgram;

    public override string ToString() => Transport switch
    {
        SyslogTransport.UnixAny => "unix://" + PathOrHost,
        SyslogTransport.UnixDatagram => $"unix://{PathOrHost}#dgram",
        SyslogTransport.UnixStream => $"unix://{PathOrHost}#stream",
        SyslogTransport.Udp => $"udp://{HostForUri}:{Port}",
        _ => $"tcp://{HostForUri}:{Port}",
    };

    private string HostForUri => PathOrHost.Contains(':') ? $"[{PathOrHost}]" : PathOrHost;
}
