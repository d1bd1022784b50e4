using System.Diagnostics;
using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>
/// How response bytes reach a client that does not keep up (ResponseWriter + ResponseDrain): an ordinary response
/// is spooled so the Python thread is freed, a live stream makes the Python thread wait at most the send timeout.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class BufferingTests
{
    private const string TwentyChunks = """
closes = 0
class Body:
    def __iter__(self):
        for i in range(20):
            yield bytes([65 + i]) * 1000
    def close(self):
        global closes
        closes += 1
def app(environ, start_response):
    start_response('200 OK', HEADERS)
    return Body()
""";

    private static readonly string TwentyChunksBody =
        string.Concat(Enumerable.Range(0, 20).Select(i => new string((char)(65 + i), 1000)));

    private static string App(string headers) => "HEADERS = " + headers + "\n" + TwentyChunks;

    /// <summary>Descriptors of this process open on files in directory (an unlinked spool shows as
    /// "(deleted)").</summary>
    private static int OpenFilesIn(string directory)
    {
        var n = 0;
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target != null && target.StartsWith(directory + "/", StringComparison.Ordinal))
                    n++;
            }
            catch (IOException) { } // closed meanwhile
        }
        return n;
    }

    [Fact]
    public void Run_ClientNotReading_SpooledAndFinishedOnlyAfterTheClientDrains()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering();
        var closes = TestApp.Serve(App("[]"), x, "closes", buffering: buffering);

        // The Python thread is done (close() called) although the client took nothing.
        Assert.Equal("1", closes);
        Assert.False(x.IsFinished);
        Assert.Equal(1, OpenFilesIn(buffering.TempDirectory));
        Assert.Empty(Directory.GetFiles(buffering.TempDirectory)); // unlinked as soon as it was open
        Assert.True(buffering.SpoolBudget.Used > 0, "nothing was spooled");

        var body = x.ReadBodyAsync().Result;
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal(TwentyChunksBody, System.Text.Encoding.Latin1.GetString(body));
        Assert.Equal(0, OpenFilesIn(buffering.TempDirectory));
        Assert.Equal(0, buffering.SpoolBudget.Used);
        Assert.Equal(1, x.FinishCount);
    }

    [Fact]
    public void Run_ClientNotReadingAndContentLengthOverrun_SpooledThenCompletedThenClose()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering();
        TestApp.Serve(App("[('Content-Length', '2500')]"), x, buffering: buffering);
        Assert.False(x.IsFinished);
        var body = x.ReadBodyAsync().Result;
        Assert.Equal(ExchangeResult.CompletedThenClose, x.WaitFinished());
        Assert.Equal(TwentyChunksBody[..2500], System.Text.Encoding.Latin1.GetString(body));
    }

    [Fact]
    public void Run_ClientGoneWhileSpooling_AbortedAndSpoolReleased()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering();
        TestApp.Serve(App("[]"), x, buffering: buffering);
        Assert.False(x.IsFinished);
        x.DisconnectClient();
        Assert.Equal(ExchangeResult.Aborted, x.WaitFinished());
        Assert.Equal(0, OpenFilesIn(buffering.TempDirectory));
        Assert.Equal(0, buffering.SpoolBudget.Used);
    }

    [Fact]
    public void Run_SpoolCapReachedAndClientTakesNothing_DroppedAfterTheSendTimeout()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering(sendTimeoutSeconds: 0.3, perResponse: 3000);
        var watch = Stopwatch.StartNew();
        var closes = TestApp.Serve(App("[]"), x, "closes", buffering: buffering);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.25), $"returned after {watch.Elapsed}");
        Assert.Equal("1", closes);
        Assert.Equal(1, x.AbortCount);
        Assert.Equal(ExchangeResult.Aborted, x.WaitFinished());
        Assert.Equal(0, buffering.SpoolBudget.Used);
        Assert.Contains("took nothing for 0.3s", TestApp.Log.Matching("Client gone"));
    }

    /// <summary>The host's delivery watchdog aborts the connection: the pending flush ends (here the pipe's
    /// reader completes, as Kestrel's transport does on an abort), and a Python thread waiting for spool room is
    /// woken at once, not after its own send timeout; the spool is closed and its budget given back.</summary>
    [Fact]
    public void Run_ConnectionAbortedWhileWaitingForSpoolRoom_ThreadWokenAndSpoolReleased()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering(sendTimeoutSeconds: 30, perResponse: 3000);
        var thread = OnPython.Start(() =>
        {
            using var app = new TestApp(App("[]"), buffering: buffering);
            app.Run(x);
            return app.Eval("closes");
        }, out var outcome);
        Assert.False(thread.Join(300), "the Python thread should wait for room in the spool");
        Assert.True(buffering.SpoolBudget.Used > 0, "nothing was spooled");
        var watch = Stopwatch.StartNew();
        x.DisconnectClient();
        Assert.True(thread.Join(5_000), "the abort did not wake the Python thread");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"woken after {watch.Elapsed}");
        Assert.Equal("1", outcome.Get());
        Assert.Equal(ExchangeResult.Aborted, x.WaitFinished(3000));
        Assert.Equal(0, buffering.SpoolBudget.Used);
        Assert.Equal(0, OpenFilesIn(buffering.TempDirectory));
    }

    /// <summary>The worker-wide spool total is held by other responses' clients: this response's client is not at
    /// fault, so its thread waits past its own send timeout for room (which the host's watchdog makes by dropping
    /// the holders) instead of dropping its client.</summary>
    [Fact]
    public void Run_SpoolTotalHeldByOthers_WaitsForRoomPastTheSendTimeoutAndCompletes()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering(sendTimeoutSeconds: 0.3, total: 40_000);
        Assert.True(buffering.SpoolBudget.TryReserve(40_000)); // what the other responses hold
        var thread = OnPython.Start(() =>
        {
            using var app = new TestApp(App("[]"), buffering: buffering);
            app.Run(x);
            return app.Eval("closes");
        }, out var outcome);
        Assert.False(thread.Join(1000), "the Python thread should wait for room in the spool total");
        Assert.Equal(0, x.AbortCount);
        buffering.SpoolBudget.Release(40_000); // the holders were dropped: room for the whole body
        Assert.True(thread.Join(10_000));
        Assert.Equal("1", outcome.Get());
        var body = x.ReadBodyAsync().Result;
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
        Assert.Equal(TwentyChunksBody, System.Text.Encoding.Latin1.GetString(body));
        Assert.Equal(0, buffering.SpoolBudget.Used);
    }

    [Fact]
    public void Run_SpoolTotalNeverFreed_DroppedAfterSendTimeoutPlusSlack()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering(sendTimeoutSeconds: 0.3, total: 4000);
        Assert.True(buffering.SpoolBudget.TryReserve(4000));
        var watch = Stopwatch.StartNew();
        var closes = TestApp.Serve(App("[]"), x, "closes", buffering: buffering);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2.2), $"returned after {watch.Elapsed}");
        Assert.Equal("1", closes);
        Assert.Equal(1, x.AbortCount);
        Assert.Equal(ExchangeResult.Aborted, x.WaitFinished());
        Assert.Equal(4000, buffering.SpoolBudget.Used); // only what the others hold
        Assert.Contains("no spool room came free for 2.3s", TestApp.Log.Matching("Client gone"));
    }

    [Fact]
    public void Run_AppFailsAfterSpoolingStarted_AbortedWithoutWaitingForTheClient()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering();
        TestApp.Serve("""
def app(environ, start_response):
    start_response('200 OK', [])
    for i in range(5):
        yield b'x' * 1000
    raise RuntimeError('late failure')
""", x, buffering: buffering);
        Assert.Equal(ExchangeResult.Aborted, x.WaitFinished(3000));
        Assert.Equal(0, buffering.SpoolBudget.Used);
    }

    [Theory]
    [InlineData("[('Content-Type', 'text/event-stream')]")]
    [InlineData("[('Content-Type', 'text/plain'), ('X-Accel-Buffering', 'no')]")]
    public void Run_LiveStreamSlowClient_PythonThreadWaitsInsteadOfSpooling(string headers)
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering();
        var thread = OnPython.Start(() =>
        {
            using var app = new TestApp(App(headers), buffering: buffering);
            app.Run(x);
            return app.Eval("closes");
        }, out var outcome);
        Assert.False(thread.Join(300), "the live stream did not wait for the client");
        Assert.Equal(0, buffering.SpoolBudget.Used);
        Assert.Equal(0, OpenFilesIn(buffering.TempDirectory));
        var body = x.ReadBodyAsync().Result;
        Assert.True(thread.Join(10_000));
        Assert.Equal("1", outcome.Get());
        Assert.Equal(ExchangeResult.Completed, x.Result);
        Assert.Equal(TwentyChunksBody, System.Text.Encoding.Latin1.GetString(body));
    }

    [Fact]
    public void Run_LiveStreamClientTakesNothing_AbortedAfterTheSendTimeout()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering(sendTimeoutSeconds: 0.3);
        var watch = Stopwatch.StartNew();
        var closes = TestApp.Serve(App("[('Content-Type', 'text/event-stream')]"), x, "closes", buffering: buffering);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.25), $"returned after {watch.Elapsed}");
        Assert.Equal("1", closes);
        Assert.Equal(ExchangeResult.Aborted, x.Result);
        Assert.Equal(1, x.AbortCount);
        Assert.Equal(0, buffering.SpoolBudget.Used);
        Assert.Contains("the client took nothing for 0.3s (--send-timeout)", TestApp.Log.Matching("Client gone"));
    }

    [Fact]
    public void Run_AcceleratedBufferingYes_NotALiveStream()
    {
        var x = new FakeExchange("GET", "/", FakeExchange.SlowClient());
        var buffering = TestApp.NewBuffering();
        TestApp.Serve(App("[('X-Accel-Buffering', 'yes')]"), x, buffering: buffering);
        Assert.False(x.IsFinished); // spooled: the Python thread did not wait
        Assert.Equal(TwentyChunksBody, System.Text.Encoding.Latin1.GetString(x.ReadBodyAsync().Result));
        Assert.Equal(ExchangeResult.Completed, x.WaitFinished());
    }
}
