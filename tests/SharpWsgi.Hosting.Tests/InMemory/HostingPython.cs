global using SharpWsgi.Testing;
using SharpWsgi.Gateway;
using SharpWsgi.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting.Tests.InMemory;

/// <summary>
/// The test classes that run requests through the server are in this one collection: CPython is embedded once per
/// test run (<see cref="EmbeddedPython"/>) and one gateway with the <see cref="RouterApp"/> serves them all, one test
/// at a time.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostingCollection : ICollectionFixture<HostingPython>
{
    public const string Name = "Hosting";
}

/// <summary>The collection's fixture: the interpreter and the gateway, built as a worker builds them.</summary>
public sealed class HostingPython
{
    private static readonly Lazy<WsgiGateway> Shared = new(Build);

    public HostingPython() => _ = Shared.Value;

    public WsgiGateway Gateway => Shared.Value;

    /// <summary>What the gateway's Python logged (app errors, wsgi.errors), for a failing test to show.</summary>
    public static TestLoggers GatewayLog { get; } = new();

    private static WsgiGateway Build()
    {
        EmbeddedPython.EnsureInitialized("sharpwsgi-hosting-tests");
        var log = new GatewayLogAdapter(GatewayLog.CreateLogger("sharpwsgi.app"));
        var options = new WsgiOptions { Threads = 2, ServerSoftware = "sharpwsgi/hosting-tests" };
        var gateway = WsgiGateway.Create(interpreters: 1, LoadRouter, options, log, log);
        gateway.StartMonitors();
        return gateway;
    }

    private static PyOwned LoadRouter()
    {
        using var globals = Py.Dict();
        Py.Exec(RouterApp.Source, globals);
        var app = Py.DictGet(globals, "app").NewReference();
        return app.ToOwned();
    }
}

/// <summary>One WSGI app for every test, answering by path.</summary>
public static class RouterApp
{
    public const string Source = """
from http import HTTPStatus

def app(environ, start_response):
    path = environ['PATH_INFO']
    query = environ.get('QUERY_STRING', '')
    if path.startswith('/status/'):
        # /status/205: that status with a body anyway; ?length: and a Content-Length for it.
        code = int(path[len('/status/'):])
        body = b'a body this status may not carry'
        headers = [('Content-Type', 'text/plain')]
        if query == 'length':
            headers.append(('Content-Length', str(len(body))))
        start_response('%d %s' % (code, HTTPStatus(code).phrase), headers)
        return [body]
    if path == '/chunks':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return iter([b'one ', b'two'])
    if path == '/environ':
        # /environ?REMOTE_ADDR,REMOTE_PORT: one KEY=value line each.
        body = '\n'.join('%s=%s' % (key, environ.get(key)) for key in query.split(',')).encode('latin-1')
    elif path == '/echo':
        body = b'read %d bytes' % len(environ['wsgi.input'].read())
    else:
        body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
""";
}
