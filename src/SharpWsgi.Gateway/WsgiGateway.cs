using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// The gateway of one process: the loaded app, the PEP 3333 objects, and the Python thread pool.
/// The host calls <see cref="TryDispatch"/> from its own threads.
/// </summary>
public sealed class WsgiGateway
{
    private readonly PythonDispatcher _dispatcher;

    private WsgiGateway(PythonDispatcher dispatcher, RequestWatchdog watchdog)
    {
        _dispatcher = dispatcher;
        Watchdog = watchdog;
    }

    /// <summary>Set its callbacks, then <see cref="RequestWatchdog.Start"/> it.</summary>
    public RequestWatchdog Watchdog { get; }

    /// <summary>
    /// Builds the gateway (GIL held, on the init thread): the runtime module first, so the app can
    /// `from sharpwsgi import RequestTimeout` at import time, then the app itself.
    /// </summary>
    public static WsgiGateway Create(Func<PyOwned> loadApp, WsgiOptions options, IGatewayLog appLog,
        IGatewayLog gatewayLog)
    {
        var timeoutClass = DefineRuntimeModule(options.SwitchInterval);
        var app = loadApp();
        var objects = new WsgiObjects(appLog);
        RouteLogging(objects);
        var environ = new EnvironBuilder(options, objects, gatewayLog);
        var buffering = new ResponseBuffering
        {
            TempDirectory = options.TempDirectory,
            SpoolPerResponse = options.ResponseSpoolSize,
            SpoolBudget = new ByteBudget(options.ResponseSpoolTotal),
            SendTimeout = TimeSpan.FromSeconds(options.SendTimeout),
        };
        var runner = new RequestRunner(app, objects, environ, appLog, options, timeoutClass, buffering);
        var watchdog = new RequestWatchdog(options, appLog, timeoutClass);
        var dispatcher = new PythonDispatcher(options.Threads, options.QueueSize, runner.Run, watchdog, gatewayLog);
        watchdog.Queued = () => dispatcher.Queued;
        return new WsgiGateway(dispatcher, watchdog) { SpoolBudget = buffering.SpoolBudget };
    }

    /// <summary>
    /// Python's logging reaches the error log (with its level) when the app configured no root handler; an app that
    /// did keeps its own. Installed after the import, so the app's own basicConfig() still takes effect.
    /// </summary>
    private static void RouteLogging(WsgiObjects objects)
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
    private static PyOwned DefineRuntimeModule(double switchInterval)
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

    /// <summary>Queues the request for a Python thread; false when the queue is full.</summary>
    public bool TryDispatch(WsgiExchange exchange) => _dispatcher.TryEnqueue(exchange);

    public int Queued => _dispatcher.Queued;
    /// <summary>Python threads running a request, and all of them (metrics gauges).</summary>
    public int BusyThreads => _dispatcher.Busy;
    public int Threads => _dispatcher.Threads;
    /// <summary>Response bytes spooled for slow clients, not yet sent (a metrics gauge).</summary>
    public long BufferedResponseBytes => SpoolBudget?.Used ?? 0;
    private ByteBudget? SpoolBudget { get; init; }
}
