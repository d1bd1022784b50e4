using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using SharpWsgi.Tests.Workers;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --metrics-bind: /metrics as Prometheus parses it (Debian's python3-prometheus-client text parser) counts what
/// was sent across two workers, and keeps a SIGKILLed worker's counts; /healthz and /readyz follow the workers.
/// In the Workers collection: these kill workers and stop supervisors.
/// </summary>
[Collection("Workers")]
public sealed class MetricsTests : WorkerTestBase
{
    private static readonly Regex MetricsLine = new(@"Metrics at: http://127\.0\.0\.1:(\d+)");
    internal static string App => Path.Combine(ServerProcess.AppsDir, "metrics_app.py");
    private static string Parser => Path.Combine(ServerProcess.RepoRoot, "tests", "clients", "parse_metrics.py");

    public MetricsTests(ITestOutputHelper output) : base(output) { }

    [Fact]
    public void Metrics_TwoWorkersThenOneKilled_CountsMatchRequestsSentAndSurviveTheKill()
    {
        using var server = Start(new[] { "--workers", "2", "--threads", "2", "--metrics-bind", "127.0.0.1:0", App });
        var pids = ReadyPids(server);
        var metricsPort = MetricsPort(server);

        // Both workers serve: fresh connections until each pid answered (bounded).
        var servedBy = new Dictionary<int, int>();
        long responseBytes = 0;
        var clock = Stopwatch.StartNew();
        while (servedBy.Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            var r = Http.Get(server.Port, "/pid");
            Assert.Equal(200, r.Status);
            responseBytes += r.Body.Length;
            var pid = int.Parse(r.BodyText);
            servedBy[pid] = servedBy.GetValueOrDefault(pid) + 1;
        }
        Assert.True(servedBy.Count == 2, "one worker served every request: " + string.Join(",", servedBy.Keys));
        var pidRequests = servedBy.Values.Sum();

        for (int i = 0; i < 10; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
        for (int i = 0; i < 3; i++) Assert.Equal(404, Http.Get(server.Port, "/status/404").Status);
        for (int i = 0; i < 2; i++)
        {
            // The server's own 500 answer: its body counts as response bytes too.
            var failed = Http.Get(server.Port, "/raise");
            Assert.Equal(500, failed.Status);
            responseBytes += failed.Body.Length;
        }
        var seven = Encoding.ASCII.GetBytes("seven!!");
        for (int i = 0; i < 4; i++) Assert.Equal(200, Http.Post(server.Port, "/", seven).Status);
        // A chunked body (no Content-Length) is counted as the server read it ahead.
        Assert.Equal(200, Http.PostChunked(server.Port, "/", new byte[1000], chunkSize: 300).Status);
        responseBytes += (10 + 3 + 4 + 1) * 10;
        var total = pidRequests + 10 + 3 + 2 + 4 + 1;

        // Kestrel counts a request when it is done with it, just after the client has the answer: poll (bounded).
        var before = ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_request_duration_seconds_count") >= total);
        Assert.Equal(10 + pidRequests, Value(before, "sharpwsgi_requests_total{method=GET,status=2xx}"));
        Assert.Equal(3, Value(before, "sharpwsgi_requests_total{method=GET,status=4xx}"));
        Assert.Equal(2, Value(before, "sharpwsgi_requests_total{method=GET,status=5xx}"));
        Assert.Equal(5, Value(before, "sharpwsgi_requests_total{method=POST,status=2xx}"));
        Assert.Equal(2, Value(before, "sharpwsgi_app_exceptions_total"));
        Assert.Equal(4 * 7 + 1000, Value(before, "sharpwsgi_request_bytes_total"));
        Assert.Equal(responseBytes, Value(before, "sharpwsgi_response_bytes_total"));
        foreach (var h in new[] { "request_duration", "queue_wait", "app", "response_drain" })
        {
            Assert.Equal(total, Value(before, $"sharpwsgi_{h}_seconds_count"));
            Assert.Equal(total, Value(before, $"sharpwsgi_{h}_seconds_bucket{{le=+Inf}}"));
        }
        Assert.Equal(2, Value(before, "sharpwsgi_workers"));
        Assert.Equal(2, Value(before, "sharpwsgi_worker_starts_total"));
        Assert.Equal(0, Value(before, "sharpwsgi_worker_exits_total{reason=crash}"));
        Assert.Equal(4, ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_python_threads") == 4)
            .GetValueOrDefault("sharpwsgi_python_threads"));
        foreach (var pid in pids) Assert.True(Value(before, $"sharpwsgi_worker_resident_bytes{{pid={pid}}}") > 0);

        var victim = pids[0];
        Signals.Send(victim, Signals.SIGKILL);
        server.WaitForOutput($@"Worker \(pid: {victim}\) died unexpectedly", LogTimeout);
        WaitForNewReadyWorker(server, pids);
        var after = ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_worker_exits_total{reason=crash}") == 1);
        // The dead worker's counts were folded into the supervisor's totals: nothing dropped.
        foreach (var (key, value) in before)
            if (key.StartsWith("sharpwsgi_worker_")) continue; // starts and exits: checked below
            else if (new[] { "_total", "_count", "_bucket", "_sum" }.Any(key.Contains))
                Assert.True(Value(after, key) == value, $"{key}: {value} before the kill, {Value(after, key)} after");
        Assert.Equal(3, Value(after, "sharpwsgi_worker_starts_total"));
        Assert.Equal(2, Value(after, "sharpwsgi_workers"));
        Assert.DoesNotContain($"sharpwsgi_worker_resident_bytes{{pid={victim}}}", after.Keys);

        // And the survivors go on counting into the same totals.
        Assert.Equal(200, Http.Get(server.Port, "/").Status);
        ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_request_duration_seconds_count") == total + 1);

        // A reload replaces both workers: two exits by reason "reload", and still nothing lost.
        Signals.Send(server.Pid, Signals.SIGHUP);
        var reloaded = ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_worker_exits_total{reason=reload}") == 2);
        Assert.Equal(5, Value(reloaded, "sharpwsgi_worker_starts_total"));
        Assert.Equal(1, Value(reloaded, "sharpwsgi_worker_exits_total{reason=crash}"));
        Assert.Equal(total + 1, Value(reloaded, "sharpwsgi_request_duration_seconds_count"));
        Assert.Equal(10 + pidRequests + 1, Value(reloaded, "sharpwsgi_requests_total{method=GET,status=2xx}"));
    }

    [Fact]
    public async Task Readyz_WorkerBlockedAtImportThenShutdown_503WhileBootingAndStopping_HealthzAlways200()
    {
        var dir = TempDir("metrics");
        var gate = Path.Combine(dir, "gate");
        using var server = Start(new[] { "--metrics-bind", "127.0.0.1:0", "--graceful-timeout", "20", App },
            new Dictionary<string, string?> { ["METRICS_TEST_GATE"] = gate }, waitForListening: false);
        var metricsPort = MetricsPort(server);
        server.WaitForOutput(@"Booting worker with pid", LogTimeout);

        Assert.Equal(200, Http.Get(metricsPort, "/healthz").Status);
        Assert.Equal(503, Http.Get(metricsPort, "/readyz").Status); // the worker is still importing the app
        Assert.Equal(0, Value(Scrape(metricsPort), "sharpwsgi_workers_ready"));

        File.WriteAllText(gate, "");
        var pid = ReadyPids(server).Single();
        Assert.Equal(200, Http.Get(metricsPort, "/readyz").Status);
        var port = new Uri(Regex.Match(server.WaitForOutput(@"Listening at: \S+"), @"http://\S+").Value).Port;

        // A request in flight keeps the worker, and the supervisor, up while it stops.
        var inFlight = Task.Run(() => Http.Get(port, "/wait"));
        WaitForFile(gate + ".entered", server);
        Signals.Send(server.Pid, Signals.SIGTERM);
        server.WaitForOutput(@"Handling signal: term", LogTimeout);
        Assert.Equal(503, Http.Get(metricsPort, "/readyz").Status);
        Assert.Equal(200, Http.Get(metricsPort, "/healthz").Status);

        File.WriteAllText(gate + ".release", "");
        Assert.Equal(200, (await inFlight).Status);
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.True(WaitForProcessGone(pid, TimeSpan.FromSeconds(10)));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void Metrics_KestrelsOwnRefusal_Counted()
    {
        // A malformed header is answered 400 by Kestrel itself: no exchange, yet it is a 4xx before the app.
        using var server = Start(new[] { "--metrics-bind", "127.0.0.1:0", App });
        ReadyPids(server);
        var metricsPort = MetricsPort(server);
        var response = RawHttp.Exchange(server.Port, "GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n");
        Assert.Equal(400, response.Status);
        var s = ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_limit_refusals_total") == 1);
        Assert.Equal(1, Value(s, "sharpwsgi_requests_total{method=other,status=4xx}"));
        Assert.Equal(200, Http.Get(server.Port, "/").Status);
    }

    [Fact]
    public async Task Metrics_RefusalsAndTimeouts_CountedByCause()
    {
        // One Python thread and room for one queued request: a sleeping request holds the thread past the
        // request timeout (504), the next waits in the queue past the queue timeout (503), a third finds the
        // queue full (503 at once); a request line over the limit is refused before the app (414).
        using var server = Start(new[]
        {
            "--metrics-bind", "127.0.0.1:0", "--threads", "1", "--queue-size", "1", "--queue-timeout", "0.2",
            "--request-timeout", "2", "--limit-request-line", "100", App,
        });
        ReadyPids(server);
        var metricsPort = MetricsPort(server);

        Assert.Equal(414, Http.Get(server.Port, "/" + new string('a', 200)).Status);
        var sleeper = Task.Run(() => Http.Get(server.Port, "/sleep?3"));
        ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_python_threads_busy") == 1);
        var queued = Task.Run(() => Http.Get(server.Port, "/"));
        ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_queued_requests") == 1);
        Assert.Equal(503, Http.Get(server.Port, "/").Status);
        Assert.Equal(504, (await sleeper).Status);
        Assert.Equal(503, (await queued).Status);

        var s = ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_request_duration_seconds_count") == 4);
        Assert.Equal(1, Value(s, "sharpwsgi_limit_refusals_total"));
        Assert.Equal(1, Value(s, "sharpwsgi_request_timeouts_total"));
        Assert.Equal(1, Value(s, "sharpwsgi_unavailable_total{reason=queue_full}"));
        Assert.Equal(1, Value(s, "sharpwsgi_unavailable_total{reason=queue_timeout}"));
        Assert.Equal(1, Value(s, "sharpwsgi_requests_total{method=GET,status=4xx}"));
        Assert.Equal(3, Value(s, "sharpwsgi_requests_total{method=GET,status=5xx}"));
        Assert.Equal(0, Value(s, "sharpwsgi_app_exceptions_total"));
        // Only the sleeper started; the request that timed out in the queue counts as queue_timeout instead.
        Assert.Equal(1, Value(s, "sharpwsgi_queue_wait_seconds_count"));
    }

    [Fact]
    public void WorkerExits_MaxRequests_CountedByReasonWithTheRecycledWorkersRequests()
    {
        using var server = Start(new[] { "--metrics-bind", "127.0.0.1:0", "--max-requests", "3", App });
        var pids = ReadyPids(server);
        var metricsPort = MetricsPort(server);
        for (int i = 0; i < 3; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
        WaitForNewReadyWorker(server, pids);
        var s = ScrapeUntil(metricsPort, s => Value(s, "sharpwsgi_worker_exits_total{reason=max-requests}") == 1);
        Assert.Equal(3, Value(s, "sharpwsgi_requests_total{method=GET,status=2xx}"));
        Assert.Equal(0, Value(s, "sharpwsgi_worker_exits_total{reason=crash}"));
        Assert.Equal(2, Value(s, "sharpwsgi_worker_starts_total"));
        Assert.Equal(1, Value(s, "sharpwsgi_workers"));
    }

    /// <summary>The port of the metrics listener, from the supervisor's "Metrics at" line.</summary>
    internal static int MetricsPort(ServerProcess server)
        => int.Parse(MetricsLine.Match(server.WaitForOutput(MetricsLine, LogTimeout)).Groups[1].Value);

    private static double Value(Dictionary<string, double> samples, string key)
        => samples.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException(
            $"no sample {key} in /metrics; it has: {string.Join(" ", samples.Keys)}");

    /// <summary>Scrapes until the condition holds (bounded); then the page as prometheus_client parses it. The
    /// polling reads the page itself (same keys): starting the Python parser every 20 ms would be too slow for the
    /// timing of the timeout test.</summary>
    private Dictionary<string, double> ScrapeUntil(int port, Func<Dictionary<string, double>, bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var samples = QuickScrape(port);
            if (condition(samples)) return Scrape(port);
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
                throw new TimeoutException("the condition never held; last scrape:\n" +
                    string.Join("\n", samples.Select(kv => $"{kv.Key} {kv.Value}")));
            Thread.Sleep(20); // polling interval of a bounded wait on the counters
        }
    }

    /// <summary>GET /metrics, parsed by prometheus_client as a scraper would (tests/clients/parse_metrics.py).
    /// </summary>
    private Dictionary<string, double> Scrape(int port)
    {
        var r = Http.Get(port, "/metrics");
        Assert.Equal(200, r.Status);
        Assert.StartsWith("text/plain; version=0.0.4", r.Header("Content-Type"));
        var psi = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Parser);
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(r.BodyText);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "the parser did not finish");
        Assert.True(p.ExitCode == 0, $"prometheus_client rejected /metrics: {stderr}\n{r.BodyText}");
        using var doc = JsonDocument.Parse(stdout.Result);
        return doc.RootElement.GetProperty("samples").EnumerateObject()
            .ToDictionary(e => e.Name, e => e.Value.GetDouble());
    }

    private static Dictionary<string, double> QuickScrape(int port)
    {
        var samples = new Dictionary<string, double>();
        foreach (var line in Http.Get(port, "/metrics").BodyText.Split('\n'))
        {
            var space = line.LastIndexOf(' ');
            if (line.StartsWith('#') || space < 0) continue;
            samples[line[..space].Replace("\"", "")] =
                double.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        return samples;
    }

    private static void WaitForFile(string path, ServerProcess server)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            if (clock.Elapsed > LogTimeout) throw new TimeoutException($"{path} never appeared\n{server.Output}");
            Thread.Sleep(20); // bounded poll on the file the app creates
        }
    }
}
