using Microsoft.Extensions.Logging;
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
    public WsgiOptions Options { get; }

    private WsgiGateway(WsgiOptions options, PythonDispatcher dispatcher)
    {
        Options = options;
        _dispatcher = dispatcher;
    }

    /// <summary>Builds the gateway for an app already loaded (call with the GIL held, on the init thread).</summary>
    public static WsgiGateway Create(PyOwned app, WsgiOptions options, ILoggerFactory loggers)
    {
        var errorLog = loggers.CreateLogger("sharpwsgi.app");
        var gatewayLog = loggers.CreateLogger("sharpwsgi.gateway");
        var objects = new WsgiObjects(errorLog);
        var environ = new EnvironBuilder(options, objects, gatewayLog);
        var runner = new RequestRunner(app, objects, environ, errorLog);
        var dispatcher = new PythonDispatcher(options.Threads, options.QueueSize, runner.Run, gatewayLog);
        return new WsgiGateway(options, dispatcher);
    }

    /// <summary>Queues the request for a Python thread; false when the queue is full.</summary>
    public bool TryDispatch(WsgiExchange exchange) => _dispatcher.TryEnqueue(exchange);

    public int Queued => _dispatcher.Queued;
}
