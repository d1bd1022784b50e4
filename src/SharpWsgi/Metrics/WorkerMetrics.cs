using System.Diagnostics;
using SharpWsgi.Gateway;
using SharpWsgi.Hosting;

namespace SharpWsgi.Metrics;

/// <summary>
/// A worker's side of the metrics, for --metrics-bind and --statsd-host. Each finished request adds into this
/// worker's slot of the shared <see cref="MetricsTable"/> (a handful of Interlocked adds, no allocation), and a
/// timer copies the gauges there four times a second, so a scrape never waits on a worker; and it queues
/// gunicorn's three statsd lines (<see cref="StatsdSink.RequestDone"/>). Null (no cost) when both are off.
/// </summary>
public sealed class WorkerMetrics : IDisposable
{
    private readonly MetricsTable? _table;
    private readonly StatsdSink? _statsd;
    private Timer? _gauges;

    public WorkerMetrics(MetricsTable? table, StatsdSink? statsd = null)
    {
        _table = table;
        _statsd = statsd;
    }

    /// <summary>From the environment the supervisor set (the metrics table, when --metrics-bind is on) and this
    /// process's statsd sink (--statsd-host, which the error log owns); null when both are off.</summary>
    public static WorkerMetrics? FromEnvironment(StatsdSink? statsd = null)
    {
        var table = OpenTable();
        return table == null && statsd == null ? null : new WorkerMetrics(table, statsd);
    }

    private static MetricsTable? OpenTable()
    {
        var path = WorkerProtocol.Take(WorkerProtocol.MetricsFileVariable);
        var slotText = WorkerProtocol.Take(WorkerProtocol.MetricsSlotVariable);
        if (path == null || !int.TryParse(slotText, out var slot) || slot is < 0 or >= MetricsTable.Slots)
            return null;
        try { return MetricsTable.Open(path, slot); }
        catch (IOException) { return null; } // metrics are not worth failing the worker for
    }

    public void StartGauges(WsgiGateway gateway, ListenerControl listeners, ByteBudget requestBodies)
    {
        if (_table is not { } table) return;
        _gauges = new Timer(_ =>
        {
            table.Set(MetricsTable.BusyThreads, gateway.BusyThreads);
            table.Set(MetricsTable.Threads, gateway.Threads);
            table.Set(MetricsTable.Queued, gateway.Queued);
            table.Set(MetricsTable.OpenConnections, listeners.OpenConnections);
            table.Set(MetricsTable.BufferedRequestBytes, requestBodies.Used);
            table.Set(MetricsTable.BufferedResponseBytes, gateway.BufferedResponseBytes);
        }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(250));
    }

    public void Count(int index) => _table?.Add(index);
    public void Add(int index, long value) => _table?.Add(index, value);

    /// <summary>Kestrel is done with the request (its response ended or the connection was aborted).</summary>
    public void RequestDone(KestrelExchange exchange)
    {
        var now = Stopwatch.GetTimestamp();
        _statsd?.RequestDone(exchange.Response.StatusCode, now - exchange.StartedAt);
        if (_table != null) AddToTable(exchange, now, _table);
    }

    private static void AddToTable(KestrelExchange exchange, long now, MetricsTable table)
    {
        var t = exchange.Timings;
        table.Add(MetricsTable.RequestIndex(exchange.Method, exchange.Response.StatusCode));
        // Content-Length when declared (whether or not the app read it all), else what the prefetch gathered.
        var requestBytes = exchange.DeclaredRequestLength ?? exchange.GatheredBodyBytes;
        if (requestBytes > 0) table.Add(MetricsTable.RequestBytes, requestBytes);
        if (exchange.BodyBytes is > 0 and var body) table.Add(MetricsTable.ResponseBytes, body);
        if (t.AppRaised) table.Add(MetricsTable.AppExceptions);
        if (exchange.Answer is { } answer && CounterOf(answer.Cause) is int counter) table.Add(counter);
        table.Observe(MetricsTable.Duration, now - exchange.StartedAt);
        if (t.QueuedAt != 0 && t.StartedAt != 0) table.Observe(MetricsTable.QueueWait, t.StartedAt - t.QueuedAt);
        if (t.AppDoneAt != 0)
        {
            table.Observe(MetricsTable.AppTime, t.AppDoneAt - t.StartedAt);
            table.Observe(MetricsTable.Drain, now - t.AppDoneAt);
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
        _table?.Dispose(); // the statsd sink is the error log's: it still sends the worker's last lines
    }
}
