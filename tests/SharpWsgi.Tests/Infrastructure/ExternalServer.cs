using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// A real program the server meets (nginx, HAProxy, rsyslogd, statsd) run in the foreground by a test, on 127.0.0.1
/// with a config the test generated in its own directory, and stopped by its PID. <see cref="Start"/> returns once
/// the program accepts connections on the port the test gave it; <see cref="Launch"/> at once.
/// </summary>
public sealed class ExternalServer : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    public string Directory { get; }
    public int Pid => _process.Id;

    private ExternalServer(Process process, string directory)
    {
        _process = process;
        Directory = directory;
    }

    public string Output { get { lock (_output) return _output.ToString(); } }
    public bool HasExited => _process.HasExited;

    private void Append(string? line)
    {
        if (line != null) lock (_output) _output.AppendLine(line);
    }

    /// <summary>A fresh directory for a config, logs and pid files.</summary>
    public static string NewDirectory(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-{name}-{Guid.NewGuid().ToString("N")[..8]}");
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A port that was free a moment ago (for programs that cannot report the one they picked).</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>nginx in the foreground with the given config body (the events block and pid/error log are added).
    /// Dynamic modules (e.g. "stream", Debian's libnginx-mod-stream) are loaded by name; nginx wants them first.
    /// </summary>
    public static ExternalServer Nginx(string directory, string config, int port, params string[] modules)
    {
        var path = Path.Combine(directory, "nginx.conf");
        var loads = string.Concat(modules.Select(m => $"load_module /usr/lib/nginx/modules/ngx_{m}_module.so;\n"));
        File.WriteAllText(path, loads +
            $"daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n" +
            "events { worker_connections 256; }\n" + config);
        return Start("nginx", new[] { "-p", directory, "-c", path }, directory, port);
    }

    /// <summary>HAProxy in the foreground (-db) with the given config.</summary>
    public static ExternalServer HAProxy(string directory, string config, int port)
    {
        var path = Path.Combine(directory, "haproxy.cfg");
        File.WriteAllText(path, config);
        return Start("haproxy", new[] { "-db", "-f", path }, directory, port);
    }

    /// <summary>Starts the program and returns at once (a daemon that listens on UDP, or on a port the kernel
    /// picks: see <see cref="WaitUntil"/> and <see cref="BoundPorts"/>).</summary>
    public static ExternalServer Launch(string program, IEnumerable<string> args, string directory)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var server = new ExternalServer(process, directory);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Starts the program and returns once it accepts TCP connections on <paramref name="port"/>.</summary>
    public static ExternalServer Start(string program, IEnumerable<string> args, string directory, int port,
        TimeSpan? timeout = null)
    {
        var server = Launch(program, args, directory);
        var process = server._process;
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            if (process.HasExited)
            {
                process.WaitForExit();
                var output = server.Output;
                server.Dispose();
                throw new InvalidOperationException($"{program} exited with {process.ExitCode}:\n{output}");
            }
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return server;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                // Not listening yet: the program is still reading its config. Wait for its exit or a short tick.
                process.WaitForExit(25);
            }
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; throws with the daemon's output if the daemon
    /// exits or the time runs out first. For what the daemon does on its own time (binding, writing a file).
    /// </summary>
    public void WaitUntil(string what, Func<bool> condition, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (_process.HasExited)
                throw new InvalidOperationException(
                    $"{_process.StartInfo.FileName} exited ({_process.ExitCode}) before {what}:\n{Output}");
            if (clock.Elapsed > (timeout ?? TimeSpan.FromSeconds(20)))
                throw new TimeoutException($"{_process.StartInfo.FileName}: no {what} within {clock.Elapsed}:\n" +
                                           Output);
            _process.WaitForExit(25); // polling interval of a bounded wait (or the daemon's exit, sooner)
        }
    }

    /// <summary>The local ports of this process's sockets, as (protocol, port): "udp" for every UDP socket, "tcp"
    /// for listening TCP sockets (from /proc/PID/fd and /proc/PID/net/{udp,tcp}).</summary>
    public IReadOnlyList<(string Protocol, int Port)> BoundPorts()
    {
        var inodes = new HashSet<string>();
        try
        {
            foreach (var fd in System.IO.Directory.EnumerateFiles($"/proc/{Pid}/fd"))
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:["))
                    inodes.Add(target["socket:[".Length..^1]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Array.Empty<(string, int)>(); // the process is going away
        }
        var ports = new List<(string, int)>();
        foreach (var protocol in new[] { "udp", "tcp" })
            foreach (var line in File.ReadLines($"/proc/{Pid}/net/{protocol}").Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10 || !inodes.Contains(fields[9])) continue;
                if (protocol == "tcp" && fields[3] != "0A") continue; // TCP_LISTEN
                ports.Add((protocol, int.Parse(fields[1].Split(':')[1], NumberStyles.HexNumber)));
            }
        return ports;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
