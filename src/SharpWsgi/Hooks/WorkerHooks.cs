using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Hooks;

/// <summary>
/// The worker-side hooks of a Python config file, run in this worker's own Python. There is no fork, so nothing is
/// inherited from a master: the worker executes the file itself (Hooks/gunicorn_config.py's WorkerSide) right
/// after its Python is attached and before the app is imported, and then calls, as gunicorn does:
/// post_fork(server, worker) there; post_worker_init(worker) once the app is loaded; pre_request(worker, req) and
/// post_request(worker, req, environ, resp) around each request on its Python thread (<see cref="IRequestHooks"/>);
/// worker_int(worker) on INT or QUIT, worker_abort(worker) on ABRT (the heartbeat kill) and worker_exit(server,
/// worker) when the worker ends. With --interpreters N each sub-interpreter executes the file too, for its own
/// pre_request and post_request. Made only when the file defines a worker-side hook.
/// </summary>
internal sealed class WorkerHooks
{
    /// <summary>The worker's number in spawn order (gunicorn's worker.age), set by the supervisor.</summary>
    public const string AgeVariable = "SHARPWSGI_WORKER_AGE";

    /// <summary>How long a signal's hook may wait for the GIL and run before the worker stops without it: the
    /// supervisor's SIGKILL follows a fast stop or a heartbeat kill within 2 s.</summary>
    private static readonly TimeSpan SignalHookWait = TimeSpan.FromSeconds(1);
    /// <summary>worker_exit runs after the requests are done, within the graceful timeout's last second.</summary>
    private static readonly TimeSpan ExitHookWait = TimeSpan.FromSeconds(5);

    private readonly PythonConfig _config;
    private readonly string _cfgJson, _stateJson;
    private readonly ILogger _log;
    private readonly PyOwned _side; // the main interpreter's WorkerSide
    private int _exited;

    private WorkerHooks(PythonConfig config, string cfgJson, string stateJson, ILogger log, PyOwned side)
    {
        _config = config;
        _cfgJson = cfgJson;
        _stateJson = stateJson;
        _log = log;
        _side = side;
    }

    /// <summary>Executes the file in the main interpreter and runs post_fork; null when the file has no worker
    /// hook. A file that fails here, or a post_fork that raises, fails the worker's boot (as in gunicorn).</summary>
    public static WorkerHooks? Start(ServerSettings settings, ErrorLogProvider loggers, long maxRequests)
    {
        if (settings.PythonConfig is not { HasWorkerHooks: true } config) return null;
        int.TryParse(WorkerProtocol.Take(AgeVariable), out var age);
        // The supervisor's pid is the worker's parent's: the Python side asks os.getppid().
        var state = $"{{\"num_workers\":{settings.Workers},\"age\":{age}," +
                    $"\"max_requests\":{(maxRequests > 0 ? maxRequests : 0)}}}";
        var log = loggers.CreateLogger("sharpwsgi.hooks");
        var cfg = GunicornSettings.EffectiveConfigJson(settings);
        return PythonRuntime.RunOnMainThreadState(() =>
        {
            var side = CreateSide(config, cfg, state, log, "executing it in the worker");
            var hooks = new WorkerHooks(config, cfg, state, log, side);
            hooks.CallForBoot("post_fork");
            return hooks;
        });
    }

    /// <summary>The Python side in the current interpreter (GIL held): the runtime, then the file.</summary>
    private static PyOwned CreateSide(PythonConfig config, string cfgJson, string stateJson, ILogger log,
        string stage)
    {
        try
        {
            using var globals = Py.Dict();
            using (var name = Py.Str("sharpwsgi_gunicorn_config")) Py.DictSet(globals, "__name__", name);
            Py.Exec(PythonConfig.RuntimeSource, globals);
            var logType = ManagedType.Create("sharpwsgi.HookLog", "writes a hook's log line to the error log",
                callable: true, iterator: false);
            using var emit = logType.CreateInstance(new HookLog(log));
            using var location = Py.Str(config.Location);
            using var cfg = Py.Str(cfgJson);
            using var state = Py.Str(stateJson);
            using var args = Py.Tuple(location, cfg, emit, state);
            var side = Py.CallArgs(Py.DictGet(globals, "WorkerSide"), args);
            return side.ToOwned();
        }
        catch (PythonException e)
        {
            throw new AppLoadException($"The config file {config.FileName ?? config.Location} failed when {stage}: " +
                $"{e.TypeName}: {e.PythonMessage}; the worker cannot boot.", e.Traceback);
        }
    }

    /// <summary>post_fork or post_worker_init (GIL held): one that raises fails the worker's boot.</summary>
    private void CallForBoot(string hook, BorrowedRef argument = default)
    {
        if (!_config.Hooks.Contains(hook)) return;
        try
        {
            using var method = Py.GetAttr(_side, hook);
            using var result = argument.IsNull ? Py.Call(method) : Py.Call(method, argument);
        }
        catch (PythonException e)
        {
            throw new AppLoadException($"The {hook} hook of {_config.FileName ?? _config.Location} raised " +
                $"{e.TypeName}: {e.PythonMessage}; the worker cannot boot (as in gunicorn).", e.Traceback);
        }
    }

