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
        const double queueTimeout = 0.05;
        var x = new FakeExchange();
        var calls = OnPython.Run(() =>
        {
            using var app = new TestApp(CountingApp, new WsgiOptions { QueueTimeout = queueTimeout });
            var lease = new RequestLease(x);
            // The request ages past the queue timeout: a bounded poll on the clock the runner compares with.
            var limit = (long)(queueTimeout * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() - lease.QueuedAt <= limit) Thread.Sleep(5);
            app.Run(lease);
            return app.Eval("calls");
        });
        Assert.Equal("0", calls);
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.QueueTimedOut), x.Result);
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

    /// <summary>
    /// Starts the app on a Python thread and times the request out once the gateway waits on the host (a body read or
    /// a flush that cannot complete: <see cref="FakeExchange.GatewayWaiting"/>); returns what the app saw.
    /// </summary>
    private static string TimeOutWhileWaiting(FakeExchange x, string source)
    {
        RequestLease? lease = null;
        var thread = OnPython.Start(() =>
        {
            using var app = new TestApp(source);
            lease = new RequestLease(x);
            app.Run(lease);
            return app.Eval("seen");
        }, out var outcome);
        if (!x.GatewayWaiting.Wait(10_000))
        {
            if (!thread.IsAlive) outcome.Get(); // the app failed before it waited: show why
            Assert.Fail("the gateway never waited on the request body or the client");
        }
        lease!.TimeOut(ServerAnswer.AppTimedOut);
        Assert.True(thread.Join(10_000), "the Python thread did not come back");
        Assert.Equal(ExchangeResult.Plain(ServerAnswer.AppTimedOut), x.WaitFinished());
        // Both callers of Finish are done: the Python thread has ended, and the 504 above came from the lease's task
        // (Finish records the first result). A second Finish would already be counted.
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
            lease.TimeOut(ServerAnswer.AppTimedOut);
        });
        // TimeOut cancels pending I/O at once before it schedules the 504; on a finished lease it returns first, so
        // no cancel means nothing was scheduled and these counts are final.
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(1, x.FinishCount);
        Assert.Equal(0, x.CancelCount);
    }
}
