using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// A real sharpwsgi process bound to 127.0.0.1:0. Start() returns once the server printed its
/// "Listening at: URL" line (the app is imported before that line is printed), so tests never sleep.
/// Dispose stops the process it started, by PID.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private static readonly Regex ListeningLine = new(@"Listening at: (?<url>\S+)", RegexOptions.Compiled);
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly object _gate = new();
    private readonly List<(Regex Pattern, TaskCompletionSource<string> Seen)> _waiters = new();

    public Uri BaseUri { get; private set; } = null!;
    public int Port => BaseUri.Port;
    public int Pid => _process.Id;

    private ServerProcess(Process process) => _process = process;

    /// <summary>Repo root: the directory holding SharpWsgi.slnx.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string AppsDir => Path.Combine(RepoRoot, "tests", "apps");
    public static string ExamplesDir => Path.Combine(RepoRoot, "examples");

    /// <summary>The built server: $SHARPWSGI_EXE, else the launcher and library ./publish.sh puts in dist/ (the
    /// workers are python loading dist/_sharpwsgi.so, which only a NativeAOT publish makes).</summary>
    public static string Executable
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("SHARPWSGI_EXE");
            if (!string.IsNullOrEmpty(fromEnv)) return fromEnv;
            return Path.Combine(RepoRoot, "dist", "sharpwsgi");
        }
    }

    /// <summary>Starts the server with the given arguments (a --bind 127.0.0.1:0 is added unless args bind).
    /// <paramref name="executable"/> replaces <see cref="Executable"/> (an installed copy, or a launcher such as
    /// python -m sharpwsgi): its arguments are passed as given, no --bind added.</summary>
    public static ServerProcess Start(IEnumerable<string> args, IDictionary<string, string?>? environment = null,
        TimeSpan? timeout = null, bool waitForListening = true, string? executable = null)
    {
        var argList = args.ToList();
        if (executable == null && !argList.Any(a => a is "-b" or "--bind" || a.StartsWith("--bind=")))
        {
            argList.Insert(0, "127.0.0.1:0");
            argList.Insert(0, "--bind");
        }
        var psi = new ProcessStartInfo(executable ?? Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        foreach (var a in argList) psi.ArgumentList.Add(a);
        if (environment != null)
            foreach (var (k, v) in environment)
            {
                if (v == null) psi.Environment.Remove(k); else psi.Environment[k] = v;
            }
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!waitForListening) return server;

        string listening;
        try { listening = server.WaitForOutput(ListeningLine, timeout ?? TimeSpan.FromSeconds(60)); }
        catch
        {
            server.Dispose(); // a server that never listened must not outlive the test
            throw;
        }
        var url = ListeningLine.Match(listening).Groups["url"].Value;
        server.BaseUri = new Uri(url.EndsWith('/') ? url : url + "/");
        return server;
    }

    public static ServerProcess StartApp(string app, params string[] extraArgs)
        => Start(extraArgs.Append(app));

    private void OnLine(string? line)
    {
        if (line == null) return;
        lock (_gate)
        {
            _output.AppendLine(line);
            foreach (var (pattern, seen) in _waiters)
                if (pattern.IsMatch(line)) seen.TrySetResult(line);
        }
    }

    /// <summary>Everything the process printed so far (stdout and stderr interleaved).</summary>
    public string Output { get { lock (_gate) return _output.ToString(); } }

    /// <summary>Waits until a line matching the pattern is printed (already printed lines count).
    /// Throws with the output so far if the process exits or the timeout passes first.</summary>
    public string WaitForOutput(Regex pattern, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            foreach (var line in _output.ToString().Split('\n'))
                if (pattern.IsMatch(line.TrimEnd('\r'))) return line.TrimEnd('\r');
            _waiters.Add((pattern, seen));
        }
        var exited = _process.WaitForExitAsync();
        var winner = Task.WaitAny(new Task[] { seen.Task, exited }, timeout);
        if (winner == 0) return seen.Task.Result;
        if (winner == 1)
        {
            _process.WaitForExit(); // drains the redirected streams
            if (seen.Task.IsCompleted) return seen.Task.Result;
            throw new InvalidOperationException(
                $"sharpwsgi exited with code {_process.ExitCode} before printing /{pattern}/. Output:\n{Output}");
        }
        throw new TimeoutException($"sharpwsgi did not print /{pattern}/ within {timeout}. Output:\n{Output}");
    }

    public string WaitForOutput(string regex, TimeSpan? timeout = null)
        => WaitForOutput(new Regex(regex), timeout ?? TimeSpan.FromSeconds(30));

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
            throw new TimeoutException($"sharpwsgi did not exit within {timeout}. Output:\n{Output}");
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Resident set size of the server process in bytes (from /proc).</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:"))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        throw new InvalidOperationException("VmRSS not found");
    }

    /// <summary>Runs the server to completion (for commands that are expected to fail fast or print and
    /// exit).</summary>
    public static (int ExitCode, string Output) RunToExit(IEnumerable<string> args,
        IDictionary<string, string?>? environment = null, TimeSpan? timeout = null, string? executable = null)
    {
        using var server = Start(args, environment, waitForListening: false, executable: executable);
        var code = server.WaitForExit(timeout ?? TimeSpan.FromSeconds(60));
        return (code, server.Output);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "SharpWsgi.slnx"))) dir = dir.Parent;
        return dir?.FullName ??
            throw new InvalidOperationException("SharpWsgi.slnx not found above " + AppContext.BaseDirectory);
    }
}