    /// <summary>Wraps the app's loader: post_worker_init(worker) once the main interpreter's app is loaded, with
    /// worker.wsgi set to it.</summary>
    public Func<PyOwned> AfterAppLoad(Func<PyOwned> load) => () =>
    {
        var app = load();
        if (PythonInterpreter.Current.IsMain) CallForBoot("post_worker_init", app.Borrow());
        return app;
    };

    /// <summary>The per-request hooks, made in each interpreter; null (no per-request cost) without either.
    /// </summary>
    public Func<IRequestHooks?>? RequestHooks =>
        _config.Hooks.Contains("pre_request") || _config.Hooks.Contains("post_request")
            ? () =>
            {
                if (PythonInterpreter.Current.IsMain) return new PerRequest(_side);
                using var side = CreateSide(_config, _cfgJson, _stateJson, _log, "executing it in a sub-interpreter");
                return new PerRequest(side);
            }
            : null;

    /// <summary>worker_int (INT, QUIT) or worker_abort (ABRT): run on a Python thread of its own, waited for at
    /// most <see cref="SignalHookWait"/> (Python may be stuck, which is why an ABRT came).</summary>
    public void Signalled(string hook)
    {
        if (_config.Hooks.Contains(hook)) RunBounded(hook, SignalHookWait, side => CallLogged(side, "signalled", hook));
    }

    /// <summary>worker_exit(server, worker), once, as the worker ends.</summary>
    public void Exiting(TimeSpan? wait = null)
    {
        if (Interlocked.Exchange(ref _exited, 1) != 0 || !_config.Hooks.Contains("worker_exit")) return;
        RunBounded("worker_exit", wait ?? ExitHookWait, side => CallLogged(side, "exiting", null));
    }

    private void CallLogged(BorrowedRef side, string method, string? argument)
    {
        try
        {
            using var bound = Py.GetAttr(side, method);
            if (argument == null) { using var r = Py.Call(bound); }
            else
            {
                using var name = Py.Str(argument);
                using var r = Py.Call(bound, name);
            }
        }
        catch (PythonException e) { _log.LogError("Hook {Hook} failed:\n{Traceback}", method, e.Traceback.TrimEnd()); }
    }

    private void RunBounded(string hook, TimeSpan wait, Action<BorrowedRef> call)
    {
        // Not disposed: a thread still waiting for the GIL when the wait ends sets it later.
        var done = new ManualResetEventSlim();
        PythonThread.Start("hook-" + hook, () =>
        {
            try { call(_side); }
            finally { done.Set(); }
        });
        if (!done.Wait(wait))
            _log.LogWarning("The {Hook} hook did not finish within {Seconds} s (Python is busy or stuck); the worker " +
                "goes on without it", hook, wait.TotalSeconds);
    }

    /// <summary>pre_request and post_request in one interpreter.</summary>
    private sealed class PerRequest : IRequestHooks
    {
        private readonly PyOwned _started, _finished;

        /// <summary>Bound methods of the interpreter's WorkerSide, looked up once (GIL held); they keep it alive.
        /// </summary>
        public PerRequest(PyOwned side)
        {
            var started = Py.GetAttr(side, "request_started");
            _started = started.ToOwned();
            var finished = Py.GetAttr(side, "request_finished");
            _finished = finished.ToOwned();
            using var wants = Py.GetAttr(side, "post_request_hook");
            WantsResponseHead = !Py.IsNone(wants);
        }

        public bool WantsResponseHead { get; }

        public NewRef Started(BorrowedRef environ) => Py.Call(_started, environ);

        public void Finished(BorrowedRef started, BorrowedRef environ, BorrowedRef status, int statusCode,
            BorrowedRef headers, long bodyBytes, long declaredLength)
        {
            if (!WantsResponseHead) return;
            try
            {
                using var code = Py.Long(statusCode);
                using var sent = Py.Long(bodyBytes);
                using var length = Py.Long(declaredLength);
                using var args = Py.Tuple(started, environ, status.IsNull ? Py.None : status, code,
                    headers.IsNull ? Py.None : headers, sent, length);
                using var result = Py.CallArgs(_finished, args);
            }
            catch (PythonException) { } // request_finished logs the hook's own exceptions; this is past them
        }
    }

    /// <summary>The hooks' log object's output: (levelno, text) into the worker's error log.</summary>
    private sealed class HookLog : IPyCallable
    {
        private readonly ILogger _log;
        public HookLog(ILogger log) => _log = log;

        public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
        {
            if (PyArgs.Count(args) != 2 || !Py.IsInt(PyArgs.At(args, 0)) || !Py.IsStr(PyArgs.At(args, 1)))
                throw new PyRaiseException(PyErrorKind.TypeError, "emit(levelno, text)");
            var levelno = Py.AsLong(PyArgs.At(args, 0));
            var level = levelno >= 50 ? LogLevel.Critical : levelno >= 40 ? LogLevel.Error
                : levelno >= 30 ? LogLevel.Warning : levelno >= 20 ? LogLevel.Information : LogLevel.Debug;
            if (_log.IsEnabled(level)) _log.Log(level, "{Message}", Py.StrToString(PyArgs.At(args, 1)));
            return Py.None.NewReference();
        }
    }
}
