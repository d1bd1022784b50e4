using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>What the access log reads from the gateway: the exchange's timings and the request ID in scope while
/// the app writes to wsgi.errors.</summary>
[Collection(GatewayCollection.Name)]
public sealed class AccessLogTimingsTests
{
    private const string LoggingApp = """
def app(environ, start_response):
    environ['wsgi.errors'].write('from the app\n')
    environ['wsgi.errors']._log(30, 'a warning record')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
""";

    [Fact]
    public void Run_CompletedRequest_TimingsInOrder()
    {
        var x = new FakeExchange();
        TestApp.Serve(LoggingApp, x);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.True(x.Timings.QueuedAt > 0);
        Assert.True(x.Timings.StartedAt >= x.Timings.QueuedAt);
        Assert.True(x.Timings.AppDoneAt >= x.Timings.StartedAt);
    }

    [Fact]
    public void ErrorStream_DuringRequest_LinesCarryRequestIdAndLevel()
    {
        TestApp.Log.Clear();
        var x = new FakeExchange { RequestIdValue = "rid-42" };
        TestApp.Serve(LoggingApp, x);
        var lines = TestApp.Log.Lines;
        var ids = TestApp.Log.RequestIds;
        var plain = lines.ToList().FindIndex(l => l == "Error: from the app");
        var record = lines.ToList().FindIndex(l => l == "Warning: a warning record");
        Assert.True(plain >= 0 && record >= 0, string.Join("\n", lines));
        Assert.Equal("rid-42", ids[plain]);
        Assert.Equal("rid-42", ids[record]);
        Assert.Null(RequestScope.CurrentRequestId); // cleared once the request is done
    }
}
