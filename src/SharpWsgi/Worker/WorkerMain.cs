using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
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
    /// <summary>--check-config's worker: the same start-up and app import as a serving worker (so the same
    /// failures and exit codes), then a report on stdout instead of serving.</summary>
    private static int CheckApp(ServerSettings settings, string version, PythonInfo info)
    {
        var app = PythonRuntime.RunOnMainThreadState(() =>
        {
            using var loaded = AppLoader.Load(settings.App, version);
            return Py.Repr(loaded.Borrow());
        });
        if (settings.Interpreters > 1)
            WsgiGateway.CheckSubinterpreterImport(() => AppLoader.Load(settings.App, version), settings.Interpreters);
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

    public static int Run(ServerSettings settings, ErrorLogProvider loggers, ILogger log, string version)
    {
        var control = ControlChannel.FromEnvironment();
        var balance = AcceptBalance.FromEnvironment();
        using var metrics = Metrics.WorkerMetrics.FromEnvironment();
        ServerHost? host = null;
        // SIGABRT is the supervisor's heartbeat kill: stop taking connections at once and exit, even while
        // a C call holds the GIL (nothing here needs Python). SIGKILL follows if this does not finish.
        using var abort = PosixSignalRegistration.Create((PosixSignal)Libc.SIGABRT, c =>
        {
            c.Cancel = true;
            log.LogCritical("Worker {Pid} received SIGABRT (heartbeat timeout): exiting", Environment.ProcessId);
            try { host?.StopAcceptingAsync().Wait(200); } catch (Exception) { }
            Environment.Exit(WorkerProtocol.ExitHeartbeatAbort);
        });
        var fds = WorkerProtocol.TakeList(WorkerProtocol.FdsVariable).Select(int.Parse).ToList();
        var tlsFds = WorkerProtocol.TakeList(WorkerProtocol.TlsFdsVariable).Select(int.Parse).ToHashSet();
        var reusePort = WorkerProtocol.TakeList(WorkerProtocol.ReusePortVariable).ToList();
        var multiprocess = WorkerProtocol.Take(WorkerProtocol.MultiprocessVariable) == "1";
        long.TryParse(WorkerProtocol.Take(WorkerProtocol.MaxRequestsVariable), out var maxRequests);
        var check = WorkerProtocol.Take(WorkerProtocol.CheckVariable) == "1";

        log.LogInformation("Booting worker with pid: {Pid}", Environment.ProcessId);
        if (settings.Chdir != null)
        {
            if (!Directory.Exists(settings.Chdir))
                throw new StartupException($"--chdir {settings.Chdir}: no such directory.");
            Directory.SetCurrentDirectory(settings.Chdir);
        }
        var cwd = Directory.GetCurrentDirectory();
        var leading = new List<string> { cwd };
        leading.AddRange(settings.PythonPath.Select(Path.GetFullPath));
        PythonRuntime.Attach(leading, new[] { "sharpwsgi" });
        var info = PythonRuntime.Info!;
        log.LogInformation("Python {Version} ({Executable}), libpython {Library}", info.Version, info.Executable,
            DescribeCApi(info));
        var interpreters = settings.Interpreters;
        PythonInterpreter.CheckSupported(interpreters);
        if (check) return CheckApp(settings, version, info);

        var options = new WsgiOptions
        {
            Threads = settings.Threads,
            QueueSize = settings.QueueSize,
            RootPath = settings.RootPath,
            // Interpreters share no Python state: to the app they are processes.
            Multiprocess = multiprocess || interpreters > 1,
            MultiprocessProbe = balance != null && interpreters == 1 ? () => balance.Workers > 1 : null,
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
        var appLog = new GatewayLogAdapter(loggers.CreateLogger("sharpwsgi.app"));
        var gatewayLog = new GatewayLogAdapter(loggers.CreateLogger("sharpwsgi.gateway"));
        var gateway = interpreters == 1
            ? PythonRuntime.RunOnMainThreadState(() =>
                WsgiGateway.Create(() => AppLoader.Load(settings.App, version), options, appLog, gatewayLog))
            : WsgiGateway.Create(interpreters, () => AppLoader.Load(settings.App, version), options, appLog,
                gatewayLog);
        if (interpreters > 1)
            log.LogInformation("Serving with {Interpreters} Python interpreters, each with its own GIL and {Threads} " +
                "thread(s)", interpreters, settings.Threads);

        var lifecycle = new WorkerLifecycle(maxRequests);
        lifecycle.MaxRequestsReached += () =>
            control.Send(WorkerMessage.Recycle(StopCause.MaxRequests,
                $"served {maxRequests} requests (--max-requests)"));
        gateway.OnStuck = reason =>
        {
            // New connections wait in the shared backlog for the replacement rather than queue behind stuck threads.
            _ = host?.StopAcceptingAsync();
            control.Send(WorkerMessage.Recycle(StopCause.Stuck, reason));
        };

        var accessLogger = loggers.CreateLogger("sharpwsgi.access");
        using var accessLog = settings.AccessLogFile is { } accessPath
            ? new AccessLog(accessPath, settings.AccessLogFormat, settings.JsonLogs,
                message => accessLogger.LogWarning("{Message}", message),
                AccessLogSkip.From(settings.AccessLogSkip))
            : null;
        host = ServerHost.StartAsync(settings, gateway, loggers, lifecycle,
                fds.Select(fd => new InheritedListener(fd, tlsFds.Contains(fd))).ToList(), reusePort, balance,
                accessLog, metrics, WorkerProtocol.Take(WorkerProtocol.HandoverKeyVariable))
            .GetAwaiter().GetResult();
        // A late heartbeat pauses accepting: the beat is recorded here, outside Python, as well as sent.
        using var stall = new StallGuard(options.HeartbeatInterval, host.PauseAccepting, host.ResumeAccepting, log);
        gateway.OnHeartbeat = () =>
        {
            stall.Beat();
            control.Send(WorkerMessage.Beat);
        };
        stall.Start();
        gateway.StartMonitors();

        using var stop = new ManualResetEventSlim();
        var graceful = true;
        void Stop(PosixSignalContext c, bool gracefully)
        {
            c.Cancel = true;
            if (!gracefully) graceful = false; // a fast stop wins over a graceful one
            stop.Set();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, true));
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => Stop(c, false));
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, false));
        // The supervisor reloads: nothing to do here.
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);
        using var usr1 = PosixSignalRegistration.Create((PosixSignal)Libc.SIGUSR1, c =>
        {
            c.Cancel = true;
            loggers.Reopen();
            accessLog?.Reopen();
        });
        control.Send(WorkerMessage.Ready);
        log.LogDebug("Worker {Pid} accepting", Environment.ProcessId);

        stop.Wait();
        if (graceful)
        {
            host.RetireAsync(TimeSpan.FromSeconds(settings.GracefulTimeout), () =>
                    log.LogInformation("Worker {Pid} stopping gracefully ({Requests} requests served)",
                        Environment.ProcessId, lifecycle.Requests))
                .GetAwaiter().GetResult();
        }
        else host.StopAsync(TimeSpan.Zero).GetAwaiter().GetResult();
        // Each sub-interpreter ends on its own home thread (the main one ends with the process).
        if (interpreters > 1) gateway.Shutdown(TimeSpan.FromSeconds(graceful ? 5 : 1));
        log.LogInformation("Worker exiting (pid: {Pid})", Environment.ProcessId);
        return 0;
    }
}
