using System.Diagnostics;
using System.IO.Pipes;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Hosting;
using SharpWsgi.Logging;
using SharpWsgi.Metrics;
using SharpWsgi.Python;
using SharpWsgi.Worker;

namespace SharpWsgi.Supervisor;

/// <summary>
/// The process the user starts. It loads no Python: it opens the listening sockets once, starts the
/// workers (this same executable in the worker role) and keeps them healthy from one loop that handles
/// queued signals, worker messages and exits: heartbeat timeouts, crashes, recycling, reload (HUP),
/// TTIN/TTOU, graceful (TERM, after --shutdown-delay) and fast (INT/QUIT) stops, and the binary upgrade (USR2,
/// then WINCH and TERM to the old supervisor; see <see cref="BinaryUpgrade"/>). gunicorn's arbiter is the model.
/// </summary>
public sealed class Supervisor
{
    private abstract record Event;
    private sealed record SignalEvent(int Signal) : Event;
    private sealed record MessageEvent(WorkerHandle Worker, WorkerMessage Message) : Event;
    private sealed record ExitEvent(WorkerHandle Worker, int ExitCode) : Event;
    private sealed record ReloadFilesChanged(string Path) : Event;
    private sealed record SuccessorExited(System.Diagnostics.Process Successor) : Event;

    // Taken with a timeout on the supervisor's own thread: an idle supervisor sleeps in the kernel instead of
    // waking the thread pool every tick (measured: 3.7% CPU idle with a timer-driven async loop). A plain
    // queue and Monitor.Wait: a BlockingCollection allocated a linked CancellationTokenSource per wait.
    private readonly Queue<Event> _events = new();
    private readonly List<WorkerHandle> _workers = new();
    private readonly string[] _args;
    private readonly ErrorLogProvider _loggers;
    private readonly ILogger _log;
    private ServerSettings _settings;
    private List<ListenSocket> _sockets = new();
    private int _target;
    private bool _announced;
    private int _bootFailures;
    private DateTime _nextSpawnAllowed = DateTime.MinValue;
    private int? _stopping; // the signal that started the stop
    private DateTime? _shutdownDelayEnds; // TERM came with --shutdown-delay: serving on, /readyz 503, until then
    private DateTime _stopDeadline;
    private int? _haltCode;
    private readonly Random _random = new();
    private AcceptBalance? _balance;
    private DateTime _nextRssCheck;
    private long _allocatedAtCollection;
    private string? _balancePath;
    private MetricsTable? _metricsTable;
    private string? _metricsPath;
    private MetricsEndpoint? _metrics;
    private readonly Hooks.SupervisorHooks _hooks; // the Python config file's on_starting, pre_fork, child_exit...
    private PidFile? _pidFile;
    private readonly BinaryUpgrade _upgrade;
    private bool _workersRetiredByWinch; // no workers until HUP (a rollback of a binary upgrade)

    // What a worker is started as: the chosen interpreter, and the library its bootstrap loads.
    private string _python;
    private readonly string _library;

    public Supervisor(string[] args, ServerSettings settings, ErrorLogProvider loggers, ILogger log)
    {
        _upgrade = BinaryUpgrade.Capture();
        _library = WorkerProtocol.WorkerLibrary();
        _python = ChoosePython(settings, log);
        _args = args;
        _settings = settings;
        _loggers = loggers;
        _log = log;
        _target = settings.Workers;
        _hooks = new Hooks.SupervisorHooks(settings, log);
    }

