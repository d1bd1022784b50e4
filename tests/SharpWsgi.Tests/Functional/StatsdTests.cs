using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --statsd-host, --statsd-prefix, --dogstatsd-tags against the statsd daemon itself (npm's statsd, run by each
/// test on 127.0.0.1 ports the kernel picked): gunicorn's metric names, counted across two workers, the worker
/// gauge from the supervisor, and what statsd made of the DogStatsD tags.
/// </summary>
public sealed class StatsdTests
{
    private static string App => MetricsTests.App;
    private readonly ITestOutputHelper _out;
    public StatsdTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void Statsd_TwoWorkersPrefixAndTags_GunicornsMetricsAsStatsdCountsThem()
    {
        using var statsd = StatsdDaemon.Start();
        using var server = ServerProcess.Start(new[]
        {
            "--workers", "2", "--statsd-host", $"127.0.0.1:{statsd.UdpPort}", "--statsd-prefix", "shop",
            "--dogstatsd-tags", "env:test,tier:web", App,
        });
        try
        {
            for (var i = 0; i < 6; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
            for (var i = 0; i < 2; i++) Assert.Equal(404, Http.Get(server.Port, "/status/404").Status);
            Assert.Equal(500, Http.Get(server.Port, "/raise").Status);

            // statsd 0.9 keeps DogStatsD tags as ";tag=value" after the name.
            const string tags = ";env=test;tier=web";
            var counters = statsd.WaitForCounters(c => c.GetValueOrDefault("shop.gunicorn.requests" + tags) >= 9 &&
                c.ContainsKey("shop.gunicorn.log.exception" + tags), "9 requests and the app's exception");
            Assert.Equal(9, counters["shop.gunicorn.requests" + tags]);
            Assert.Equal(6, counters["shop.gunicorn.request.status.200" + tags]);
            Assert.Equal(2, counters["shop.gunicorn.request.status.404" + tags]);
            Assert.Equal(1, counters["shop.gunicorn.request.status.500" + tags]);
            // The traceback the worker logged for /raise: gunicorn's log.exception.
            Assert.Equal(1, counters["shop.gunicorn.log.exception" + tags]);
            Assert.Equal(0, counters["statsd.bad_lines_seen"]);

            var durations = statsd.Timers()["shop.gunicorn.request.duration" + tags];
            Assert.Equal(9, durations.Length);
            Assert.All(durations, ms => Assert.InRange(ms, 0.001, 30_000));
            // The supervisor's gauge: both workers run.
            Assert.Equal(2, statsd.Gauges()["shop.gunicorn.workers" + tags]);
        }
        finally
        {
            _out.WriteLine(server.Output);
            _out.WriteLine("--- statsd:\n" + statsd.Received);
        }
    }

    [Fact]
    public void Statsd_NoPrefix_GunicornsNamesAsTheyAre()
    {
        using var statsd = StatsdDaemon.Start();
        using var server = ServerProcess.Start(new[] { "--statsd-host", $"127.0.0.1:{statsd.UdpPort}", App });
        try
        {
            Assert.Equal(200, Http.Get(server.Port, "/").Status);
            var counters = statsd.WaitForCounters(c => c.ContainsKey("gunicorn.requests"), "the request");
            Assert.Equal(1, counters["gunicorn.requests"]);
            Assert.Equal(1, counters["gunicorn.request.status.200"]);
            Assert.Single(statsd.Timers()["gunicorn.request.duration"]);
            Assert.Equal(1, statsd.Gauges()["gunicorn.workers"]);
        }
        finally
        {
            _out.WriteLine(server.Output);
            _out.WriteLine("--- statsd:\n" + statsd.Received);
        }
    }

    [Fact]
    public void Statsd_NobodyListening_ServesAsUsual()
    {
        // A port that was free a moment ago: datagrams to it are refused (ICMP), which must cost nothing visible.
        var port = ExternalServer.FreePort();
        using var server = ServerProcess.Start(new[] { "--statsd-host", $"127.0.0.1:{port}", App });
        try
        {
            for (var i = 0; i < 20; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
            Assert.DoesNotContain("[ERROR]", server.Output);
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [Theory]
    [InlineData("--statsd-host", "udp://127.0.0.1:8125", "'udp://127.0.0.1:8125' has a scheme statsd does not " +
        "speak (expected HOST:PORT or unix://PATH)")]
    [InlineData("--statsd-prefix", "shop:web", "a statsd prefix cannot contain ':'")]
    [InlineData("--dogstatsd-tags", "env:prod|x", "dogstatsd tags cannot contain '|'")]
    public void Statsd_BadValue_UsageErrorInOneParagraph(string flag, string value, string why)
    {
        var (code, output) = ServerProcess.RunToExit(new[] { flag, value, App });
        _out.WriteLine(output);
        Assert.Equal(2, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains($"option {flag}: {why}", output);
    }
}
