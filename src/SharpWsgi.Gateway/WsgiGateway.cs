using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// The gateway of one process: one <see cref="InterpreterGateway"/> per Python interpreter (the loaded app, the
/// PEP 3333 objects, the Python thread pool and the monitor of that interpreter), and the choice between them.
/// The host calls <see cref="TryDispatch"/> from its own threads; a request goes to the least loaded interpreter.
/// </summary>
public sealed class WsgiGateway
{
    private readonly InterpreterGateway[] _units;
    private readonly long[] _beats;
    private long _lastBeat;
    private uint _next;

    private WsgiGateway(InterpreterGateway[] units, ByteBudget spoolBudget)
    {
        _units = units;
        SpoolBudget = spoolBudget;
        _beats = new long[units.Length];
        for (int i = 0; i < units.Length; i++)
        {
            var index = i;
            var unit = units[i];
            unit.Watchdog.OnHeartbeat = () => Beat(index);
            unit.Watchdog.OnStuck = reason => OnStuck?.Invoke(
                units.Length > 1 ? $"{reason} (Python interpreter {unit.Interpreter?.Id ?? 0})" : reason);
        }
    }

    /// <summary>Called (without a GIL) when every interpreter's monitor has proved since the last call that its
    /// GIL can be had: the process's heartbeat.</summary>
    public Action? OnHeartbeat { get; set; }
    /// <summary>Called (without a GIL) once per incident when the process should be replaced, with why.</summary>
    public Action<string>? OnStuck { get; set; }

    /// <summary>The interpreters serving requests.</summary>
    public int Interpreters => _units.Length;

    /// <summary>
    /// Builds the gateway of <paramref name="interpreters"/> interpreters (no GIL held). The main interpreter's is
    /// built on its init thread state, the runtime module before the app's import (so the app can `from sharpwsgi
    /// import RequestTimeout` at import time); with one interpreter, the default and the fast path, that is all.
    /// Each further one is a sub-interpreter with its own GIL, created on its home thread, importing the app itself,
    /// with its own Python threads (<see cref="WsgiOptions.Threads"/> each) and its own monitor on the home thread.
    /// Nothing Python is shared: each has its types, names, environ template, sharpwsgi module, RequestTimeout,
    /// decref queue and wsgi.errors. A failure in any of them ends the ones already made.
    /// </summary>
    public static WsgiGateway Create(int interpreters, Func<PyOwned> loadApp, WsgiOptions options,
        IGatewayLog appLog, IGatewayLog gatewayLog)
    {
        if (interpreters > 1) PythonInterpreter.CheckSupported(interpreters);
        var buffering = Buffering(options);
        var units = new List<InterpreterGateway>
        {
            PythonRuntime.RunOnMainThreadState(() =>
                InterpreterGateway.Build(null, loadApp, options, appLog, gatewayLog, buffering)),
        };
        try
        {
            for (int i = 1; i < interpreters; i++)
            {
                var (_, unit) = PythonInterpreter.StartSubinterpreter($"python-interp-{i}",
                    interp => InterpreterGateway.Build(interp, () => LoadInSubinterpreter(loadApp, interpreters),
                        options, appLog, gatewayLog, buffering),
                    (_, unit) => unit.Watchdog.RunOnThisThread(),
                    ShutdownWait, problem => gatewayLog.Warning($"Ending a Python interpreter: {problem}"));
                units.Add(unit);
            }
        }
        catch
        {
            foreach (var unit in units) unit.Shutdown(TimeSpan.FromSeconds(2));
            throw;
        }
        return new WsgiGateway(units.ToArray(), buffering.SpoolBudget!);
    }

    private static readonly TimeSpan ShutdownWait = TimeSpan.FromSeconds(10);

    /// <summary>--check-config with --interpreters N: imports the app in one sub-interpreter too (no GIL held), so
    /// an extension module without sub-interpreter support is reported as when serving.</summary>
    public static void CheckSubinterpreterImport(Func<PyOwned> loadApp, int interpreters)
    {
        PythonInterpreter.CheckSupported(interpreters);
        PythonInterpreter.StartSubinterpreter("python-interp-check", _ =>
        {
            using var app = LoadInSubinterpreter(loadApp, interpreters);
            return 0;
        }, (_, _) => { }, ShutdownWait);
    }

    /// <summary>The app's import in a sub-interpreter: an extension module that cannot load there (single-phase
    /// init, or Py_mod_multiple_interpreters not supported) becomes one clear refusal naming it.</summary>
    private static PyOwned LoadInSubinterpreter(Func<PyOwned> loadApp, int interpreters)
    {
        try { return loadApp(); }
        catch (AppLoadException e) when (IncompatibleExtension(e) is { } module)
        {
            throw new AppLoadException(
                $"The application imports the extension module '{module}', which does not support " +
                $"sub-interpreters (CPython refuses it in every interpreter but the main one: it uses single-phase " +
                "initialisation, as PyO3 modules and many older C extensions do, or it declares " +
                $"Py_mod_multiple_interpreters unsupported), so it cannot be served with --interpreters " +
                $"{interpreters}. Use --interpreters 1 (and --workers N for parallelism) with this application.",
                e.PythonTraceback);
        }
    }

