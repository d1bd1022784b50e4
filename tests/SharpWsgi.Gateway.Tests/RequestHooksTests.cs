using SharpWsgi.Gateway.Tests.Infrastructure;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway.Tests;

/// <summary>The port for code run around each request (gunicorn's pre_request and post_request): when each side
/// runs, what it is handed, and what a failing pre_request does to the request.</summary>
[Collection(GatewayCollection.Name)]
public sealed class RequestHooksTests
{
    /// <summary>Records each call as a line; Started hands back a str that Finished must get again.</summary>
    private sealed class RecordingHooks : IRequestHooks
    {
        public readonly List<string> Calls = new();
        public FakeExchange? Exchange;
        public bool FailStarted;

        public bool WantsResponseHead => true;

        public NewRef Started(BorrowedRef environ)
        {
            Calls.Add("started " + Py.StrToString(Py.DictGet(environ, "PATH_INFO")));
            if (!FailStarted) return Py.Str("token");
            Py.SetError(PyErrorKind.ValueError, "refused by pre_request");
            throw PythonException.Fetch();
        }

        public void Finished(BorrowedRef started, BorrowedRef environ, BorrowedRef status, int statusCode,
            BorrowedRef headers, long bodyBytes, long declaredLength)
        {
            var finishedFirst = Exchange!.Finished.IsCompleted; // the client was not kept waiting for the hook
            Calls.Add($"finished {Py.StrToString(started)} {Py.StrToString(Py.DictGet(environ, "PATH_INFO"))} " +
                $"{(status.IsNull ? "None" : Py.StrToString(status))} {statusCode} " +
                $"{(headers.IsNull ? "None" : Py.Repr(headers))} {bodyBytes} {declaredLength} {finishedFirst}");
        }
    }

    private static List<string> Serve(string source, FakeExchange x, RecordingHooks hooks) => OnPython.Run(() =>
    {
        hooks.Exchange = x;
        using var app = new TestApp(source, hooks: hooks);
        app.Run(x);
        return hooks.Calls.Append("app ran: " + app.Eval("globals().get('ran', False)")).ToList();
    });

    [Fact]
    public void Request_AppAnswers_StartedBeforeTheApp_FinishedAfterTheExchangeWithTheAppsHead()
    {
        var x = new FakeExchange("GET", "/hooked");
        var calls = Serve("""
ran = False
def app(environ, start_response):
    global ran
    ran = True
    start_response('201 Created', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
""", x, new RecordingHooks());
        Assert.Equal(201, x.Status);
        Assert.Equal(new[]
        {
            "started /hooked",
            "finished token /hooked 201 Created 201 [('Content-Type', 'text/plain'), ('Content-Length', '2')] 2 2 True",
            "app ran: True",
        }, calls);
    }

    [Fact]
    public void Request_AppRaises_FinishedGetsTheServersOwn500()
    {
        var x = new FakeExchange("GET", "/broken");
        var calls = Serve("""
def app(environ, start_response):
    raise RuntimeError('broken')
""", x, new RecordingHooks());
        Assert.Equal(ServerAnswer.AppFailed, x.Result.Answer);
        Assert.Equal("finished token /broken None 500 None 0 -1 True", calls[1]);
    }

    [Fact]
    public void Request_StartedRaises_TheAppDoesNotRun_500_AndNoFinished()
    {
        var x = new FakeExchange("GET", "/refused");
        var calls = Serve("""
ran = False
def app(environ, start_response):
    global ran
    ran = True
    start_response('200 OK', [])
    return [b'']
""", x, new RecordingHooks { FailStarted = true });
        Assert.Equal(ServerAnswer.AppFailed, x.Result.Answer);
        Assert.Equal(new[] { "started /refused", "app ran: False" }, calls);
        Assert.Contains(TestApp.Log.Lines, l => l.Contains("(running the pre_request hook)") &&
                                                l.Contains("ValueError: refused by pre_request"));
    }
}
