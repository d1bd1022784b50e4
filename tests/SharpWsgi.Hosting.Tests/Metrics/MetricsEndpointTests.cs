using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting.Tests.Metrics;

/// <summary>The /metrics page rendered from a table whose every long holds its own number, compared with the page
/// the server has always produced: any change of a name, a label, a help text, an order or a slot shows.</summary>
public sealed class MetricsEndpointTests
{
    private const int LiveSlot = 0, StartingSlot = 2, ExitedSlot = 5, VanishedSlot = 7;

    /// <summary>Different in every slot and index; request counters with index % 3 == 1 stay zero in every slot
    /// (GET 2xx among them), so the page's rule for method × class pairs never seen shows too.</summary>
    private static long Fill(int slot, int index) =>
        index < RequestCounters && index % 3 == 1 ? 0 : (slot + 1) * 100_000 + index * 37 + 1;

    private static readonly int RequestCounters =
        MetricsTable.Requests + MetricsTable.Methods.Length * MetricsTable.StatusClasses;

    [Fact]
    public void Render_TableWithDistinctValues_IsTheGoldenPage()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
                file.SetLength((long)MetricsTable.Slots * MetricsTable.SlotLongs * sizeof(long));
            foreach (var slot in new[] { LiveSlot, StartingSlot, ExitedSlot, VanishedSlot })
            {
                using var worker = MetricsTable.Open(path, slot);
                for (int i = 0; i < MetricsTable.SlotLongs; i++) worker.Set(i, Fill(slot, i));
            }
            // Any slot's view reads the whole file: here it plays the supervisor's table.
            using var table = MetricsTable.Open(path, 0);
            using var endpoint = new MetricsEndpoint(table, "127.0.0.1:0", NullLogger.Instance);
            for (int i = 0; i < 4; i++) endpoint.CountStart();
            endpoint.CountExit(ExitedSlot, "max-rss");
            endpoint.CountExit(VanishedSlot, "no-such-reason"); // counted as a crash
            // This process has a resident size (its value masked below); a pid that cannot exist has none.
            endpoint.Publish(new[]
            {
                new WorkerView(Environment.ProcessId, LiveSlot, true),
                new WorkerView(int.MaxValue, StartingSlot, false),
            }, ready: true);

            var page = Regex.Replace(endpoint.Render(), @"(sharpwsgi_worker_resident_bytes\{pid="")\d+(""\}) \d+\n",
                "${1}PID${2} RSS\n");

