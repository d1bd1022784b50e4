using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Metrics;

/// <summary>One live worker as the supervisor last published it.</summary>
public readonly record struct WorkerView(int Pid, int Slot, bool Ready);

/// <summary>
/// The supervisor's --metrics-bind listener: /metrics (Prometheus text format 0.0.4, summed over all workers,
/// exited ones included), /healthz and /readyz. A plain socket and an accept thread (the supervisor has no Kestrel
/// or Python; it is scraped every few seconds, never on the request path); each connection is answered on the
/// thread pool. The supervisor's loop publishes its state with <see cref="Publish"/>; a scrape reads it under one
/// lock, so a worker being folded in on exit is counted exactly once.
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    private static readonly string[] ExitReasons =
        { "crash", "boot", "heartbeat", "max-requests", "max-lifetime", "max-rss", "reload", "stuck", "scale-down",
          "shutdown" };

    private readonly MetricsTable _table;
    private readonly Socket _socket;
    private readonly ILogger _log;
    private readonly object _gate = new();
    private readonly long[] _exited = new long[MetricsTable.SlotLongs]; // folded counts of exited workers
    private readonly long[] _exits = new long[ExitReasons.Length];
    private long _starts;
    private WorkerView[] _workers = Array.Empty<WorkerView>();
    private bool _ready;
    private readonly Thread _thread;
    private readonly int _wake = Libc.EventFd();
    private volatile bool _accepting;
    private volatile bool _disposed;

    public MetricsEndpoint(MetricsTable table, string bind, ILogger log) : this(table, Listen(bind), log, true) { }

    /// <summary>Serves on a listening socket it is handed: a binary upgrade's (Supervisor.BinaryUpgrade), shared with
    /// the old supervisor, which answers until this one calls <see cref="StartAccepting"/>.</summary>
    public MetricsEndpoint(MetricsTable table, Socket listener, ILogger log, bool accepting)
    {
        _table = table;
        _log = log;
        _socket = listener;
        _socket.Blocking = false; // a connection another supervisor took first is EAGAIN, not a wait
        _accepting = accepting;
        var bound = (IPEndPoint)_socket.LocalEndPoint!;
        var host = bound.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{bound.Address}]" : bound.Address.ToString();
        Url = $"http://{host}:{bound.Port}";
        _thread = new Thread(Serve, 256 * 1024) { IsBackground = true, Name = "metrics" };
        _thread.Start();
    }

    private static Socket Listen(string bind)
    {
        var endpoint = Hosting.ListenAddress.Parse(bind);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(endpoint);
        socket.Listen(64);
        return socket;
    }

    /// <summary>The listening socket, for a binary upgrade to hand down.</summary>
    public Socket Listener => _socket;

    public void StartAccepting()
    {
        _accepting = true;
        Libc.Signal(_wake);
    }

    /// <summary>Stops answering, the socket left open: the new supervisor of a binary upgrade shares it (closing it
    /// with an accept pending would shut it down for both).</summary>
    public void StopAccepting()
    {
        _accepting = false;
        Libc.Signal(_wake);
    }

    public string Url { get; }

    /// <summary>The supervisor's current workers and whether it is ready (a worker accepts, not stopping).</summary>
    public void Publish(WorkerView[] workers, bool ready)
    {
        lock (_gate)
        {
            _workers = workers;
            _ready = ready;
        }
    }

    public void CountStart()
    {
        lock (_gate) _starts++;
    }

    /// <summary>A worker exited: its slot's counts move into the supervisor's totals.</summary>
    public void CountExit(int slot, string reason)
    {
        lock (_gate)
        {
            _table.Fold(slot, _exited);
            var i = Array.IndexOf(ExitReasons, reason);
            _exits[i < 0 ? 0 : i]++;
        }
    }

    private void Serve()
    {
        var listenFd = (int)_socket.Handle;
        while (true)
        {
            // poll(2) with a wake descriptor instead of a blocking accept, so that accepting can stop and start
            // again (StopAccepting) without closing the socket.
            var (incoming, woken) = _accepting
                ? Libc.PollReadable(listenFd, _wake, -1)
                : (false, Libc.PollReadable(_wake, _wake, -1).First);
            if (woken) Libc.Drain(_wake);
            if (_disposed) return;
            if (!incoming || !_accepting) continue;
            Socket client;
            try { client = _socket.Accept(); }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock) { continue; }
            catch (Exception) { return; } // disposed
            client.Blocking = true;
            // Off the accept thread: a scraper that sends its request slowly must not hold up a health probe.
            ThreadPool.UnsafeQueueUserWorkItem(c =>
            {
                try { Answer(c); }
                catch (Exception e) when (e is SocketException or IOException) { }
                catch (Exception e) { _log.LogError("Metrics endpoint: {Error}", e); }
                finally { c.Dispose(); }
            }, client, preferLocal: false);
        }
    }

    private void Answer(Socket client)
    {
        client.ReceiveTimeout = 5000;
        client.SendTimeout = 5000;
        var buffer = new byte[4096];
        var n = 0;
        // The request head only (a scraper sends no body); its first line is all we need.
        while (n < buffer.Length)
        {
            var r = client.Receive(buffer, n, buffer.Length - n, SocketFlags.None);
            if (r == 0) break;
            n += r;
            if (buffer.AsSpan(0, n).IndexOf("\r\n\r\n"u8) >= 0 || buffer.AsSpan(0, n).IndexOf("\n\n"u8) >= 0) break;
        }
        var line = Encoding.ASCII.GetString(buffer, 0, Math.Max(0, buffer.AsSpan(0, n).IndexOf((byte)'\n')));
        var parts = line.Trim().Split(' ');
        var path = parts.Length > 1 ? parts[1].Split('?')[0] : "";
        var head = parts[0] == "HEAD";
        var (status, type, body) = (parts[0] is "GET" or "HEAD", path) switch
        {
            (false, _) => (405, "text/plain", "method not allowed\n"),
            (_, "/metrics") => (200, "text/plain; version=0.0.4; charset=utf-8", Render()),
            (_, "/healthz") => (200, "text/plain", "ok\n"),
            (_, "/readyz") => Ready() ? (200, "text/plain", "ready\n") : (503, "text/plain", "not ready\n"),
            _ => (404, "text/plain", "not found\n"),
        };
        var payload = Encoding.UTF8.GetBytes(body);
        var reason = status switch
        {
            200 => "OK", 404 => "Not Found", 405 => "Method Not Allowed", _ => "Service Unavailable",
        };
        var header = $"HTTP/1.1 {status} {reason}\r\nContent-Type: {type}\r\nContent-Length: {payload.Length}\r\n" +
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
        client.Send(Encoding.ASCII.GetBytes(header));
        if (!head) client.Send(payload);
        client.Shutdown(SocketShutdown.Send);
    }

    private bool Ready()
    {
        lock (_gate) return _ready;
    }

    /// <summary>The page: every family of <see cref="Page"/> in order, from one consistent scrape.</summary>
    public string Render()
    {
        var scrape = TakeScrape();
        var o = new StringBuilder(8192);
        foreach (var family in Page)
        {
            o.Append("# HELP ").Append(family.Name).Append(' ').Append(family.Help).Append("\n# TYPE ")
                .Append(family.Name).Append(' ').Append(family.Type).Append('\n');
            foreach (var sample in family.Slots)
            {
                var value = scrape.Totals[sample.Index];
                if (value != 0 || !sample.HiddenWhileZero) AppendSample(o, family.Name, sample.Labels, value);
            }
            if (family.Supervisor is { } values)
                foreach (var (labels, value) in values(scrape)) AppendSample(o, family.Name, labels, value);
            if (family.Histogram is { } histogram) AppendHistogram(o, family.Name, scrape.Totals, histogram);
        }
        return o.ToString();
    }

    /// <summary>What one page shows, read under the lock: the slots summed (live workers' counters and gauges, the
    /// exited ones' counters) and the supervisor's own counts.</summary>
    private sealed record Scrape(long[] Totals, WorkerView[] Workers, long Starts, long[] Exits);

    private Scrape TakeScrape()
    {
        lock (_gate)
        {
            var totals = (long[])_exited.Clone();
            foreach (var w in _workers)
            {
                _table.AddCountsTo(w.Slot, totals);
                _table.AddGaugesTo(w.Slot, totals);
            }
            return new Scrape(totals, _workers, _starts, (long[])_exits.Clone());
        }
    }

    /// <summary>One sample whose value is a long of the summed slot: its labels ("" for none) and index. A sample
    /// hidden while zero is left out of the page until it is counted once.</summary>
    private readonly record struct SlotSample(string Labels, int Index, bool HiddenWhileZero = false);

    /// <summary>A metric family declared once: name, type and help, and where its samples come from: longs of the
    /// summed slots, values the supervisor keeps itself, or one histogram of the slots.</summary>
    private sealed record Family(string Name, string Type, string Help)
    {
        public SlotSample[] Slots { get; init; } = [];
        public Func<Scrape, IEnumerable<(string Labels, long Value)>>? Supervisor { get; init; }
        public int? Histogram { get; init; }
    }

    private static Family Counter(string name, string help, params SlotSample[] samples) =>
        new(name, "counter", help) { Slots = samples };
    private static Family Counter(string name, string help, int index) =>
        Counter(name, help, new SlotSample("", index));
    private static Family Counter(string name, string help, Func<Scrape, IEnumerable<(string, long)>> values) =>
        new(name, "counter", help) { Supervisor = values };
    private static Family Gauge(string name, string help, int index) =>
        new(name, "gauge", help) { Slots = [new SlotSample("", index)] };
    private static Family Gauge(string name, string help, Func<Scrape, IEnumerable<(string, long)>> values) =>
        new(name, "gauge", help) { Supervisor = values };
    private static Family Histogram(string name, string help, int which) =>
        new(name, "histogram", help) { Histogram = which };

    private static string Label(string name, string value) => $"{name}=\"{value}\"";
    private static IEnumerable<(string, long)> Unlabelled(long value) => [("", value)];

    /// <summary>Every family of /metrics, in the page's order.</summary>
    private static readonly Family[] Page =
    [
        Counter("sharpwsgi_requests_total", "Requests answered, by method and status class.", RequestSamples()),
        Counter("sharpwsgi_request_bytes_total", "Request body bytes received.", MetricsTable.RequestBytes),
        Counter("sharpwsgi_response_bytes_total",
            "Response body bytes: the app's, static files' and the server's own answers'.", MetricsTable.ResponseBytes),
        Counter("sharpwsgi_app_exceptions_total", "Exceptions raised by the app (500, or an aborted response).",
            MetricsTable.AppExceptions),
        Counter("sharpwsgi_unavailable_total", "503 answers, by cause.",
            new SlotSample(Label("reason", "queue_full"), MetricsTable.QueueFull),
            new SlotSample(Label("reason", "queue_timeout"), MetricsTable.QueueTimeout)),
        Counter("sharpwsgi_request_timeouts_total", "504 answers: the request ran past --request-timeout.",
            MetricsTable.RequestTimeout),
        Counter("sharpwsgi_limit_refusals_total",
            "4xx answers before the app ran (a request limit or a malformed request).", MetricsTable.LimitRefusals),
        Counter("sharpwsgi_static_sendfile_bytes_total", "--static body bytes sent by sendfile(2).",
            MetricsTable.StaticSendfileBytes),
        Counter("sharpwsgi_slow_clients_dropped_total",
            "Connections dropped because the client did not take the response, by rule.",
            new SlotSample(Label("reason", "send_timeout"), MetricsTable.SlowClientsSendTimeout),
            new SlotSample(Label("reason", "min_download_rate"), MetricsTable.SlowClientsMinRate)),
        Counter("sharpwsgi_worker_starts_total", "Worker processes started.", s => Unlabelled(s.Starts)),
        Counter("sharpwsgi_worker_exits_total", "Worker processes that exited, by reason.",
            s => ExitReasons.Select((reason, i) => (Label("reason", reason), s.Exits[i]))),

        Gauge("sharpwsgi_workers", "Worker processes running.", s => Unlabelled(s.Workers.Length)),
        Gauge("sharpwsgi_workers_ready", "Workers that imported the app and accept.",
            s => Unlabelled(s.Workers.Count(w => w.Ready))),
        Gauge("sharpwsgi_python_threads_busy", "Python threads running a request.", MetricsTable.BusyThreads),
        Gauge("sharpwsgi_python_threads", "Python threads, all workers.", MetricsTable.Threads),
        Gauge("sharpwsgi_queued_requests", "Requests waiting for a Python thread.", MetricsTable.Queued),
        Gauge("sharpwsgi_open_connections", "Open client connections.", MetricsTable.OpenConnections),
        Gauge("sharpwsgi_buffered_request_bytes", "Request bodies buffered in memory before the app ran.",
            MetricsTable.BufferedRequestBytes),
        Gauge("sharpwsgi_buffered_response_bytes", "Response bytes spooled for slow clients.",
            MetricsTable.BufferedResponseBytes),
        Gauge("sharpwsgi_worker_resident_bytes", "Resident memory of each worker.", ResidentSamples),

        Histogram("sharpwsgi_request_duration_seconds", "From the request head to the response's end.",
            MetricsTable.Duration),
        Histogram("sharpwsgi_queue_wait_seconds", "From queueing until a Python thread took the request.",
            MetricsTable.QueueWait),
        Histogram("sharpwsgi_app_seconds", "Time in the app (Python), its body iterated.", MetricsTable.AppTime),
        Histogram("sharpwsgi_response_drain_seconds", "From the app's last byte to the response's end.",
            MetricsTable.Drain),
    ];

    /// <summary>Every method × status class; a pair never seen is left out (40 mostly empty series otherwise), but
    /// GET 2xx is always there.</summary>
    private static SlotSample[] RequestSamples() =>
    [
        .. from m in Enumerable.Range(0, MetricsTable.Methods.Length)
           from c in Enumerable.Range(0, MetricsTable.StatusClasses)
           select new SlotSample(Label("method", MetricsTable.Methods[m]) + "," + Label("status", $"{c + 1}xx"),
               MetricsTable.Requests + m * MetricsTable.StatusClasses + c, HiddenWhileZero: !(m == 0 && c == 1)),
    ];

    /// <summary>Each live worker's resident memory; a worker whose /proc entry is gone has no sample.</summary>
    private static IEnumerable<(string, long)> ResidentSamples(Scrape scrape)
    {
        foreach (var w in scrape.Workers)
            if (ResidentBytes(w.Pid) is { } rss)
                yield return (Label("pid", w.Pid.ToString(CultureInfo.InvariantCulture)), rss);
    }

    private static void AppendSample(StringBuilder o, string name, string labels, long value)
    {
        o.Append(name);
        if (labels.Length > 0) o.Append('{').Append(labels).Append('}');
        o.Append(' ').Append(value).Append('\n');
    }

    private static void AppendHistogram(StringBuilder o, string name, long[] totals, int which)
    {
        var h = MetricsTable.Histograms + which * MetricsTable.HistogramLongs;
        long cumulative = 0;
        for (int i = 0; i < MetricsTable.Buckets; i++)
        {
            cumulative += totals[h + i];
            var le = i < MetricsTable.Bounds.Length
                ? MetricsTable.Bounds[i].ToString(CultureInfo.InvariantCulture) : "+Inf";
            o.Append(name).Append("_bucket{le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
        }
        var sum = totals[h + MetricsTable.Buckets] / 1e6;
        o.Append(name).Append("_sum ").Append(sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        o.Append(name).Append("_count ").Append(cumulative).Append('\n');
    }

    private static long? ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:"))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        return null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Libc.Signal(_wake);
        _thread.Join(TimeSpan.FromSeconds(1));
        _socket.Dispose();
        Libc.Close(_wake);
    }
}
