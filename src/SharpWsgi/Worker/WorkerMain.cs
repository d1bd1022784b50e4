using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Hooks;
using SharpWsgi.Hosting;
using SharpWsgi.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Worker;

/// <summary>
/// A worker process: the interpreter's own python (which loaded SharpWsgi's library, see
/// <see cref="WorkerModule"/>), its Python threads and Kestrel on the listeners the supervisor handed down. It
/// reports readiness and heartbeats through the control pipe and obeys
/// TERM (finish in-flight requests, then exit), QUIT/INT (exit now) and USR1 (reopen the log).
/// </summary>
public static class WorkerMain
{
    /// <summary>The worker from boot to exit, step by step; the host is null until the server starts (the
    /// SIGABRT handler and a stuck report may come before).</summary>
    public static int Run(ServerSettings settings, ErrorLogProvider loggers, ILogger log, string version)
    {
        var control = ControlChannel.FromEnvironment();
        var balance = AcceptBalance.FromEnvironment();
        using var metrics = Metrics.WorkerMetrics.FromEnvironment(loggers.Outlets?.Statsd);
        ServerHost? host = null;
        WorkerHooks? hooks = null;
        using var heartbeatKill = ExitOnHeartbeatKill(log, () => host, () => hooks);
        var handedDown = HandedDown.Take();

        log.LogInformation("Booting worker with pid: {Pid}", Environment.ProcessId);
        var python = AttachToPython(settings, log);
        if (handedDown.Check) return CheckApp(settings, version, python);
        WorkerProcessFlags.Apply(settings); // --name, --capture-output, --daemon
        // gunicorn's post_fork: here, in the worker's own Python, before the app is imported (there is no fork).
        hooks = WorkerHooks.Start(settings, loggers, handedDown.MaxRequests);
        try
        {
            var options = GatewayOptions(settings, version, handedDown.Multiprocess, balance) with
            {
                RequestHooks = hooks?.RequestHooks,
            };
            var gateway = LoadApp(settings, options, loggers, log, version, hooks);

            var lifecycle = new WorkerLifecycle(handedDown.MaxRequests);
            AskForReplacementWhenDue(lifecycle, handedDown.MaxRequests, gateway, control, () => host);
            using var accessLog = OpenAccessLog(settings, loggers);
            host = ServerHost.StartAsync(settings, gateway, loggers, lifecycle, handedDown.Listeners,
                    handedDown.ReusePortAddresses, balance, accessLog, metrics, handedDown.HandoverKey)
                .GetAwaiter().GetResult();
            using var stall = StartHeartbeat(host, gateway, control, options.HeartbeatInterval, log);

            using var signals = new WorkerSignals(reopenLogs: () =>
            {
                loggers.Reopen();
                accessLog?.Reopen();
                WorkerProcessFlags.ReopenCapturedOutput(settings, log);
            });
            WorkerProcessFlags.BeforeReady();
            control.Send(WorkerMessage.Ready);
            log.LogDebug("Worker {Pid} accepting", Environment.ProcessId);

            var graceful = signals.WaitForStop();
            if (!graceful) hooks?.Signalled("worker_int");
            Stop(host, gateway, lifecycle, graceful, settings.GracefulTimeout, log);
            log.LogInformation("Worker exiting (pid: {Pid})", Environment.ProcessId);
            return 0;
        }
        finally { hooks?.Exiting(); } // gunicorn's worker_exit, on every way out of a booted worker
    }

    /// <summary>SIGABRT is the supervisor's heartbeat kill: stop taking connections at once and exit, even while
    /// a C call holds the GIL (nothing here needs Python). SIGKILL follows if this does not finish.</summary>
    private static PosixSignalRegistration ExitOnHeartbeatKill(ILogger log, Func<ServerHost?> host,
        Func<WorkerHooks?> hooks) =>
        PosixSignalRegistration.Create((PosixSignal)Libc.SIGABRT, c =>
        {
            c.Cancel = true;
            log.LogCritical("Worker {Pid} received SIGABRT (heartbeat timeout): exiting", Environment.ProcessId);
            try { host()?.StopAcceptingAsync().Wait(200); } catch (Exception) { }
            // gunicorn's worker_abort, then worker_exit as its SystemExit unwinds; each waited for briefly.
            hooks()?.Signalled("worker_abort");
            hooks()?.Exiting(TimeSpan.FromMilliseconds(500));
            Environment.Exit(WorkerProtocol.ExitHeartbeatAbort);
        });

