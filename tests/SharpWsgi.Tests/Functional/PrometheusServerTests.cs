using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using SharpWsgi.Tests.Workers;
using Xunit.Abstractions;
using static SharpWsgi.Tests.Functional.MetricsTests;
using static SharpWsgi.Tests.Workers.WorkerTestSupport;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The metrics as Prometheus itself sees them: Debian's promtool lints the page, and a real Prometheus server
/// (its own instance on 127.0.0.1, generated config, stopped by PID) scrapes two workers and evaluates every query
/// of docs/grafana-dashboard.json with the dashboard's variables filled in.
/// </summary>
[Collection("Workers")]
public sealed class PrometheusServerTests : WorkerTestBase
{
    private static string App => MetricsTests.App;
    private static string Dashboard => Path.Combine(ServerProcess.RepoRoot, "docs", "grafana-dashboard.json");

    public PrometheusServerTests(ITestOutputHelper output) : base(output) { }

    [Fact]
    public void Promtool_LintsTheMetricsPage_Clean()
    {
        using var server = Start(new[] { "--workers", "2", "--metrics-bind", "127.0.0.1:0", App });
        ReadyPids(server);
        var metricsPort = MetricsPort(server);
        for (var i = 0; i < 5; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
        var page = Http.Get(metricsPort, "/metrics").BodyText;
        var (code, output) = Run("promtool", new[] { "check", "metrics" }, page);
        Assert.True(code == 0 && output.Trim().Length == 0, $"promtool check metrics said ({code}):\n{output}");
    }

    [Fact]
    public void Prometheus_ScrapesTwoWorkers_EveryDashboardQueryEvaluates()
    {
        using var server = Start(new[] { "--workers", "2", "--threads", "2", "--metrics-bind", "127.0.0.1:0", App });
        ReadyPids(server);
        var metricsPort = MetricsPort(server);

        var dir = ExternalServer.NewDirectory("prometheus");
        var config = Path.Combine(dir, "prometheus.yml");
        File.WriteAllText(config, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" +
            "scrape_configs:\n  - job_name: sharpwsgi\n    static_configs:\n" +
            $"      - targets: ['127.0.0.1:{metricsPort}']\n");
        var port = ExternalServer.FreePort();
        using var prometheus = ExternalServer.Start("prometheus", new[]
        {
            "--config.file=" + config, "--storage.tsdb.path=" + Path.Combine(dir, "data"),
            $"--web.listen-address=127.0.0.1:{port}",
        }, dir, port, TimeSpan.FromSeconds(60));

        // It listens before its storage is open: /-/ready says when it answers queries.
        var clock = Stopwatch.StartNew();
        while (Http.Get(port, "/-/ready").Status != 200)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "Prometheus never got ready:\n" + prometheus.Output);
            Thread.Sleep(50); // polling interval of a bounded wait
        }
        // Traffic while Prometheus takes a few scrapes: rate() needs two samples in its window.
        while (Scalar(Query(port, "count_over_time(sharpwsgi_workers[1m])")) is not >= 4)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "Prometheus never scraped 4 times:\n" +
                prometheus.Output);
            for (var i = 0; i < 5; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
            Assert.Equal(404, Http.Get(server.Port, "/status/404").Status);
            Thread.Sleep(100); // pacing of the traffic, not synchronisation: the loop waits on Prometheus's answer
        }
        Assert.Equal(1, Scalar(Query(port, "up{job=\"sharpwsgi\"}")));

        using var dashboard = JsonDocument.Parse(File.ReadAllText(Dashboard));
        var checkedQueries = 0;
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
            foreach (var target in panel.GetProperty("targets").EnumerateArray())
            {
                var expr = target.GetProperty("expr").GetString()!
                    .Replace("$job", "sharpwsgi").Replace("$instance", ".+").Replace("$__rate_interval", "30s");
                var answer = Query(port, expr); // throws with Prometheus's error when the query is not valid
                Out.WriteLine($"{panel.GetProperty("title").GetString()}: {expr} -> {answer}");
                checkedQueries++;
            }
        Assert.True(checkedQueries >= 10, $"only {checkedQueries} queries in the dashboard");

        // The panels that must show data after this traffic do.
        Assert.Equal(2, Scalar(Query(port, "sum(sharpwsgi_workers{job=~\"sharpwsgi\"})")));
        var saturation = Scalar(Query(port, "sum(sharpwsgi_python_threads_busy) / sum(sharpwsgi_python_threads)"));
        Assert.InRange(saturation!.Value, 0, 1);
        Assert.Equal(4, Scalar(Query(port, "sum(sharpwsgi_python_threads)")));
        Assert.True(Scalar(Query(port, "sum(rate(sharpwsgi_requests_total{status=\"2xx\"}[30s]))")) > 0);
        Assert.True(Scalar(Query(port, "sum(rate(sharpwsgi_requests_total{status=\"4xx\"}[30s]))")) > 0);
        var p99 = Scalar(Query(port,
            "histogram_quantile(0.99, sum by (le) (rate(sharpwsgi_request_duration_seconds_bucket[30s])))"));
        Assert.InRange(p99!.Value, 0, 30);
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>/api/v1/query: the result array (vector) as JSON text; an error status fails the test.</summary>
    private static string Query(int port, string promql)
    {
        var r = Http.Get(port, "/api/v1/query?query=" + Uri.EscapeDataString(promql));
        using var doc = JsonDocument.Parse(r.BodyText);
        var status = doc.RootElement.GetProperty("status").GetString();
        Assert.True(r.Status == 200 && status == "success", $"Prometheus refused {promql}: {r.BodyText}");
        return doc.RootElement.GetProperty("data").GetProperty("result").GetRawText();
    }

    /// <summary>The value of a one-sample vector; null when it is empty.</summary>
    private static double? Scalar(string result)
    {
        using var doc = JsonDocument.Parse(result);
        var samples = doc.RootElement;
        if (samples.GetArrayLength() == 0) return null;
        Assert.Equal(1, samples.GetArrayLength());
        return double.Parse(samples[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
    }

    private static (int Code, string Output) Run(string program, string[] args, string input)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), $"{program} did not finish");
        return (p.ExitCode, stdout.Result + stderr);
    }
}
