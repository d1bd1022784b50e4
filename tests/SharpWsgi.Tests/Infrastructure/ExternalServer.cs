using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// A real program the server meets (nginx, HAProxy) run in the foreground by a test, on 127.0.0.1 with a config the
/// test generated in its own directory, and stopped by its PID. <see cref="Start"/> returns once the program accepts
/// connections on the port the test gave it.
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

    public static ExternalServer Start(string program, IEnumerable<string> args, string directory, int port,
        TimeSpan? timeout = null)
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