    /// <summary>Takes the Python this process runs (--chdir applied first; the working directory and
    /// --pythonpath in front of sys.path) and refuses an --interpreters count it cannot run.</summary>
    private static PythonInfo AttachToPython(ServerSettings settings, ILogger log)
    {
        if (settings.Chdir != null)
        {
            if (!Directory.Exists(settings.Chdir))
                throw new StartupException($"--chdir {settings.Chdir}: no such directory.");
            Directory.SetCurrentDirectory(settings.Chdir);
        }
        var leading = new List<string> { Directory.GetCurrentDirectory() };
        leading.AddRange(settings.PythonPath.Select(Path.GetFullPath));
        PythonRuntime.Attach(leading, new[] { "sharpwsgi" });
        var info = PythonRuntime.Info!;
        log.LogInformation("Python {Version} ({Executable}), libpython {Library}", info.Version, info.Executable,
            DescribeCApi(info));
        PythonInterpreter.CheckSupported(settings.Interpreters);
        return info;
    }

    /// <summary>--check-config's worker: the same start-up and app import as a serving worker (so the same
    /// failures and exit codes), then a report on stdout instead of serving.</summary>
    private static int CheckApp(ServerSettings settings, string version, PythonInfo info)
    {
        var app = PythonRuntime.RunOnMainThreadState(() =>
        {
            using var loaded = PythonLogging.ConfigureThenLoad(settings, version);
            return Py.Repr(loaded.Borrow());
        });
        if (settings.Interpreters > 1)
            WsgiGateway.CheckSubinterpreterImport(() => PythonLogging.ConfigureThenLoad(settings, version),
                settings.Interpreters);
        Console.Out.WriteLine($"{WorkerProtocol.CheckLinePrefix}python {PythonRuntime.LoadedVersion()} " +
                              info.Executable);
        Console.Out.WriteLine($"{WorkerProtocol.CheckLinePrefix}libpython {DescribeCApi(info)}");
        Console.Out.WriteLine($"{WorkerProtocol.CheckLinePrefix}app {app.ReplaceLineEndings(" ")}");
        Console.Out.Flush();
        return 0;
    }

    /// <summary>Where the C API lives: a shared libpython, or the executable itself (a static build).</summary>
    private static string DescribeCApi(PythonInfo info) =>
        info.LibPythonPath == info.Executable || !info.LibPythonPath.Contains(".so")
            ? $"linked into {info.LibPythonPath} (static)"
            : info.LibPythonPath;

    private static WsgiOptions GatewayOptions(ServerSettings settings, string version, bool multiprocess,
        AcceptBalance? balance) => new()
    {
        Threads = settings.Threads,
        QueueSize = settings.QueueSize,
        RootPath = settings.RootPath,
        // Interpreters share no Python state: to the app they are processes.
        Multiprocess = multiprocess || settings.Interpreters > 1,
        MultiprocessProbe = balance != null && settings.Interpreters == 1 ? () => balance.Workers > 1 : null,
        ServerSoftware = $"sharpwsgi/{version}",
        RequestTimeout = settings.RequestTimeout,
        RequestTimeoutGrace = settings.RequestTimeoutGrace,
        QueueTimeout = settings.QueueTimeout,
        HeartbeatInterval =
            TimeSpan.FromSeconds(settings.Timeout > 0 ? Math.Clamp(settings.Timeout / 4, 0.05, 1) : 1),
        NoProgressTimeout = settings.Timeout,
        SwitchInterval = settings.SwitchInterval,
        TempDirectory = settings.TempDirectory,
        ResponseSpoolSize = settings.ResponseSpoolSize,
        ResponseSpoolTotal = settings.ResponseSpoolTotal,
        SendTimeout = settings.SendTimeout,
    };