    // CPython's refusal (3.12, 3.13: _PyImport_CheckSubinterpIncompatibleExtensionAllowed), and PyO3's own, raised
    // by the module's init function before CPython's check (it names no module: the importing line does).
    private static readonly System.Text.RegularExpressions.Regex IncompatibleModule =
        new(@"module (\S+) does not support loading in subinterpreters");
    private static readonly System.Text.RegularExpressions.Regex PyO3Refusal =
        new(@"PyO3 modules (do not yet support|may only be initialized once per interpreter)");
    private static readonly System.Text.RegularExpressions.Regex ImportLine =
        new(@"^\s+(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))",
            System.Text.RegularExpressions.RegexOptions.Multiline);

    private static string? IncompatibleExtension(AppLoadException e)
    {
        var text = e.Message + "\n" + e.PythonTraceback;
        var m = IncompatibleModule.Match(text);
        if (m.Success) return m.Groups[1].Value.Trim('\'', '"');
        if (!PyO3Refusal.IsMatch(text)) return null;
        var imports = ImportLine.Matches(e.PythonTraceback ?? "");
        if (imports.Count == 0) return "(a PyO3 extension module)";
        var last = imports[^1];
        return last.Groups[1].Success ? last.Groups[1].Value : last.Groups[2].Value;
    }

    private static ResponseBuffering Buffering(WsgiOptions options) => new()
    {
        TempDirectory = options.TempDirectory,
        SpoolPerResponse = options.ResponseSpoolSize,
        SpoolBudget = new ByteBudget(options.ResponseSpoolTotal),
        // 0 disables the limit, as it does for the host's delivery watchdog (not "give up at once").
        SendTimeout = options.SendTimeout > 0 ? TimeSpan.FromSeconds(options.SendTimeout) : Timeout.InfiniteTimeSpan,
    };

    /// <summary>
    /// Blocks until every interpreter's GIL has been held after the call began (see
    /// <see cref="RequestWatchdog.WaitResponsive"/>): a connection accepted now will find a Python that runs. False
    /// on timeout: some interpreter is frozen (a C call holding its GIL) or stopping.
    /// </summary>
    public bool WaitResponsive(TimeSpan timeout)
    {
        foreach (var unit in _units)
            if (!unit.Watchdog.WaitResponsive(timeout)) return false;
        return true;
    }

    /// <summary>The latest moment every interpreter's GIL was seen held (a Stopwatch timestamp; see
    /// <see cref="RequestWatchdog.LastSignOfLife"/>), or now when no request is running or waiting anywhere: an idle
    /// worker takes a connection without a round trip (a request is what freezes a worker; one frozen by a
    /// background thread still hands what it queued to a sibling, Hosting.StallHandover).</summary>
    public long LastSignOfLife
    {
        get
        {
            var least = long.MaxValue;
            var idle = true;
            foreach (var unit in _units)
            {
                least = Math.Min(least, unit.Watchdog.LastSignOfLife);
                idle &= unit.Dispatcher.Busy == 0 && unit.Dispatcher.Queued == 0;
            }
            return idle ? System.Diagnostics.Stopwatch.GetTimestamp() : least;
        }
    }

    /// <summary>Takes back every request still waiting for a Python thread (see
    /// <see cref="PythonDispatcher.WithdrawQueued"/>); returns how many.</summary>
    public int WithdrawQueued() => _units.Sum(unit => unit.Dispatcher.WithdrawQueued());

    /// <summary>Starts the main interpreter's monitor (the sub-interpreters' run on their home threads).</summary>
    public void StartMonitors() => _units[0].Watchdog.Start();

