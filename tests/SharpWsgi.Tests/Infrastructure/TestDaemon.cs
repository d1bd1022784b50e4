using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// A daemon a test runs in the foreground (rsyslogd -n, node statsd) on 127.0.0.1 with a config the test
/// generated in its own directory; stopped by its PID. Unlike <see cref="ExternalServer"/> it may listen on UDP
/// or on a port the kernel picked: <see cref="BoundPorts"/> reads them back from /proc.
/// </summary>
public sealed class TestDaemon : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    public string Directory { get; }
    public int Pid => _process.Id;

    private TestDaemon(Process process, string directory)
    {
        _process = process;
        Directory = directory;
    }

    public string Output { get { lock (_output) return _output.ToString(); } }
    public bool HasExited => _process.HasExited;

    public static TestDaemon Start(string program, IEnumerable<string> args, string directory)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var daemon = new TestDaemon(process, directory);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    private void Append(string? line)
    {
        if (line != null) lock (_output) _output.AppendLine(line);
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
