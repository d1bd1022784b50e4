using System.Text;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Hosting;

namespace SharpWsgi.Hooks;

/// <summary>
/// The supervisor's side of a Python config file's hooks: where its loop calls on_starting, when_ready, pre_fork,
/// child_exit, nworkers_changed, on_reload, on_exit (and pre_exec, for a re-exec). They run in the
/// <see cref="HookHost"/>, each call waited for at most --hook-timeout; a hook that raises is logged with its
/// traceback and the server goes on, except on_starting and when_ready, which stop the start as in gunicorn. Also
/// numbers the workers in spawn order (gunicorn's worker.age) for both sides. Without a Python config file, or
/// without a supervisor-side hook in it, every call does nothing and no process is started.
/// </summary>
internal sealed class SupervisorHooks : IDisposable
{
    private readonly ILogger _log;
    private ServerSettings _settings;
    private HookHost? _host;
    private bool _hostBroken; // the file failed in the host: no further attempts until a reload
    private int _age;
    private readonly Dictionary<int, int> _ages = new(); // live workers: pid -> age
    private int? _workerCount;

    public SupervisorHooks(ServerSettings settings, ILogger log)
    {
        _settings = settings;
        _log = log;
    }

    private bool Defines(string hook) => _settings.PythonConfig?.Hooks.Contains(hook) == true;

    /// <summary>nworkers_changed(server, N, None) then on_starting(server), before anything is bound; either
    /// raising stops the start.</summary>
    public void Starting()
    {
        _workerCount = _settings.Workers;
        StartHostEarly();
        if (Defines("nworkers_changed")) CallOrStop("nworkers_changed", args: $"[{_workerCount},null]");
        if (Defines("on_starting")) CallOrStop("on_starting");
    }

    /// <summary>when_ready(server): the listeners are open (and the pid file written), no worker started yet, as
    /// in gunicorn; raising stops the start.</summary>
    public void Ready()
    {
        if (Defines("when_ready")) CallOrStop("when_ready");
    }

    /// <summary>pre_fork(server, worker) before a worker process starts (worker.pid is "[booting]"); gives it its
    /// age.</summary>
    public void BeforeSpawn(IDictionary<string, string?> workerEnvironment)
    {
        _age++;
        if (_settings.PythonConfig == null) return;
        workerEnvironment[WorkerHooks.AgeVariable] = _age.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (Defines("pre_fork")) Call("pre_fork", worker: ("\"[booting]\"", _age));
    }

    /// <summary>The worker just started has this pid (it is in server.WORKERS from now on).</summary>
    public void Spawned(int pid) => _ages[pid] = _age;

    /// <summary>child_exit(server, worker) once a worker process has exited.</summary>
    public void Exited(int pid)
    {
        if (!_ages.Remove(pid, out var age) || !Defines("child_exit")) return;
        Call("child_exit", worker: (pid.ToString(System.Globalization.CultureInfo.InvariantCulture), age),
            alive: false);
    }

    /// <summary>nworkers_changed(server, new, old) when the target number of workers changes (TTIN, TTOU, a
    /// reload); called on every pass of the loop, so it allocates nothing when nothing changed.</summary>
    public void WorkerCount(int target)
    {
        if (_workerCount == target) return;
        var old = _workerCount;
        _workerCount = target;
        if (Defines("nworkers_changed"))
            Call("nworkers_changed", args: $"[{target},{(old is { } o ? o.ToString() : "null")}]");
    }

    /// <summary>After a reload (HUP) re-read the file: the hook host starts afresh with the new file, and the new
    /// file's on_reload(server) runs.</summary>
    public void Reloaded(ServerSettings fresh)
    {
        _settings = fresh;
        _host?.Dispose();
        _host = null;
        _hostBroken = false;
        StartHostEarly();
        if (Defines("on_reload")) Call("on_reload");
    }

    /// <summary>The hook host is started as soon as the file is known, not lazily at its first hook: a first
    /// pre_fork would start it in the middle of a worker's spawn.</summary>
    private void StartHostEarly()
    {
        if (_settings.PythonConfig?.HasSupervisorHooks != true) return;
        var timeout = _settings.HookTimeout > 0 ? TimeSpan.FromSeconds(_settings.HookTimeout) : TimeSpan.Zero;
        try { _host = StartHost(timeout); }
        catch (HookHostException e)
        {
            _hostBroken = true;
            _log.LogError("The hooks of {File} cannot run: {Message}", ConfigName, e.Message);
        }
    }

    /// <summary>on_exit(server), as the supervisor ends.</summary>
    public void Exiting()
    {
        if (Defines("on_exit")) Call("on_exit");
    }

    /// <summary>pre_exec(server), for a re-exec of the supervisor (gunicorn's USR2).</summary>
    public void BeforeExec()
    {
        if (Defines("pre_exec")) Call("pre_exec");
    }