    /// <summary>The process's beat when every interpreter has beaten since the last one (one interpreter: every
    /// beat).</summary>
    private void Beat(int index)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        lock (_beats)
        {
            _beats[index] = now;
            foreach (var b in _beats)
                if (b <= _lastBeat) return;
            _lastBeat = now;
        }
        OnHeartbeat?.Invoke();
    }

    /// <summary>Ends every sub-interpreter cleanly on its own home thread once its running requests are done
    /// (the main interpreter ends with the process, as with one interpreter).</summary>
    public void Shutdown(TimeSpan wait)
    {
        var tasks = _units.Skip(1).Select(u => Task.Run(() => u.Shutdown(wait))).ToArray();
        Task.WaitAll(tasks);
    }

    /// <summary>
    /// Python's logging reaches the error log (with its level) when the app configured no root handler; an app that
    /// did keeps its own. Installed after the import, so the app's own basicConfig() still takes effect.
    /// </summary>
    internal static void RouteLogging(WsgiObjects objects)
    {
        using var globals = Py.Dict();
        Py.DictSet(globals, "errors", objects.ErrorStream);
        Py.Exec("""
import logging

class _ErrorLogHandler(logging.Handler):
    def emit(self, record):
        try:
            errors._log(record.levelno, self.format(record))
        except Exception:
            self.handleError(record)

_root = logging.getLogger()
if not _root.handlers:
    _handler = _ErrorLogHandler()
    _handler.setFormatter(logging.Formatter('%(name)s: %(message)s'))
    _root.addHandler(_handler)
""", globals);
    }

    /// <summary>
    /// The importable 'sharpwsgi' module with RequestTimeout, the exception raised inside a request's thread when it
    /// runs past --request-timeout. A BaseException, so a bare `except Exception` does not swallow it. Also sets the
    /// interpreter's switch interval (see <see cref="PythonDispatcher"/>).
    /// </summary>
    internal static PyOwned DefineRuntimeModule(double switchInterval)
    {
        using var globals = Py.Dict();
        using (var interval = Py.Str(switchInterval.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))
            Py.DictSet(globals, "switch_interval", interval);
        Py.Exec("""
import sys, types
sys.setswitchinterval(float(switch_interval))
module = types.ModuleType("sharpwsgi", "Runtime objects of the SharpWsgi server.")
class RequestTimeout(BaseException):
    "Raised inside a request's Python thread when it runs past --request-timeout; the client already got 504."
RequestTimeout.__module__ = "sharpwsgi"
module.RequestTimeout = RequestTimeout
sys.modules.setdefault("sharpwsgi", module)
""", globals);
        var cls = Py.DictGet(globals, "RequestTimeout").NewReference();
        return cls.ToOwned();
    }

    /// <summary>Queues the request for a Python thread of the least loaded interpreter (ties taken in turn); false
    /// when its queue is full.</summary>
    public bool TryDispatch(WsgiExchange exchange)
    {
        var units = _units;
        if (units.Length == 1) return units[0].Dispatcher.TryEnqueue(exchange);
        var start = (int)(Interlocked.Increment(ref _next) % (uint)units.Length);
        var best = units[start].Dispatcher;
        var load = best.Load;
        for (int k = 1; k < units.Length && load > 0; k++)
        {
            var candidate = units[(start + k) % units.Length].Dispatcher;
            var l = candidate.Load;
            if (l < load) { best = candidate; load = l; }
        }
        return best.TryEnqueue(exchange);
    }

    public int Queued => _units.Sum(u => u.Dispatcher.Queued);
    /// <summary>Python threads running a request, and all of them (metrics gauges).</summary>
    public int BusyThreads => _units.Sum(u => u.Dispatcher.Busy);
    public int Threads => _units.Sum(u => u.Dispatcher.Threads);
    /// <summary>Response bytes spooled for slow clients, not yet sent (a metrics gauge).</summary>
    public long BufferedResponseBytes => SpoolBudget?.Used ?? 0;
    private ByteBudget? SpoolBudget { get; }
}

/// <summary>
/// Everything of one interpreter: its app, PEP 3333 objects (types, interned names, environ template, wsgi.errors),
/// sharpwsgi module and RequestTimeout, Python threads and monitor. Built with that interpreter's GIL held; its
/// Python objects are used only by its threads.
/// </summary>
internal sealed class InterpreterGateway
{
    public PythonInterpreter? Interpreter { get; }
    public PythonDispatcher Dispatcher { get; }
    public RequestWatchdog Watchdog { get; }

    private InterpreterGateway(PythonInterpreter? interpreter, PythonDispatcher dispatcher, RequestWatchdog watchdog)
    {
        Interpreter = interpreter;
        Dispatcher = dispatcher;
        Watchdog = watchdog;
    }

    public static InterpreterGateway Build(PythonInterpreter? interpreter, Func<PyOwned> loadApp,
        WsgiOptions options, IGatewayLog appLog, IGatewayLog gatewayLog, ResponseBuffering buffering)
    {
        var timeoutClass = WsgiGateway.DefineRuntimeModule(options.SwitchInterval);
        var app = loadApp();
        var objects = new WsgiObjects(appLog);
        WsgiGateway.RouteLogging(objects);
        var environ = new EnvironBuilder(options, objects, gatewayLog);
        var runner = new RequestRunner(app, objects, environ, appLog, options, timeoutClass, buffering,
            options.RequestHooks?.Invoke());
        var watchdog = new RequestWatchdog(options, appLog, timeoutClass);
        var dispatcher = new PythonDispatcher(options.Threads, options.QueueSize, runner.Run, watchdog, gatewayLog,
            interpreter);
        watchdog.Queued = () => dispatcher.Queued;
        return new InterpreterGateway(interpreter, dispatcher, watchdog);
    }

    /// <summary>A sub-interpreter: its threads end after their requests, then its monitor, and the home thread ends
    /// it. The main interpreter is left to the process's exit.</summary>
    public void Shutdown(TimeSpan wait)
    {
        if (Interpreter == null || Interpreter.IsMain) return;
        Dispatcher.Stop(wait);
        Watchdog.Stop();
        Interpreter.WaitFinished(wait + TimeSpan.FromSeconds(1));
    }
}
