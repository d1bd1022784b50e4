using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// The statsd daemon itself (npm's statsd 0.9.0, pinned in tests/daemons/statsd, installed there with npm ci on
/// first use), run by node in the foreground on 127.0.0.1: UDP for metrics and its management TCP interface, both
/// on ports the kernel picks (read back from /proc), no backend and an hour between flushes, so what it received
/// stays in its counters, timers and gauges for the management commands to read.
/// </summary>
public sealed class StatsdDaemon : IDisposable
{
    private static readonly string PackageDir = Path.Combine(ServerProcess.RepoRoot, "tests", "daemons", "statsd");
    private static readonly object InstallGate = new();
    private readonly ExternalServer _daemon;
    public int UdpPort { get; }
    public int ManagementPort { get; }

    private StatsdDaemon(ExternalServer daemon, int udpPort, int managementPort)
    {
        _daemon = daemon;
        UdpPort = udpPort;
        ManagementPort = managementPort;
    }

    public static StatsdDaemon Start()
    {
        var statsJs = Install();
        var dir = ExternalServer.NewDirectory("statsd");
        var config = Path.Combine(dir, "config.js");
        // Ports as strings: statsd reads a numeric 0 as "unset" (its 8125/8126), while "0" reaches bind() as
        // "any free port".
        File.WriteAllText(config, """
            { address: "127.0.0.1", port: "0", mgmt_address: "127.0.0.1", mgmt_port: "0",
              flushInterval: 3600000, backends: [], dumpMessages: true }
            """);
        var daemon = ExternalServer.Launch("node", new[] { statsJs, config }, dir);
        try
        {
            int udp = 0, tcp = 0;
            daemon.WaitUntil("its two ports", () =>
            {
                var ports = daemon.BoundPorts();
                udp = ports.FirstOrDefault(p => p.Protocol == "udp").Port;
                tcp = ports.FirstOrDefault(p => p.Protocol == "tcp").Port;
                return udp > 0 && tcp > 0;
            });
            return new StatsdDaemon(daemon, udp, tcp);
        }
        catch
        {
            daemon.Dispose();
            throw;
        }
    }

    /// <summary>npm ci once (by name and pinned version, no install scripts); the path of statsd's stats.js.
    /// </summary>
    private static string Install()
    {
        var statsJs = Path.Combine(PackageDir, "node_modules", "statsd", "stats.js");
        lock (InstallGate)
        {
            if (File.Exists(statsJs)) return statsJs;
            var npm = Proc.Run("npm", new[] { "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix",
                PackageDir }, TimeSpan.FromMinutes(5));
            if (npm.ExitCode != 0 || !File.Exists(statsJs))
                throw new InvalidOperationException(
                    $"npm ci in {PackageDir} failed ({npm.ExitCode}):\n{npm.Stdout}{npm.Stderr}");
            return statsJs;
        }
    }

    /// <summary>A management command's answer (counters, timers, gauges): statsd writes it with node's
    /// util.inspect and ends it with END.</summary>
    public string Management(string command)
    {
        using var client = new TcpClient("127.0.0.1", ManagementPort);
        client.ReceiveTimeout = 10_000;
        var stream = client.GetStream();
        stream.Write(Encoding.ASCII.GetBytes(command + "\n"));
        var answer = new StringBuilder();
        var buffer = new byte[65536];
        while (!answer.ToString().Contains("\nEND"))
        {
            var n = stream.Read(buffer);
            if (n == 0) break;
            answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return answer.ToString();
    }

    private static readonly Regex NumberEntry = new(@"'(?<name>[^']+)':\s*(?<value>-?[\d.]+)");
    private static readonly Regex ListEntry = new(@"'(?<name>[^']+)':\s*\[(?<values>[^\]]*)\]");

    /// <summary>The counters statsd holds, by name (DogStatsD tags appear as ";tag=value" after the name).</summary>
    public Dictionary<string, double> Counters() => Numbers(Management("counters"));
    public Dictionary<string, double> Gauges() => Numbers(Management("gauges"));

    /// <summary>The timers statsd holds: every value received since the last flush, by name.</summary>
    public Dictionary<string, double[]> Timers() =>
        ListEntry.Matches(Management("timers")).ToDictionary(m => m.Groups["name"].Value,
            m => m.Groups["values"].Value.Split(',', SplitOptions).Select(Number).ToArray());

    private const StringSplitOptions SplitOptions =
        StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries;
    private static double Number(string text) => double.Parse(text, CultureInfo.InvariantCulture);

    private static Dictionary<string, double> Numbers(string answer) =>
        NumberEntry.Matches(answer).ToDictionary(m => m.Groups["name"].Value,
            m => Number(m.Groups["value"].Value));

    /// <summary>Waits until statsd's counters satisfy <paramref name="done"/> (UDP datagrams arrive on their own
    /// time); returns them.</summary>
    public Dictionary<string, double> WaitForCounters(Func<Dictionary<string, double>, bool> done, string what)
    {
        var counters = new Dictionary<string, double>();
        _daemon.WaitUntil(what, () => done(counters = Counters()));
        return counters;
    }

    /// <summary>The raw lines statsd received (dumpMessages), as it logged them.</summary>
    public string Received => _daemon.Output;

    public void Dispose()
    {
        _daemon.Dispose();
        try { Directory.Delete(_daemon.Directory, recursive: true); }
        catch (IOException) { } // best effort: a temp directory
    }
}
