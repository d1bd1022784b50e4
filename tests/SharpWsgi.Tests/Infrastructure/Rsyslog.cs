namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// Debian's rsyslogd in the foreground with a generated config: a unix datagram socket in its own directory
/// (imuxsock), UDP and TCP on 127.0.0.1 at ports the kernel picks (imudp, imtcp), every message written to a file
/// as "pri|facility|severity|tag|programname|procid|msg". Not the system's /dev/log, and its own pid file.
/// </summary>
public sealed class Rsyslog : IDisposable
{
    private readonly ExternalServer _daemon;
    public string Socket { get; }
    public int UdpPort { get; }
    public int TcpPort { get; }
    private string Messages => Path.Combine(_daemon.Directory, "messages.log");

    private Rsyslog(ExternalServer daemon, string socket, int udpPort, int tcpPort)
    {
        _daemon = daemon;
        Socket = socket;
        UdpPort = udpPort;
        TcpPort = tcpPort;
    }

    // The line rsyslog writes per message: what it parsed out of it, '|' between the fields (%msg% last).
    private const string Fields =
        "%pri%|%syslogfacility-text%|%syslogseverity-text%|%syslogtag%|%programname%|%procid%|%msg%\\n";

    public static Rsyslog Start()
    {
        var dir = ExternalServer.NewDirectory("rsyslog");
        var socket = Path.Combine(dir, "log.sock");
        var tcpPortFile = Path.Combine(dir, "tcp.port");
        var config = Path.Combine(dir, "rsyslog.conf");
        File.WriteAllText(config, $$"""
            global(workDirectory="{{dir}}" maxMessageSize="64k")
            module(load="imuxsock" SysSock.Use="off")
            module(load="imudp")
            module(load="imtcp")
            input(type="imuxsock" Socket="{{socket}}")
            input(type="imudp" address="127.0.0.1" port="0")
            input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{{tcpPortFile}}")
            template(name="fields" type="string" string="{{Fields}}")
            *.* action(type="omfile" file="{{dir}}/messages.log" template="fields")
            """);
        var daemon = ExternalServer.Launch("rsyslogd",
            new[] { "-n", "-f", config, "-i", Path.Combine(dir, "rsyslogd.pid") }, dir);
        try
        {
            // Ready once all three inputs are bound: the socket file, a UDP port in /proc, the TCP port file.
            var udp = 0;
            daemon.WaitUntil("its three inputs", () =>
                File.Exists(socket) && File.Exists(tcpPortFile) &&
                (udp = daemon.BoundPorts().FirstOrDefault(p => p.Protocol == "udp").Port) > 0);
            var tcp = int.Parse(File.ReadAllText(tcpPortFile).Trim());
            return new Rsyslog(daemon, socket, udp, tcp);
        }
        catch
        {
            daemon.Dispose();
            throw;
        }
    }

    /// <summary>One message rsyslog wrote, its fields split out.</summary>
    public sealed record Message(int Pri, string Facility, string Severity, string Tag, string ProgramName,
        string ProcId, string Text);

    /// <summary>Every message so far whose program name starts with <paramref name="programPrefix"/>.</summary>
    public IReadOnlyList<Message> Read(string programPrefix)
    {
        if (!File.Exists(Messages)) return Array.Empty<Message>();
        var messages = new List<Message>();
        foreach (var line in File.ReadAllLines(Messages))
        {
            var f = line.Split('|', 7);
            if (f.Length == 7 && f[4].StartsWith(programPrefix, StringComparison.Ordinal))
                messages.Add(new Message(int.Parse(f[0]), f[1], f[2], f[3], f[4], f[5], f[6].TrimStart(' ')));
        }
        return messages;
    }

    /// <summary>Waits until the messages of <paramref name="programPrefix"/> satisfy <paramref name="done"/>
    /// (rsyslog writes on its own time); returns them.</summary>
    public IReadOnlyList<Message> WaitFor(string programPrefix, Func<IReadOnlyList<Message>, bool> done,
        string what)
    {
        IReadOnlyList<Message> messages = Array.Empty<Message>();
        _daemon.WaitUntil(what, () => done(messages = Read(programPrefix)));
        return messages;
    }

    public string Output => _daemon.Output;

    public void Dispose()
    {
        _daemon.Dispose();
        try { Directory.Delete(_daemon.Directory, recursive: true); }
        catch (IOException) { } // best effort: a temp directory
    }
}
