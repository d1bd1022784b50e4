using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway.Tests.Infrastructure;

/// <summary>
/// A WSGI app defined inline (its source must define <c>app</c>) and the gateway pieces a worker builds around it:
/// <see cref="EnvironBuilder"/> and <see cref="RequestRunner"/> over the process-wide <see cref="WsgiObjects"/>.
/// Create, run and dispose it on a Python thread (GIL held). The app's module globals stay readable afterwards,
/// so an app can record what it saw (<see cref="Eval"/>).
/// </summary>
public sealed class TestApp : IDisposable
{
    private static WsgiObjects? _objects;
    private static PyOwned? _timeoutClass;

    /// <summary>wsgi.errors and the app's error lines (one log for the run; cleared by each TestApp).</summary>
    public static TestLog Log { get; } = new();

    /// <summary>The PEP 3333 objects, created once per interpreter (their Python types live for the process).</summary>
    public static WsgiObjects Objects => _objects ??= new WsgiObjects(Log);

    private static PyOwned TimeoutClass => _timeoutClass ??= Define(
        "class RequestTimeout(BaseException):\n    pass\n", "RequestTimeout");

    private readonly PyOwned _globals;
    private readonly PyOwned _app;

    public TestApp(string source, WsgiOptions? options = null, ResponseBuffering? buffering = null,
        IRequestHooks? hooks = null)
    {
        Log.Clear();
        Options = options ?? new WsgiOptions();
        Buffering = buffering ?? NewBuffering();
        var globals = Py.Dict();
        _globals = globals.ToOwned();
        Py.Exec(source, _globals);
        var app = Py.DictGet(_globals, "app");
        Assert.False(app.IsNull, "the app source must define 'app'");
        var owned = app.NewReference();
        _app = owned.ToOwned();
        Environ = new EnvironBuilder(Options, Objects, Log);
        Runner = new RequestRunner(_app, Objects, Environ, Log, Options, TimeoutClass, Buffering, hooks);
    }

    public WsgiOptions Options { get; }
    public ResponseBuffering Buffering { get; }
    public EnvironBuilder Environ { get; }
    public RequestRunner Runner { get; }

    /// <summary>Buffering for one test: a fresh spool directory, a budget of its own, the given send timeout.</summary>
    public static ResponseBuffering NewBuffering(double sendTimeoutSeconds = 10, long perResponse = 1L << 30,
        long total = 4L << 30)
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharpwsgi-gateway-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return new ResponseBuffering
        {
            TempDirectory = dir,
            SpoolPerResponse = perResponse,
            SpoolBudget = new ByteBudget(total),
            SendTimeout = TimeSpan.FromSeconds(sendTimeoutSeconds),
        };
    }

    /// <summary>One request through the gateway, as a Python thread of the dispatcher runs it.</summary>
    public void Run(FakeExchange exchange) => Runner.Run(new RequestLease(exchange));

    public void Run(RequestLease lease) => Runner.Run(lease);

    /// <summary>str() of a Python expression evaluated in the app's globals.</summary>
    public string Eval(string expression)
    {
        Py.Exec("__shown = str(" + expression + ")", _globals);
        return Py.StrToString(Py.DictGet(_globals, "__shown"));
    }

    public void Exec(string source) => Py.Exec(source, _globals);

    private static PyOwned Define(string source, string name)
    {
        using var globals = Py.Dict();
        Py.Exec(source, globals);
        var value = Py.DictGet(globals, name).NewReference();
        return value.ToOwned();
    }

    public void Dispose()
    {
        _app.Dispose();
        using (var clear = Py.GetAttr(_globals, "clear")) { using var r = Py.Call(clear); }
        _globals.Dispose();
    }

    /// <summary>Serves one request with an inline app on a new Python thread; then returns str(expression).</summary>
    public static string Serve(string source, FakeExchange exchange, string? expression = null,
        WsgiOptions? options = null, ResponseBuffering? buffering = null) => OnPython.Run(() =>
    {
        using var app = new TestApp(source, options, buffering);
        app.Run(exchange);
        return expression == null ? "" : app.Eval(expression);
    });
}
