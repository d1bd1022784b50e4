using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hooks;

/// <summary>The outcome of one hook call in the hook host.</summary>
internal enum HookOutcome { Done, Raised, TimedOut, HostGone }

/// <summary>
/// The supervisor's Python for the config file's supervisor-side hooks: one long-lived `python -c
/// gunicorn_config.py host FILE` (the workers' interpreter, in the --chdir directory), started when the file
/// defines such a hook. It executes the file once, as gunicorn's master does, so the hooks share its module state
/// and a thread a hook starts (a metrics server in when_ready) lives on. One JSON line per call on its stdin;
/// on its stdout, log lines (written to the error log as they come) and then done or the traceback. What the hooks
/// print goes to the supervisor's stderr.
/// </summary>
internal sealed class HookHost : IDisposable
{
    private readonly Process _process;
    private readonly ILogger _log;
    private readonly Queue<JsonElement?> _replies = new();

    private HookHost(Process process, ILogger log)
    {
        _process = process;
        _log = log;
        var reader = new Thread(ReadReplies, 256 * 1024) { IsBackground = true, Name = "hook-host-replies" };
        reader.Start();
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Starts the host and waits until it has executed the file; a file that fails there is reported as
    /// <see cref="HookHostException"/>.</summary>
    public static HookHost Start(string python, PythonConfig config, string workingDirectory, string startLine,
        ILogger log, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(PythonConfig.RuntimeSource);
        psi.ArgumentList.Add("host");
        psi.ArgumentList.Add(config.Location);
        // The evaluated config is the supervisor's business: a hook that starts sharpwsgi must not inherit it.
        psi.Environment.Remove(PythonConfig.HandedDownVariable);
        Process process;
        try { process = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new HookHostException($"cannot run {python} for the config file's hooks: {e.Message}");
        }
        var host = new HookHost(process, log);
        var (outcome, reply) = host.Exchange(startLine, timeout);
        if (outcome == HookOutcome.Done) return host;
        host.Dispose();
        throw new HookHostException(outcome switch
        {
            HookOutcome.Raised => Describe(config, reply!.Value),
            HookOutcome.TimedOut => $"executing {config.FileName ?? config.Location} took longer than " +
                                    $"{timeout.TotalSeconds:0} s (--hook-timeout)",
            _ => $"{python} exited while executing {config.FileName ?? config.Location}",
        });
    }

    private static string Describe(PythonConfig config, JsonElement reply)
    {
        if (!reply.TryGetProperty("error", out var error)) return "the config file failed in the hook host";
        string? S(string name) => error.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString() : null;
        var where = S("file") is { } file
            ? $" ({file}{(error.TryGetProperty("line", out var line) && line.ValueKind == JsonValueKind.Number
                ? ":" + line.GetInt32() : "")})" : "";
        return $"the config file {config.FileName ?? config.Location} failed in the hook host: {S("type")}: " +
               $"{S("message")}{where}";
    }

    /// <summary>One hook call: the request line, then the reply (its traceback when it raised).</summary>
    public (HookOutcome Outcome, string? Traceback) Call(string requestLine, TimeSpan timeout)
    {
        var (outcome, reply) = Exchange(requestLine, timeout);
        if (outcome == HookOutcome.TimedOut || outcome == HookOutcome.HostGone) Dispose();
        return (outcome, outcome == HookOutcome.Raised && reply is { } r && r.TryGetProperty("traceback", out var tb)
            ? tb.GetString() : null);
    }

    private (HookOutcome, JsonElement?) Exchange(string line, TimeSpan timeout)
    {
        try
        {
            _process.StandardInput.WriteLine(line);
            _process.StandardInput.Flush();
        }
        catch (IOException) { return (HookOutcome.HostGone, null); }
        var deadline = timeout <= TimeSpan.Zero ? DateTime.MaxValue : DateTime.UtcNow + timeout;
        lock (_replies)
        {
            while (_replies.Count == 0)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return (HookOutcome.TimedOut, null);
                Monitor.Wait(_replies, left > TimeSpan.FromDays(1) ? Timeout.InfiniteTimeSpan : left);
            }
            var reply = _replies.Dequeue();
            if (reply == null) return (HookOutcome.HostGone, null);
            var failed = reply.Value.TryGetProperty("failed", out _) || reply.Value.TryGetProperty("error", out _);
            return (failed ? HookOutcome.Raised : HookOutcome.Done, reply);
        }
    }

    /// <summary>The host's stdout: log lines go to the error log at once (a thread a hook started may log at
    /// any time), the rest answers the pending call; end of file (the host is gone) answers it too.</summary>
    private void ReadReplies()
    {
        try
        {
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                JsonElement reply;
                try { reply = JsonDocument.Parse(line).RootElement.Clone(); }
                catch (JsonException) { continue; }
                if (reply.TryGetProperty("log", out var level))
                {
                    Write(level.GetInt32(), reply.GetProperty("message").GetString() ?? "");
                    continue;
                }
                Answer(reply);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
        Answer(null);
    }

    private void Answer(JsonElement? reply)
    {
        lock (_replies)
        {
            _replies.Enqueue(reply);
            Monitor.PulseAll(_replies);
        }
    }

    private void Write(int levelno, string text)
    {
        var level = levelno >= 50 ? LogLevel.Critical : levelno >= 40 ? LogLevel.Error
            : levelno >= 30 ? LogLevel.Warning : levelno >= 20 ? LogLevel.Information : LogLevel.Debug;
        if (_log.IsEnabled(level)) _log.Log(level, "{Message}", text);
    }

    /// <summary>Ends the host: end of its stdin lets it return; one that does not within a second is killed (it
    /// is our own child, by its pid).</summary>
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                try { _process.StandardInput.Close(); } catch (IOException) { }
                if (!_process.WaitForExit(1000)) _process.Kill(entireProcessTree: true);
                _process.WaitForExit(1000);
            }
        }
        catch (InvalidOperationException) { }
    }
}

/// <summary>The hook host could not be started or could not execute the file (one paragraph).</summary>
internal sealed class HookHostException : Exception
{
    public HookHostException(string message) : base(message) { }
}