    /// <summary>Imports the app in every interpreter and builds the gateway around it (its Python threads start
    /// waiting for requests; the monitors start with the heartbeat).</summary>
    private static WsgiGateway LoadApp(ServerSettings settings, WsgiOptions options, ErrorLogProvider loggers,
        ILogger log, string version, WorkerHooks? hooks)
    {
        var appLog = new GatewayLogAdapter(loggers.CreateLogger("sharpwsgi.app"));
        var gatewayLog = new GatewayLogAdapter(loggers.CreateLogger("sharpwsgi.gateway"));
        Func<PyOwned> load = () => PythonLogging.ConfigureThenLoad(settings, version);
        // gunicorn's post_worker_init: right after the app is loaded.
        if (hooks != null) load = hooks.AfterAppLoad(load);
        var gateway = WsgiGateway.Create(settings.Interpreters, load, options, appLog, gatewayLog);
        if (settings.Interpreters > 1)
            log.LogInformation("Serving with {Interpreters} Python interpreters, each with its own GIL and {Threads} " +
                "thread(s)", settings.Interpreters, settings.Threads);
        return gateway;
    }

    /// <summary>The two reasons a worker asks the supervisor for a replacement: --max-requests served, or Python
    /// threads stuck.</summary>
    private static void AskForReplacementWhenDue(WorkerLifecycle lifecycle, long maxRequests, WsgiGateway gateway,
        ControlChannel control, Func<ServerHost?> host)
    {
        lifecycle.MaxRequestsReached += () =>
            control.Send(WorkerMessage.Recycle(StopCause.MaxRequests,
                $"served {maxRequests} requests (--max-requests)"));
        gateway.OnStuck = reason =>
        {
            // New connections wait in the shared backlog for the replacement rather than queue behind stuck threads.
            _ = host()?.StopAcceptingAsync();
            control.Send(WorkerMessage.Recycle(StopCause.Stuck, reason));
        };
    }

    private static AccessLog? OpenAccessLog(ServerSettings settings, ErrorLogProvider loggers)
    {
        var accessLogger = loggers.CreateLogger("sharpwsgi.access");
        // The file, syslog (--log-syslog), both or none.
        if (LogOutlets.AccessLineSink(settings.AccessLogFile, loggers.Outlets,
                message => accessLogger.LogWarning("{Message}", message)) is not { } sink) return null;
        return new AccessLog(sink, settings.AccessLogFormat, settings.JsonLogs,
            AccessLogSkip.From(settings.AccessLogSkip));
    }

    /// <summary>Starts the monitors, whose beats go to the supervisor and to the stall guard: a late heartbeat
    /// pauses accepting, recorded here, outside Python, as well as sent.</summary>
    private static StallGuard StartHeartbeat(ServerHost host, WsgiGateway gateway, ControlChannel control,
        TimeSpan interval, ILogger log)
    {
        var stall = new StallGuard(interval, host.PauseAccepting, host.ResumeAccepting, log);
        gateway.OnHeartbeat = () =>
        {
            stall.Beat();
            control.Send(WorkerMessage.Beat);
        };
        stall.Start();
        gateway.StartMonitors();
        return stall;
    }

    /// <summary>A graceful stop lets in-flight requests finish within --graceful-timeout; a fast one closes
    /// everything now.</summary>
    private static void Stop(ServerHost host, WsgiGateway gateway, WorkerLifecycle lifecycle, bool graceful,
        double gracefulTimeout, ILogger log)
    {
        if (graceful)
        {
            host.RetireAsync(TimeSpan.FromSeconds(gracefulTimeout), () =>
                    log.LogInformation("Worker {Pid} stopping gracefully ({Requests} requests served)",
                        Environment.ProcessId, lifecycle.Requests))
                .GetAwaiter().GetResult();
        }
        else host.StopAsync(TimeSpan.Zero).GetAwaiter().GetResult();
        // Each sub-interpreter ends on its own home thread (the main one ends with the process).
        if (gateway.Interpreters > 1) gateway.Shutdown(TimeSpan.FromSeconds(graceful ? 5 : 1));
    }
}
