using System.Diagnostics;
using SharpWsgi.Gateway;
using SharpWsgi.Hosting;

namespace SharpWsgi.Metrics;

/// <summary>
/// A worker's side of the metrics: each finished request adds into this worker's slot of the shared
/// <see cref="MetricsTable"/> (a handful of Interlocked adds, no allocation), and a timer copies the gauges
/// there four times a second, so a scrape never waits on a worker.
/// </summary>
public sealed class WorkerMetrics : IDisposable
{
    private readonly MetricsTable _table;
    private Timer? _gauges;

    public WorkerMetrics(MetricsTable table) => _table = table;

    /// <summary>From the environment the supervisor set; null when --metrics-bind is off.</summary>
    public static WorkerMetrics? FromEnvironment()
    {
        var path = WorkerProtocol.Take(WorkerProtocol.MetricsFileVariable);
        var slotText = WorkerProtocol.Take(WorkerProtocol.MetricsSlotVariable);
        if (path == null || !int.TryParse(slotText, out var slot) || slot is < 0 or >= MetricsTable.Slots)
            return null;
        try { return new WorkerMetrics(MetricsTable.Open(path, slot)); }
        catch (IOException) { return null; } // metrics are not worth failing the worker for
    }

    public void StartGauges(WsgiGateway gateway, ListenerControl listeners, ByteBudget requestBodies)
    {
        _gauges = new Timer(_ =>
        {
            _table.Set(MetricsTable.BusyThreads, gateway.BusyThreads);
            _table.Set(MetricsTable.Threads, gateway.Threads);
            _table.Set(MetricsTable.Queued, gateway.Queued);
            _table.Set(MetricsTable.OpenConnections, listeners.OpenConnections);
            _table.Set(MetricsTable.BufferedRequestBytes, requestBodies.Used);
            _table.Set(MetricsTable.BufferedResponseBytes, gateway.BufferedResponseBytes);
        }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(250));
    }

    public void Count(int index) => _table.Add(index);
    public void Add(int index, long value) => _table.Add(index, value);

    /// <summary>Kestrel is done with the request (its response ended or the connection was aborted).</summary>
    public void RequestDone(KestrelExchange exchange)
    {
        var now = Stopwatch.GetTimestamp();
        var t = exchange.Timings;
        _table.Add(MetricsTable.RequestIndex(exchange.Method, exchange.Response.StatusCode));
        // Content-Length when declared (whether or not the app read it all), else what the prefetch gathered.
        var requestBytes = exchange.DeclaredRequestLength ?? exchange.GatheredBodyBytes;
        if (requestBytes > 0) _table.Add(MetricsTable.RequestBytes, requestBytes);
        if (exchange.BodyBytes is > 0 and var body) _table.Add(MetricsTable.ResponseBytes, body);
        if (t.AppRaised) _table.Add(MetricsTable.AppExceptions);
        if (exchange.Answer is { } answer && CounterOf(answer.Cause) is int counter) _table.Add(counter);
        _table.Observe(MetricsTable.Duration, now - exchange.StartedAt);
        if (t.QueuedAt != 0 && t.StartedAt != 0) _table.Observe(MetricsTable.QueueWait, t.StartedAt - t.QueuedAt);
        if (t.AppDoneAt != 0)
        {
            _table.Observe(MetricsTable.AppTime, t.AppDoneAt - t.StartedAt);
            _table.Observe(MetricsTable.Drain, now - t.AppDoneAt);
        }
    }

    /// <summary>The counter a server's own answer adds to, by why it was given.</summary>
    private static int? CounterOf(AnswerCause cause) => cause switch
    {
        AnswerCause.Refused => MetricsTable.LimitRefusals,
        AnswerCause.QueueFull => MetricsTable.QueueFull,
        AnswerCause.QueueTimeout => MetricsTable.QueueTimeout,
        AnswerCause.RequestTimeout => MetricsTable.RequestTimeout,
        _ => null,
    };

    public void Dispose()
    {
        _gauges?.Dispose();
        _table.Dispose();
    }
}