            Assert.Equal(GoldenPage, page);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Captured from the hand-written Render before it became table-driven (a trailing newline; at column 0
    /// so that the page's longest lines fit).</summary>
    private const string GoldenPage = """
# HELP sharpwsgi_requests_total Requests answered, by method and status class.
# TYPE sharpwsgi_requests_total counter
sharpwsgi_requests_total{method="GET",status="1xx"} 1800004
sharpwsgi_requests_total{method="GET",status="2xx"} 0
sharpwsgi_requests_total{method="GET",status="3xx"} 1800300
sharpwsgi_requests_total{method="GET",status="4xx"} 1800448
sharpwsgi_requests_total{method="HEAD",status="1xx"} 1800744
sharpwsgi_requests_total{method="HEAD",status="2xx"} 1800892
sharpwsgi_requests_total{method="HEAD",status="4xx"} 1801188
sharpwsgi_requests_total{method="HEAD",status="5xx"} 1801336
sharpwsgi_requests_total{method="POST",status="2xx"} 1801632
sharpwsgi_requests_total{method="POST",status="3xx"} 1801780
sharpwsgi_requests_total{method="POST",status="5xx"} 1802076
sharpwsgi_requests_total{method="PUT",status="1xx"} 1802224
sharpwsgi_requests_total{method="PUT",status="3xx"} 1802520
sharpwsgi_requests_total{method="PUT",status="4xx"} 1802668
sharpwsgi_requests_total{method="DELETE",status="1xx"} 1802964
sharpwsgi_requests_total{method="DELETE",status="2xx"} 1803112
sharpwsgi_requests_total{method="DELETE",status="4xx"} 1803408
sharpwsgi_requests_total{method="DELETE",status="5xx"} 1803556
sharpwsgi_requests_total{method="PATCH",status="2xx"} 1803852
sharpwsgi_requests_total{method="PATCH",status="3xx"} 1804000
sharpwsgi_requests_total{method="PATCH",status="5xx"} 1804296
sharpwsgi_requests_total{method="OPTIONS",status="1xx"} 1804444
sharpwsgi_requests_total{method="OPTIONS",status="3xx"} 1804740
sharpwsgi_requests_total{method="OPTIONS",status="4xx"} 1804888
sharpwsgi_requests_total{method="other",status="1xx"} 1805184
sharpwsgi_requests_total{method="other",status="2xx"} 1805332
sharpwsgi_requests_total{method="other",status="4xx"} 1805628
sharpwsgi_requests_total{method="other",status="5xx"} 1805776
# HELP sharpwsgi_request_bytes_total Request body bytes received.
# TYPE sharpwsgi_request_bytes_total counter
sharpwsgi_request_bytes_total 1805924
# HELP sharpwsgi_response_bytes_total Response body bytes: the app's, static files' and the server's own answers'.
# TYPE sharpwsgi_response_bytes_total counter
sharpwsgi_response_bytes_total 1806072
# HELP sharpwsgi_app_exceptions_total Exceptions raised by the app (500, or an aborted response).
# TYPE sharpwsgi_app_exceptions_total counter
sharpwsgi_app_exceptions_total 1806220
# HELP sharpwsgi_unavailable_total 503 answers, by cause.
# TYPE sharpwsgi_unavailable_total counter
sharpwsgi_unavailable_total{reason="queue_full"} 1806368
sharpwsgi_unavailable_total{reason="queue_timeout"} 1806516
# HELP sharpwsgi_request_timeouts_total 504 answers: the request ran past --request-timeout.
# TYPE sharpwsgi_request_timeouts_total counter
sharpwsgi_request_timeouts_total 1806664
# HELP sharpwsgi_limit_refusals_total 4xx answers before the app ran (a request limit or a malformed request).
# TYPE sharpwsgi_limit_refusals_total counter
sharpwsgi_limit_refusals_total 1806812
# HELP sharpwsgi_static_sendfile_bytes_total --static body bytes sent by sendfile(2).
# TYPE sharpwsgi_static_sendfile_bytes_total counter
sharpwsgi_static_sendfile_bytes_total 1806960
# HELP sharpwsgi_slow_clients_dropped_total Connections dropped because the client did not take the response, by rule.
# TYPE sharpwsgi_slow_clients_dropped_total counter
sharpwsgi_slow_clients_dropped_total{reason="send_timeout"} 1807108
sharpwsgi_slow_clients_dropped_total{reason="min_download_rate"} 1807256
# HELP sharpwsgi_worker_starts_total Worker processes started.
# TYPE sharpwsgi_worker_starts_total counter
sharpwsgi_worker_starts_total 4
# HELP sharpwsgi_worker_exits_total Worker processes that exited, by reason.
# TYPE sharpwsgi_worker_exits_total counter
sharpwsgi_worker_exits_total{reason="crash"} 1
sharpwsgi_worker_exits_total{reason="boot"} 0
sharpwsgi_worker_exits_total{reason="heartbeat"} 0
sharpwsgi_worker_exits_total{reason="max-requests"} 0
sharpwsgi_worker_exits_total{reason="max-lifetime"} 0
sharpwsgi_worker_exits_total{reason="max-rss"} 1
sharpwsgi_worker_exits_total{reason="reload"} 0
sharpwsgi_worker_exits_total{reason="stuck"} 0
sharpwsgi_worker_exits_total{reason="scale-down"} 0
sharpwsgi_worker_exits_total{reason="shutdown"} 0
# HELP sharpwsgi_workers Worker processes running.
# TYPE sharpwsgi_workers gauge
sharpwsgi_workers 2
# HELP sharpwsgi_workers_ready Workers that imported the app and accept.
# TYPE sharpwsgi_workers_ready gauge
sharpwsgi_workers_ready 1
# HELP sharpwsgi_python_threads_busy Python threads running a request.
# TYPE sharpwsgi_python_threads_busy gauge
sharpwsgi_python_threads_busy 403702
# HELP sharpwsgi_python_threads Python threads, all workers.
# TYPE sharpwsgi_python_threads gauge
sharpwsgi_python_threads 403776
# HELP sharpwsgi_queued_requests Requests waiting for a Python thread.
# TYPE sharpwsgi_queued_requests gauge
sharpwsgi_queued_requests 403850
# HELP sharpwsgi_open_connections Open client connections.
# TYPE sharpwsgi_open_connections gauge
sharpwsgi_open_connections 403924
# HELP sharpwsgi_buffered_request_bytes Request bodies buffered in memory before the app ran.
# TYPE sharpwsgi_buffered_request_bytes gauge
sharpwsgi_buffered_request_bytes 403998
# HELP sharpwsgi_buffered_response_bytes Response bytes spooled for slow clients.
# TYPE sharpwsgi_buffered_response_bytes gauge
sharpwsgi_buffered_response_bytes 404072
# HELP sharpwsgi_worker_resident_bytes Resident memory of each worker.
# TYPE sharpwsgi_worker_resident_bytes gauge
sharpwsgi_worker_resident_bytes{pid="PID"} RSS
# HELP sharpwsgi_request_duration_seconds From the request head to the response's end.
# TYPE sharpwsgi_request_duration_seconds histogram
sharpwsgi_request_duration_seconds_bucket{le="0.0005"} 1808588
sharpwsgi_request_duration_seconds_bucket{le="0.001"} 3617324
sharpwsgi_request_duration_seconds_bucket{le="0.0025"} 5426208
sharpwsgi_request_duration_seconds_bucket{le="0.005"} 7235240
sharpwsgi_request_duration_seconds_bucket{le="0.01"} 9044420
sharpwsgi_request_duration_seconds_bucket{le="0.025"} 10853748
sharpwsgi_request_duration_seconds_bucket{le="0.05"} 12663224
sharpwsgi_request_duration_seconds_bucket{le="0.1"} 14472848
sharpwsgi_request_duration_seconds_bucket{le="0.25"} 16282620
sharpwsgi_request_duration_seconds_bucket{le="0.5"} 18092540
sharpwsgi_request_duration_seconds_bucket{le="1"} 19902608
sharpwsgi_request_duration_seconds_bucket{le="2.5"} 21712824
sharpwsgi_request_duration_seconds_bucket{le="5"} 23523188
sharpwsgi_request_duration_seconds_bucket{le="10"} 25333700
sharpwsgi_request_duration_seconds_bucket{le="30"} 27144360
sharpwsgi_request_duration_seconds_bucket{le="+Inf"} 28955168
sharpwsgi_request_duration_seconds_sum 1.810956
sharpwsgi_request_duration_seconds_count 28955168
# HELP sharpwsgi_queue_wait_seconds From queueing until a Python thread took the request.
# TYPE sharpwsgi_queue_wait_seconds histogram
sharpwsgi_queue_wait_seconds_bucket{le="0.0005"} 1811104
sharpwsgi_queue_wait_seconds_bucket{le="0.001"} 3622356
sharpwsgi_queue_wait_seconds_bucket{le="0.0025"} 5433756
sharpwsgi_queue_wait_seconds_bucket{le="0.005"} 7245304
sharpwsgi_queue_wait_seconds_bucket{le="0.01"} 9057000
sharpwsgi_queue_wait_seconds_bucket{le="0.025"} 10868844
sharpwsgi_queue_wait_seconds_bucket{le="0.05"} 12680836
sharpwsgi_queue_wait_seconds_bucket{le="0.1"} 14492976
sharpwsgi_queue_wait_seconds_bucket{le="0.25"} 16305264
sharpwsgi_queue_wait_seconds_bucket{le="0.5"} 18117700
sharpwsgi_queue_wait_seconds_bucket{le="1"} 19930284
sharpwsgi_queue_wait_seconds_bucket{le="2.5"} 21743016
sharpwsgi_queue_wait_seconds_bucket{le="5"} 23555896
sharpwsgi_queue_wait_seconds_bucket{le="10"} 25368924
sharpwsgi_queue_wait_seconds_bucket{le="30"} 27182100
sharpwsgi_queue_wait_seconds_bucket{le="+Inf"} 28995424
sharpwsgi_queue_wait_seconds_sum 1.813472
sharpwsgi_queue_wait_seconds_count 28995424
# HELP sharpwsgi_app_seconds Time in the app (Python), its body iterated.
# TYPE sharpwsgi_app_seconds histogram
sharpwsgi_app_seconds_bucket{le="0.0005"} 1813620
sharpwsgi_app_seconds_bucket{le="0.001"} 3627388
sharpwsgi_app_seconds_bucket{le="0.0025"} 5441304
sharpwsgi_app_seconds_bucket{le="0.005"} 7255368
sharpwsgi_app_seconds_bucket{le="0.01"} 9069580
sharpwsgi_app_seconds_bucket{le="0.025"} 10883940
sharpwsgi_app_seconds_bucket{le="0.05"} 12698448
sharpwsgi_app_seconds_bucket{le="0.1"} 14513104
sharpwsgi_app_seconds_bucket{le="0.25"} 16327908
sharpwsgi_app_seconds_bucket{le="0.5"} 18142860
sharpwsgi_app_seconds_bucket{le="1"} 19957960
sharpwsgi_app_seconds_bucket{le="2.5"} 21773208
sharpwsgi_app_seconds_bucket{le="5"} 23588604
sharpwsgi_app_seconds_bucket{le="10"} 25404148
sharpwsgi_app_seconds_bucket{le="30"} 27219840
sharpwsgi_app_seconds_bucket{le="+Inf"} 29035680
sharpwsgi_app_seconds_sum 1.815988
sharpwsgi_app_seconds_count 29035680
# HELP sharpwsgi_response_drain_seconds From the app's last byte to the response's end.
# TYPE sharpwsgi_response_drain_seconds histogram
sharpwsgi_response_drain_seconds_bucket{le="0.0005"} 1816136
sharpwsgi_response_drain_seconds_bucket{le="0.001"} 3632420
sharpwsgi_response_drain_seconds_bucket{le="0.0025"} 5448852
sharpwsgi_response_drain_seconds_bucket{le="0.005"} 7265432
sharpwsgi_response_drain_seconds_bucket{le="0.01"} 9082160
sharpwsgi_response_drain_seconds_bucket{le="0.025"} 10899036
sharpwsgi_response_drain_seconds_bucket{le="0.05"} 12716060
sharpwsgi_response_drain_seconds_bucket{le="0.1"} 14533232
sharpwsgi_response_drain_seconds_bucket{le="0.25"} 16350552
sharpwsgi_response_drain_seconds_bucket{le="0.5"} 18168020
sharpwsgi_response_drain_seconds_bucket{le="1"} 19985636
sharpwsgi_response_drain_seconds_bucket{le="2.5"} 21803400
sharpwsgi_response_drain_seconds_bucket{le="5"} 23621312
sharpwsgi_response_drain_seconds_bucket{le="10"} 25439372
sharpwsgi_response_drain_seconds_bucket{le="30"} 27257580
sharpwsgi_response_drain_seconds_bucket{le="+Inf"} 29075936
sharpwsgi_response_drain_seconds_sum 1.818504
sharpwsgi_response_drain_seconds_count 29075936

""";
}