    private void CallOrStop(string hook, string? args = null)
    {
        var (outcome, detail) = Run(hook, null, true, args);
        if (outcome == HookOutcome.Done) return;
        Dispose(); // the start stops here: the hook host goes with it
        throw new StartupException($"The {hook} hook of {ConfigName} " + outcome switch
        {
            HookOutcome.Raised => $"raised, so the server does not start (as in gunicorn):\n{detail}",
            HookOutcome.TimedOut => $"did not return within {_settings.HookTimeout} s (--hook-timeout)",
            _ => $"could not run: {detail}",
        });
    }

    private void Call(string hook, (string Pid, int Age)? worker = null, bool alive = true, string? args = null)
    {
        var (outcome, detail) = Run(hook, worker, alive, args);
        switch (outcome)
        {
            case HookOutcome.Raised:
                _log.LogError("Exception in the {Hook} hook of {File} (the server goes on):\n{Traceback}", hook,
                    ConfigName, detail);
                break;
            case HookOutcome.TimedOut:
                _log.LogError("The {Hook} hook of {File} did not return within {Seconds} s (--hook-timeout); its " +
                    "hook host is stopped and a new one runs the next hook", hook, ConfigName, _settings.HookTimeout);
                break;
            case HookOutcome.HostGone:
                _log.LogError("The {Hook} hook of {File} could not run: {Detail}", hook, ConfigName, detail);
                break;
        }
    }

    private string ConfigName => _settings.PythonConfig?.FileName ?? _settings.PythonConfig?.Location ?? "";

    private (HookOutcome, string?) Run(string hook, (string Pid, int Age)? worker, bool alive, string? args)
    {
        var timeout = _settings.HookTimeout > 0 ? TimeSpan.FromSeconds(_settings.HookTimeout) : TimeSpan.Zero;
        if (_host == null || _host.HasExited)
        {
            if (_hostBroken) return (HookOutcome.HostGone, "the config file failed in the hook host (logged above)");
            if (_host != null)
                _log.LogWarning("The hook host (pid {Pid}) has exited; starting a new one for {Hook} (module state " +
                    "of the config file starts afresh)", _host.Pid, hook);
            try { _host = StartHost(timeout); }
            catch (HookHostException e)
            {
                _hostBroken = true;
                _host = null;
                return (HookOutcome.HostGone, e.Message);
            }
        }
        var line = new StringBuilder("{\"hook\":\"").Append(hook).Append("\",\"server\":").Append(ServerState());
        if (worker is var (pid, age))
            line.Append(",\"worker\":{\"pid\":").Append(pid).Append(",\"age\":").Append(age)
                .Append(",\"alive\":").Append(alive ? "true" : "false").Append('}');
        if (args != null) line.Append(",\"args\":").Append(args);
        line.Append('}');
        var (outcome, traceback) = _host.Call(line.ToString(), timeout);
        if (outcome is HookOutcome.TimedOut or HookOutcome.HostGone) _host = null;
        return (outcome, outcome == HookOutcome.HostGone ? "the hook host exited during the call" : traceback);
    }

    private HookHost StartHost(TimeSpan timeout)
    {
        var config = _settings.PythonConfig!;
        var python = SharpWsgi.Python.PythonLocator.Choose(_settings.Python).Path;
        var directory = _settings.Chdir is { } chdir && Directory.Exists(chdir) ? Path.GetFullPath(chdir)
            : Directory.GetCurrentDirectory();
        var start = $"{{\"cfg\":{GunicornSettings.EffectiveConfigJson(_settings)},\"server\":{ServerState()}}}";
        var host = HookHost.Start(python, config, directory, start, _log, timeout);
        _log.LogInformation("Hook host started (pid: {Pid}) for {Hooks}", host.Pid,
            string.Join(", ", config.Hooks.Where(h => !GunicornSettings.WorkerHooks.Contains(h))));
        return host;
    }

    /// <summary>server's attributes that change: pid, num_workers, worker_age and WORKERS (pid and age each).
    /// </summary>
    private string ServerState()
    {
        var sb = new StringBuilder("{\"pid\":").Append(Environment.ProcessId)
            .Append(",\"num_workers\":").Append(_workerCount ?? _settings.Workers)
            .Append(",\"worker_age\":").Append(_age).Append(",\"workers\":[");
        var first = true;
        foreach (var (pid, age) in _ages)
        {
            if (!first) sb.Append(',');
            first = false;
            sb.Append("{\"pid\":").Append(pid).Append(",\"age\":").Append(age).Append('}');
        }
        return sb.Append("]}").ToString();
    }

    public void Dispose()
    {
        _host?.Dispose();
        _host = null;
    }
}
