using System.Diagnostics;
using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>The queue timeout (503) and a request taken back by the watchdog (RequestLease.TimeOut: 504).</summary>
[Collection(GatewayCollection.Name)]
public sealed class TimeoutTests
{
    private const string CountingApp = """
calls = 0
def app(environ, start_response):
    global calls
    calls += 1
    start_response('200 OK', [])
    return [b'ran']
""";

    [Fact]
    public void Run_WaitedPastTheQueueTimeout_Plain503AndTheAppNotCalled()
    {
        var x = new FakeExchange();
        var calls = OnPython.Run(() =>
        {
            using var app = new TestApp(CountingApp, new WsgiOptions { QueueTimeout = 0.05 });
            var lease = new RequestLease(x);
            Thread.Sleep(150);
            app.Run(lease);
            return app.Eval("calls");
        });
        Assert.Equal("0", calls);
        Assert.Equal(ExchangeResult.Plain(503, "the request waited too long for a Python thread"), x.Result);
        Assert.Contains("GET / waited more than the queue timeout", TestApp.Log.Matching("Warning"));
    }

    [Fact]
    public void Run_WithinTheQueueTimeout_Served()
    {
        var x = new FakeExchange();
        var calls = TestApp.Serve(CountingApp, x, "calls", new WsgiOptions { QueueTimeout = 30 });
        Assert.Equal("1", calls);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal("ran", x.BodyText());
    }

    /// <summary>Starts the app on a Python thread, times the request out while it waits; returns what it saw.</summary>
    private static string TimeOutWhileWaiting(FakeExchange x, string source)
    {
        RequestLease? lease = null;
        using var waiting = new ManualResetEventSlim();
        var thread = OnPython.Start(() =>
        {
            using var app = new TestApp(source);
            lease = new RequestLease(x);
            waiting.Set();
            app.Run(lease);
            return app.Eval("seen");
        }, out var outcome);
        waiting.Wait();
        Thread.Sleep(100); // let the app reach its wait (a read or a flush that cannot complete)
        lease!.TimeOut("the application did not answer in time");
        Assert.True(thread.Join(10_000), "the Python thread did not come back");
        Assert.Equal(ExchangeResult.Plain(504, "the application did not answer in time"), x.WaitFinished());
        SpinWait.SpinUntil(() => false, 100); // a second Finish would come from the Python thread meanwhile
        Assert.Equal(1, x.FinishCount);
        Assert.True(x.CancelCount >= 1);
        return outcome.Get();
    }

    [Fact]
    public void TimeOut_WhileTheAppWaitsForTheBody_OSErrorInTheAppAndOne504()
    {
        var x = new FakeExchange("POST", "/");
        x.StreamedBody(); // never written
        var seen = TimeOutWhileWaiting(x, """
seen = None
def app(environ, start_response):
    global seen
    try:
        environ['wsgi.input'].read()
    except OSError as e:
        seen = str(e)
        raise
    start_response('200 OK', [])
    return [b'']
""");
        Assert.Equal("the request timed out and was answered by the server", seen);
        Assert.Contains("Timed-out request POST /", TestApp.Log.Matching("Warning"));
    }

    [Fact]
    public void TimeOut_WhileALiveStreamWaitsForTheClient_One504AndClosed()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var seen = TimeOutWhileWaiting(x, """
seen = 'not closed'
class Body:
    def __iter__(self):
        for i in range(100):
            yield b'e' * 100
    def close(self):
        global seen
        seen = 'closed'
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/event-stream')])
    return Body()
""");
        Assert.Equal("closed", seen);
    }

    [Fact]
    public void TimeOut_AfterTheResponseFinished_Ignored()
    {
        var x = new FakeExchange();
        OnPython.Run(() =>
        {
            using var app = new TestApp(CountingApp);
            var lease = new RequestLease(x);
            app.Run(lease);
            lease.TimeOut("too late");
        });
        Thread.Sleep(50);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(1, x.FinishCount);
        Assert.Equal(0, x.CancelCount);
    }
}