    public int Run()
    {
        _hooks.Starting();
        SetTitle();
        // A bad certificate, key or password stops the start here, before any socket or worker.
        TlsSetup.Load(_settings);
        // Started by an old supervisor's USR2: its sockets, not --bind (gunicorn's rule for GUNICORN_FD).
        var handedDown = BinaryUpgrade.TakeHandedDown();
        _sockets = handedDown?.Sockets ?? ListenSockets.Open(_settings);
        if (handedDown != null)
            _log.LogInformation("Binary upgrade: serving the {Count} listening socket(s) of supervisor {Pid}",
                _sockets.Count, _upgrade.PredecessorPid);
        SharedFiles.RemoveStale();
        (_balance, _balancePath) = AcceptBalance.Create();
        if (_settings.MetricsBind is { } metricsBind)
        {
            (_metricsTable, _metricsPath) = MetricsTable.Create();
            // An inherited metrics listener is answered by the old supervisor until this one's workers are ready.
            if (handedDown?.MetricsListener is { } inherited)
                _metrics = new MetricsEndpoint(_metricsTable, inherited, _log, accepting: false);
            else
                try { _metrics = new MetricsEndpoint(_metricsTable, metricsBind, _log); }
                catch (System.Net.Sockets.SocketException e)
                {
                    throw new StartupException($"--metrics-bind {metricsBind}: {e.Message}.");
                }
            _log.LogInformation("Metrics at: {Url}", _metrics.Url);
        }
        else handedDown?.MetricsListener?.Dispose();
        if (_settings.PidFile != null)
        {
            _pidFile = new PidFile(_settings.PidFile, _log);
            _pidFile.Write();
        }
        if (RunAs.Resolve(_settings) is { IsCurrent: false } account) BecomeAccount(account);
        var registrations = new List<PosixSignalRegistration>();
        var handled = new[]
        {
            Libc.SIGTERM, Libc.SIGINT, Libc.SIGQUIT, Libc.SIGHUP, Libc.SIGTTIN, Libc.SIGTTOU, Libc.SIGUSR1,
            Libc.SIGUSR2, Libc.SIGWINCH,
        };
        foreach (var sig in handled)
            registrations.Add(PosixSignalRegistration.Create((PosixSignal)ToPosix(sig), c =>
            {
                c.Cancel = true;
                Post(new SignalEvent(sig));
            }));
        using var watcher = _settings.Reload ? StartReloadWatcher() : null;
        try
        {
            _hooks.Ready();
            Reconcile();
            var code = Loop();
            _hooks.Exiting();
            return code;
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
            foreach (var s in _sockets) CloseListener(s);
            // The partner of a binary upgrade has exited meanwhile: the last one out unlinks.
            if (!_upgrade.PartnerAlive) foreach (var socket in _keptForPartner) socket.Dispose();
            _pidFile?.Remove();
            _balance?.Dispose();
            DeleteQuietly(_balancePath);
            _metrics?.Dispose();
            _metricsTable?.Dispose();
            DeleteQuietly(_metricsPath);
            _hooks.Dispose();
        }
    }

    /// <summary>After --user, a file in a directory the account may not write stays behind (said at start-up).
    /// </summary>
    private static void DeleteQuietly(string? path)
    {
        if (path == null) return;
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>
    /// --user/--group: what the server created as root and must still use as the account is handed to it (see
    /// <see cref="RunAs.HandOver"/>; the access log, which only workers open, is created first), then the
    /// supervisor becomes the account for good, and what the workers will need as the account is checked now
    /// rather than by a worker that fails to boot.
    /// </summary>
    private void BecomeAccount(RunAs account)
    {
        var accessLog = _settings.AccessLogFile is { } access && access != "-" ? Path.GetFullPath(access) : null;
        if (accessLog != null && Libc.Open(accessLog, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC,
                0x1a4 /* 0644, as the log's writer */) is var fd and >= 0)
            Libc.Close(fd);
        var errorLog = _settings.ErrorLogFile != "-" ? Path.GetFullPath(_settings.ErrorLogFile) : null;
        var pidFile = _settings.PidFile != null ? Path.GetFullPath(_settings.PidFile) : null;
        account.HandOver(new[] { pidFile, errorLog, accessLog, _balancePath, _metricsPath }
            .Concat(_sockets.Select(s => s.UnixPath)), _log);
        account.SwitchTo(_settings.PidFile, _log);
        account.CheckWorkersCanStart(_settings, _python);
    }

    /// <summary>-n/--name: "sharpwsgi: master [NAME]"; NAME.2 while the old supervisor of a binary upgrade runs,
    /// as gunicorn's new master is named.</summary>
    private void SetTitle() =>
        ProcessTitle.Apply(ProcessTitle.Master, _settings, _upgrade.PredecessorAlive ? ".2" : "");

    // PosixSignal has named values for the common signals; others are passed as raw numbers.
    private static int ToPosix(int sig) => sig switch
    {
        Libc.SIGTERM => (int)PosixSignal.SIGTERM,
        Libc.SIGINT => (int)PosixSignal.SIGINT,
        Libc.SIGQUIT => (int)PosixSignal.SIGQUIT,
        Libc.SIGHUP => (int)PosixSignal.SIGHUP,
        Libc.SIGTTIN => (int)PosixSignal.SIGTTIN,
        Libc.SIGTTOU => (int)PosixSignal.SIGTTOU,
        Libc.SIGWINCH => (int)PosixSignal.SIGWINCH,
        _ => sig,
    };

    private void Post(Event e)
    {
        lock (_events)
        {
            _events.Enqueue(e);
            Monitor.Pulse(_events);
        }
    }

    private bool TryTake([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Event? e, TimeSpan wait)
    {
        lock (_events)
        {
            if (_events.Count == 0 && wait > TimeSpan.Zero) Monitor.Wait(_events, wait);
            return _events.TryDequeue(out e);
        }
    }

    private int Loop()
    {
        var nextTick = DateTime.UtcNow;
        while (true)
        {
            if (TryTake(out var e, nextTick - DateTime.UtcNow))
            {
                Handle(e);
                while (TryTake(out e, TimeSpan.Zero)) Handle(e);
            }
            if (DateTime.UtcNow < nextTick) continue;
            nextTick = DateTime.UtcNow + TimeSpan.FromMilliseconds(250);
            OnTick();
            if (_haltCode != null && _workers.Count == 0) return _haltCode.Value;
            if (_stopping != null && _workers.Count == 0)
            {
                _log.LogInformation("Shutting down: Master");
                return 0;
            }
        }
    }

    private void Handle(Event e)
    {
        switch (e)
        {
            case SignalEvent s: OnSignal(s.Signal); break;
            case MessageEvent m: OnMessage(m.Worker, m.Message); break;
            case ExitEvent x: OnExit(x.Worker, x.ExitCode); break;
            case ReloadFilesChanged r:
                _log.LogInformation("Reloading: {Path} changed", r.Path);
                Reload();
                break;
            case SuccessorExited x: OnSuccessorExit(x.Successor); break;
        }
    }

    private void OnSignal(int signal)
    {
        if (_stopping != null && signal is not (Libc.SIGINT or Libc.SIGQUIT)) return;
        // Serving out --shutdown-delay: only a stop (TERM again, INT, QUIT) or a log reopen is still obeyed.
        if (_shutdownDelayEnds != null && signal is not (Libc.SIGTERM or Libc.SIGINT or Libc.SIGQUIT or Libc.SIGUSR1))
        {
            _log.LogInformation("Signal {Signal} ignored: shutting down", signal);
            return;
        }
        switch (signal)
        {
            case Libc.SIGTERM:
                if (_shutdownDelayEnds != null) BeginGracefulStop("Handling signal: term; the shutdown delay ends now");
                else if (_settings.ShutdownDelay > 0 && !_upgrade.PartnerAlive)
                {
                    _shutdownDelayEnds = DateTime.UtcNow + TimeSpan.FromSeconds(_settings.ShutdownDelay);
                    PublishMetricsState(); // /readyz says 503 by the time the line is logged
                    _log.LogInformation("Handling signal: term; serving {Seconds} s more while /readyz answers 503 " +
                        "(--shutdown-delay), then closing the listeners", _settings.ShutdownDelay);
                }
                else BeginGracefulStop("Handling signal: term");
                break;
            case Libc.SIGINT or Libc.SIGQUIT:
                _stopping = signal;
                _shutdownDelayEnds = null;
                PublishMetricsState();
                if (_upgrade.PartnerAlive) _metrics?.StopAccepting(); // the other supervisor answers the probes
                _log.LogInformation("Handling signal: {Signal}", signal == Libc.SIGINT ? "int" : "quit");
                CloseListeners();
                _stopDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
                foreach (var w in _workers) Libc.Kill(w.Pid, Libc.SIGQUIT);
                break;
            case Libc.SIGHUP:
                _log.LogInformation("Handling signal: hup");
                Reload();
                break;
            case Libc.SIGTTIN:
                _target++;
                _log.LogInformation("Handling signal: ttin; workers: {Target}", _target);
                break;
            case Libc.SIGTTOU:
                if (_target > 1) _target--;
                _log.LogInformation("Handling signal: ttou; workers: {Target}", _target);
                break;
            case Libc.SIGUSR1:
                _log.LogInformation("Handling signal: usr1; reopening log files");
                ReopenLogs();
                foreach (var w in _workers) Libc.Kill(w.Pid, Libc.SIGUSR1);
                break;
            case Libc.SIGUSR2:
                StartSuccessor();
                break;
            case Libc.SIGWINCH:
                RetireWorkersForSuccessor();
                break;
        }
        Reconcile();
    }

    /// <summary>USR1. A log that cannot be reopened (its directory not writable after --user, a full disk) keeps
    /// the old file rather than stopping the server.</summary>
    private void ReopenLogs()
    {
        try { _loggers.Reopen(); }
        catch (IOException e)
        {
            _log.LogError("Reopening the error log: {Message}; writing on to the file already open", e.Message);
        }
        if (StandardStreams.CaptureTarget(_settings) is { } path && StandardStreams.Capture(path) is { } problem)
            _log.LogError("--capture-output: {Problem}", problem);
    }

    /// <summary>TERM (after --shutdown-delay): close the listeners, let every worker finish its requests.</summary>
    private void BeginGracefulStop(string logLine)
    {
        _stopping = Libc.SIGTERM;
        _shutdownDelayEnds = null;
        PublishMetricsState(); // /readyz says 503 by the time the line is logged
        if (_upgrade.PartnerAlive) _metrics?.StopAccepting(); // the other supervisor answers the probes
        _log.LogInformation("{Line}", logLine);
        CloseListeners();
        _stopDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(_settings.GracefulTimeout + 1);
        foreach (var w in _workers) Retire(w, StopCause.Shutdown, "shutdown");
    }

    /// <summary>USR2: a new supervisor from the current executable, on these listening sockets.</summary>
    private void StartSuccessor()
    {
        if (_haltCode != null) return;
        if (_upgrade.SuccessorAlive)
        {
            _log.LogWarning("Handling signal: usr2; ignored: the new supervisor (pid {Pid}) still runs",
                _upgrade.Successor!.Id);
            return;
        }
        if (_upgrade.PredecessorAlive)
        {
            _log.LogWarning("Handling signal: usr2; ignored: the old supervisor (pid {Pid}) still runs (TERM it " +
                "first)", _upgrade.PredecessorPid);
            return;
        }
        _log.LogInformation("Handling signal: usr2; starting a new supervisor on the same listening sockets");
        _pidFile?.MoveToOldBin();
        _hooks.BeforeExec(); // gunicorn's pre_exec, before the new supervisor starts
        try
        {
            var successor = _upgrade.StartSuccessor(_args, _sockets, _metrics?.Listener);
            _log.LogInformation("Started the new supervisor (pid: {Pid}); once it is ready, WINCH this one " +
                "(pid {Self}) to retire its workers and TERM it to finish", successor.Id, Environment.ProcessId);
            _ = WatchSuccessorAsync(successor);
        }
        catch (StartupException e)
        {
            _log.LogError("Binary upgrade: {Message} This supervisor serves on", e.Message);
            _pidFile?.MoveBack(0);
        }
    }

    private async Task WatchSuccessorAsync(System.Diagnostics.Process successor)
    {
        await successor.WaitForExitAsync().ConfigureAwait(false);
        Post(new SuccessorExited(successor));
    }

    /// <summary>The new supervisor is gone (it failed, or it was stopped to roll back): this one is the server
    /// again.</summary>
    private void OnSuccessorExit(System.Diagnostics.Process successor)
    {
        var code = successor.ExitCode;
        _log.LogWarning("The new supervisor (pid {Pid}) exited with code {Code}; this one (pid {Self}) remains",
            successor.Id, code, Environment.ProcessId);
        _upgrade.ForgetSuccessor();
        _pidFile?.MoveBack(successor.Id);
        successor.Dispose();
        if (_stopping != null) return;
        _metrics?.StartAccepting();
        if (_workersRetiredByWinch)
            _log.LogWarning("This supervisor has no workers (WINCH): send it HUP to start them again");
    }

    /// <summary>
    /// WINCH, gunicorn's: only while a new supervisor from USR2 runs (a terminal sends WINCH on every resize), this
    /// one's workers retire gracefully and none are started again; it stays, so HUP brings them back.
    /// </summary>
    private void RetireWorkersForSuccessor()
    {
        if (!_upgrade.SuccessorAlive)
        {
            _log.LogDebug("Handling signal: winch; ignored: no new supervisor (USR2) runs");
            return;
        }
        _log.LogInformation("Handling signal: winch; retiring the workers: the new supervisor (pid {Pid}) serves",
            _upgrade.Successor!.Id);
        _target = 0;
        _workersRetiredByWinch = true;
        _metrics?.StopAccepting(); // its /readyz would say 503 for an instance the new supervisor serves
        foreach (var w in _workers.Where(w => !w.Retiring && !w.Killed).ToList())
            Retire(w, StopCause.ScaleDown, "WINCH (binary upgrade)");
    }

    /// <summary>HUP: re-read the configuration, start workers importing the app afresh, retire the old ones.</summary>
    private void Reload()
    {
        if (_workersRetiredByWinch)
        {
            // A rollback: the workers come back even if the configuration no longer reads.
            _workersRetiredByWinch = false;
            _target = _settings.Workers;
            _metrics?.StartAccepting();
        }
        try
        {
            var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                .ToDictionary(d => (string)d.Key, d => (string?)d.Value);
            var fresh = ServerSettings.Parse(_args, env);
            // New workers read the certificate pair again (rotation); one that does not load keeps the old workers.
            if (TlsSetup.Load(fresh) is { } tls)
                _log.LogInformation("Reload: TLS certificate {Subject}, valid until {NotAfter:u}",
                    tls.Certificate.Subject, tls.Certificate.NotAfter.ToUniversalTime());
            RawEnvironment.Apply(fresh.RawEnv); // gunicorn's reload: the old --env undone, the new one set
            try { _python = ChoosePython(fresh, _log); }
            catch (PythonStartupException)
            {
                RawEnvironment.Apply(_settings.RawEnv);
                throw;
            }
            ApplyReloadedProcessSettings(fresh);
            _settings = fresh;
            _target = _settings.Workers;
            _hooks.Reloaded(fresh);
            SetTitle();
        }
        catch (Exception e) when (e is StartupException or PythonStartupException)
        {
            _log.LogError("Reload: {Message} Keeping the current configuration and workers", e.Message);
            return;
        }
        catch (Exception e) when (e is UsageException or PythonStartupException)
        {
            _log.LogError("Reload: {Message}; keeping the current configuration", e.Message);
        }
        foreach (var w in _workers.Where(w => w.IsLive).ToList()) Replace(w, StopCause.Reload, "reload");
    }

    /// <summary>What a reload can change of the process itself: the mask. The account, detaching and the captured
    /// output are settled at start-up, like the sockets.</summary>
    private void ApplyReloadedProcessSettings(ServerSettings fresh)
    {
        if (fresh.Umask is { } mask) Libc.SetUmask((uint)mask);
        if (fresh.User != _settings.User || fresh.Group != _settings.Group)
            _log.LogWarning("Reload: --user and --group take effect at a restart; the server keeps its account");
        if (fresh.Daemon != _settings.Daemon || fresh.CaptureOutput != _settings.CaptureOutput)
            _log.LogWarning("Reload: --daemon and --capture-output take effect at a restart");
    }

    /// <summary>
    /// Stopping: the supervisor's copies of the listening sockets are closed at once (the workers close theirs as
    /// they stop accepting), so new clients are refused instead of waiting in a backlog nobody will accept from.
    /// </summary>
    private void CloseListeners()
    {
        foreach (var s in _sockets) CloseListener(s);
        _sockets = _sockets.Select(s => s with { Fd = -1, Socket = null, UnixPath = null }).ToList();
    }

    /// <summary>
    /// A unix socket bound from --bind is unlinked by the last supervisor to stop: during a binary upgrade the other
    /// one still serves it. .NET's Socket unlinks the path it bound when it is disposed (its finalizer too), so
    /// while the other supervisor runs this one keeps its copy open, referenced, until the process exits.
    /// </summary>
    private void CloseListener(ListenSocket s)
    {
        if (s.UnixPath != null && _upgrade.PartnerAlive)
        {
            if (s.Socket != null) _keptForPartner.Add(s.Socket);
            else if (s.Fd >= 0) Libc.Close(s.Fd);
            return;
        }
        if (s.Socket != null) s.Socket.Dispose();
        else if (s.Fd >= 0) Libc.Close(s.Fd);
        DeleteQuietly(s.UnixPath);
    }

    private readonly List<System.Net.Sockets.Socket> _keptForPartner = new();

    private void OnMessage(WorkerHandle w, WorkerMessage message)
    {
        if (message.Kind == WorkerMessageKind.Ready)
        {
            w.Ready = true;
            w.LastBeat = DateTime.UtcNow;
            _bootFailures = 0;
            PublishMetricsState();
            _log.LogInformation("Worker ready (pid: {Pid})", w.Pid);
            if (w.Replaces is { } old)
            {
                w.Replaces = null;
                Retire(old, StopCause.Reload, "replaced by " + w.Pid);
            }
            AnnounceIfReady();
            return;
        }
        if (message.Kind == WorkerMessageKind.Recycle) Replace(w, message.Cause, message.Reason!);
        else _log.LogWarning("Worker (pid: {Pid}) sent an unknown message: {Line}", w.Pid, message.Reason);
    }

    private void AnnounceIfReady()
    {
        if (_announced) return;
        var live = _workers.Where(x => x.IsLive).ToList();
        if (live.Count < _target || live.Any(x => !x.Ready)) return;
        _announced = true;
        _metrics?.StartAccepting(); // after a binary upgrade: the old supervisor answered until now
        foreach (var s in _sockets) _log.LogInformation("Listening at: {Url} ({Pid})", s.Url, Environment.ProcessId);
        _log.LogInformation("Ready: {Count} worker(s) serving, pids {Pids}", live.Count,
            string.Join(",", live.Select(x => x.Pid)));
        Daemon.ReportReady(_settings);
    }

    private void OnExit(WorkerHandle w, int code)
    {
        _workers.Remove(w);
        w.Control.Dispose();
        _balance?.Set(w.BalanceSlot, -1);
        // Folded before the slot can go to a new worker (Reconcile below): the dead worker's counts are kept.
        _metrics?.CountExit(w.BalanceSlot, ExitReason(w, code));
        PublishMetricsState();
        var how = code > 128 ? $"signal {code - 128}" : $"exit code {code}";
        if (w.Retiring) _log.LogInformation("Worker exited (pid: {Pid}, {How})", w.Pid, how);
        else if (_stopping == null && (w.Ready || w.Killed))
            _log.LogWarning("Worker (pid: {Pid}) died unexpectedly: {How}", w.Pid, how);
        else if (_stopping == null) _log.LogWarning("Worker (pid: {Pid}) exited while booting: {How}", w.Pid, how);
        _hooks.Exited(w.Pid);
        if (w.ReplacedBy is { } successor) successor.Replaces = null;
        // The replacement failed: the old one serves on.
        if (w.Replaces is { } predecessor) predecessor.ReplacedBy = null;

        if (_stopping != null || _haltCode != null) return;
        if (!w.Ready && !w.Killed && code is WorkerProtocol.ExitAppLoad or WorkerProtocol.ExitStartup)
        {
            if (!_workers.Any(x => x.Ready))
            {
                _log.LogCritical("Worker failed to boot (pid: {Pid}, {How}); shutting down", w.Pid, how);
                Halt(code);
                return;
            }
            _log.LogError("A new worker failed to boot (pid: {Pid}); the running workers keep serving", w.Pid);
            _nextSpawnAllowed = DateTime.UtcNow + Backoff();
            return;
        }
        if (!w.Ready && !w.Retiring) _nextSpawnAllowed = DateTime.UtcNow + Backoff(); // crashing at boot: back off
        Reconcile();
    }

    /// <summary>The reason label of a worker's exit for sharpwsgi_worker_exits_total.</summary>
    private string ExitReason(WorkerHandle w, int code)
    {
        if (w.Killed) return "heartbeat";
        if (w.StopReason != null) return w.StopReason;
        if (_stopping != null) return "shutdown";
        return w.Ready ? "crash" : "boot";
    }

    /// <summary>Hands the metrics thread a copy of the workers (it must not read _workers, which this loop
    /// changes); called only when they change, so the idle tick allocates nothing.</summary>
    private void PublishMetricsState()
    {
        _loggers.Outlets?.Statsd?.Workers(_workers.Count); // gunicorn.workers, sent when it changes
        if (_metrics == null) return;
        var views = _workers.Select(w => new WorkerView(w.Pid, w.BalanceSlot, w.Ready)).ToArray();
        _metrics.Publish(views, _stopping == null && _shutdownDelayEnds == null && _haltCode == null &&
            _workers.Any(w => w.Ready && !w.Retiring));
    }

    private TimeSpan Backoff() => TimeSpan.FromSeconds(Math.Min(10, 0.1 * Math.Pow(2, _bootFailures++)));

    private void Halt(int code)
    {
        _haltCode = code;
        PublishMetricsState();
        foreach (var w in _workers) Libc.Kill(w.Pid, Libc.SIGKILL);
    }

    private void OnTick()
    {
        var now = DateTime.UtcNow;
        var checkRss = now >= _nextRssCheck; // reading /proc allocates: once a second, not every tick
        // By index, without a copy (the idle supervisor allocates nothing per tick): Replace only appends to
        // _workers, and workers leave it only in OnExit.
        for (int i = 0, count = _workers.Count; i < count; i++)
        {
            var w = _workers[i];
            if (w.Killed)
            {
                if (now >= w.KillAt) { Libc.Kill(w.Pid, Libc.SIGKILL); w.KillAt = DateTime.MaxValue; }
                continue;
            }
            if (w.Retiring)
            {
                if (now >= w.RetireDeadline)
                {
                    _log.LogWarning("Worker (pid: {Pid}) did not finish within the graceful timeout; killing it",
                        w.Pid);
                    Libc.Kill(w.Pid, Libc.SIGKILL);
                    w.RetireDeadline = DateTime.MaxValue;
                }
                continue;
            }
            if (_settings.Timeout > 0 && now - w.LastBeat > TimeSpan.FromSeconds(_settings.Timeout))
            {
                _log.LogCritical("WORKER TIMEOUT (pid: {Pid}): no heartbeat for {Seconds}s; killing it", w.Pid,
                    _settings.Timeout);
                w.Killed = true;
                w.KillAt = now + TimeSpan.FromSeconds(2);
                Libc.Kill(w.Pid, Libc.SIGABRT);
                continue;
            }
            if (!w.Ready || w.ReplacedBy != null) continue;
            if (_settings.MaxLifetime > 0 && now - w.Started > TimeSpan.FromSeconds(_settings.MaxLifetime))
                Replace(w, StopCause.MaxLifetime, $"ran {_settings.MaxLifetime}s (--max-lifetime)");
            else if (_settings.MaxRssMb > 0 && checkRss && ResidentMb(w.Pid) is { } rss && rss > _settings.MaxRssMb)
                Replace(w, StopCause.MaxRss, $"resident memory {rss} MiB over --max-rss {_settings.MaxRssMb}");
        }
        if (checkRss) _nextRssCheck = now + TimeSpan.FromSeconds(1);
        if (_shutdownDelayEnds is { } delayEnds && now >= delayEnds)
            BeginGracefulStop("Shutdown delay over: closing the listeners");
        if (_upgrade.PredecessorPid != 0 && !_upgrade.PredecessorAlive)
        {
            _log.LogInformation("The old supervisor (pid {Pid}) has exited; this one serves alone",
                _upgrade.PredecessorPid);
            _upgrade.ForgetPredecessor();
            _metrics?.StartAccepting();
            SetTitle();
        }
        if (_stopping != null && now >= _stopDeadline)
        {
            foreach (var w in _workers) Libc.Kill(w.Pid, Libc.SIGKILL);
            _stopDeadline = DateTime.MaxValue;
        }
        Reconcile();
        CollectSmall();
    }

    /// <summary>
    /// Idle, the supervisor allocates nothing; spawns, signals and log lines allocate a little. Left alone, the
    /// GC would first collect after a gen0 budget sized from the CPU cache (about 16 MB here), the resident
    /// size growing by as much, several times the supervisor's own; a gen0 collection per MiB allocated keeps
    /// it near its start size, at a cost of well under a millisecond each.
    /// </summary>
    private void CollectSmall()
    {
        if (GC.GetTotalAllocatedBytes() - _allocatedAtCollection < 1 << 20) return;
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        _allocatedAtCollection = GC.GetTotalAllocatedBytes();
    }

    private static long? ResidentMb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:"))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        }
        catch (IOException) { }
        return null;
    }

    /// <summary>Starts or retires workers until the live ones match the target.</summary>
    private void Reconcile()
    {
        if (_balance != null) _balance.Workers = _target;
        _hooks.WorkerCount(_target);
        if (_stopping != null || _haltCode != null) return;
        var live = 0;
        foreach (var w in _workers) if (w.IsLive) live++; // no LINQ on the every-tick path: it allocates
        for (; live < _target && DateTime.UtcNow >= _nextSpawnAllowed; live++) Spawn();
        if (live <= _target) return;
        var extras = _workers.Where(w => w.IsLive && w.Ready).OrderBy(w => w.Started).Take(live - _target).ToList();
        foreach (var extra in extras) Retire(extra, StopCause.ScaleDown, "fewer workers (TTOU)");
    }

    private void Replace(WorkerHandle old, StopCause cause, string reason)
    {
        if (!old.IsLive || _stopping != null) return;
        _log.LogInformation("Recycling worker (pid: {Pid}): {Reason}; starting its replacement", old.Pid, reason);
        old.StopReason ??= cause.Label();
        var next = Spawn();
        next.Replaces = old;
        old.ReplacedBy = next;
    }

    private void Retire(WorkerHandle w, StopCause cause, string reason)
    {
        if (w.Retiring) return;
        w.Retiring = true;
        w.StopReason ??= cause.Label();
        PublishMetricsState();
        w.RetireDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(_settings.GracefulTimeout + 1);
        _log.LogInformation("Stopping worker (pid: {Pid}): {Reason}", w.Pid, reason);
        Libc.Kill(w.Pid, Libc.SIGTERM);
    }

    /// <summary>Proves to a worker that a request came from a sibling (see Hosting.StallHandover).</summary>
    private readonly string _handoverKey =
        Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    private WorkerHandle Spawn()
    {
        var pipe = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
        var psi = WorkerProtocol.StartInfo(_python, _library, _args);
        var env = psi.Environment;
        env[WorkerProtocol.FdsVariable] = string.Join(",", _sockets.Where(s => s.Fd >= 0).Select(s => s.Fd));
        env[WorkerProtocol.TlsFdsVariable] =
            string.Join(",", _sockets.Where(s => s.Fd >= 0 && s.Tls).Select(s => s.Fd));
        env[WorkerProtocol.ReusePortVariable] =
            string.Join(",", _sockets.Where(s => s.ReusePortAddress != null).Select(s => s.ReusePortAddress));
        env[WorkerProtocol.MultiprocessVariable] = _target > 1 ? "1" : "0";
        env[WorkerProtocol.ControlFdVariable] = pipe.GetClientHandleAsString();
        env[WorkerProtocol.HandoverKeyVariable] = _handoverKey;
        RawEnvironment.ApplyTo(env);
        if (Daemon.OutputIsCallers(_settings)) env[WorkerProtocol.ReleaseStdioVariable] = "1";
        var slot = Enumerable.Range(0, AcceptBalance.Slots).First(i => _workers.All(w => w.BalanceSlot != i));
        env[WorkerProtocol.BalanceFileVariable] = _balancePath;
        env[WorkerProtocol.BalanceSlotVariable] = slot.ToString();
        if (_metricsTable != null)
        {
            env[WorkerProtocol.MetricsFileVariable] = _metricsPath;
            env[WorkerProtocol.MetricsSlotVariable] = slot.ToString();
        }
        if (_settings.MaxRequests > 0)
        {
            var jitter = _settings.MaxRequestsJitter > 0 ? _random.Next(0, _settings.MaxRequestsJitter + 1) : 0;
            env[WorkerProtocol.MaxRequestsVariable] = (_settings.MaxRequests + jitter).ToString();
        }
        _hooks.BeforeSpawn(env);
        var process = StartWorkerProcess(psi);
        pipe.DisposeLocalCopyOfClientHandle(); // only the worker holds the write end, so its exit closes the pipe
        var worker = new WorkerHandle { Process = process, Control = pipe, BalanceSlot = slot };
        _hooks.Spawned(worker.Pid);
        _workers.Add(worker);
        _log.LogInformation("Started worker (pid: {Pid})", worker.Pid);
        _metrics?.CountStart();
        PublishMetricsState();
        StartReader(worker);
        _ = WaitForExitAsync(worker);
        return worker;
    }

    /// <summary>
    /// A small thread per worker reads its control pipe with blocking reads (an anonymous pipe has no true
    /// async reads on Linux: ReadAsync would hold a thread-pool thread in read() just the same).
    /// </summary>
    private void StartReader(WorkerHandle w)
    {
        // Beats, the one frequent message, are recorded here and not queued: they allocate nothing.
        var thread = new Thread(() => ControlChannel.Read(w.Control, m =>
            {
                if (m.Kind == WorkerMessageKind.Beat) w.LastBeat = DateTime.UtcNow;
                else Post(new MessageEvent(w, m));
            }),
            maxStackSize: 256 * 1024) { IsBackground = true, Name = $"control-{w.Pid}" };
        thread.Start();
    }

    private async Task WaitForExitAsync(WorkerHandle w)
    {
        await w.Process.WaitForExitAsync().ConfigureAwait(false);
        Post(new ExitEvent(w, w.Process.ExitCode));
    }

    /// <summary>The interpreter the workers run in (no subprocess: each worker checks its own Python).</summary>
    internal static string ChoosePython(ServerSettings settings, ILogger? log)
    {
        var (python, source) = PythonLocator.Choose(settings.Python);
        if (!File.Exists(python))
            throw new PythonStartupException(
                $"Python interpreter not found: {python} (chosen by {source}) does not exist. Pass --python with " +
                "the path of a CPython 3.9+ executable, or activate a virtualenv.");
        log?.LogInformation("Workers run in {Python} (chosen by {Source})", python, source);
        return python;
    }

    /// <summary>Process.Start, with a failure to execute the interpreter as one paragraph.</summary>
    internal static Process StartWorkerProcess(ProcessStartInfo psi)
    {
        try
        {
            return Process.Start(psi) ?? throw new StartupException($"cannot start a worker process ({psi.FileName})");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new PythonStartupException($"Could not run {psi.FileName} as a worker: {e.Message}. It must be " +
                "an executable CPython 3.9+ interpreter.");
        }
    }

    private FileSystemWatcher? StartReloadWatcher()
    {
        var root = Directory.GetCurrentDirectory();
        if (_settings.App is { } app && app.Split(':')[0].EndsWith(".py"))
            root = Path.GetDirectoryName(Path.GetFullPath(app.Split(':')[0]))!;
        var watcher = new FileSystemWatcher(root, "*.py")
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size,
        };
        var last = DateTime.MinValue;
        void Changed(object? _, FileSystemEventArgs e)
        {
            // Editors write a file in several steps: one reload per burst.
            lock (watcher)
            {
                if (DateTime.UtcNow - last < TimeSpan.FromMilliseconds(500)) return;
                last = DateTime.UtcNow;
            }
            Post(new ReloadFilesChanged(e.FullPath));
        }
        watcher.Changed += Changed;
        watcher.Created += Changed;
        watcher.Renamed += Changed;
        watcher.EnableRaisingEvents = true;
        foreach (var extra in _settings.ReloadExtraFiles)
        {
            var full = Path.GetFullPath(extra);
            var dir = Directory.Exists(full) ? full : Path.GetDirectoryName(full)!;
            var w2 = new FileSystemWatcher(dir, Directory.Exists(full) ? "*" : Path.GetFileName(full))
            {
                IncludeSubdirectories = Directory.Exists(full),
            };
            w2.Changed += Changed;
            w2.Created += Changed;
            w2.EnableRaisingEvents = true;
        }
        _log.LogInformation("Watching {Root} for changes (--reload)", root);
        return watcher;
    }
}
