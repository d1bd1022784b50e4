using System.Diagnostics;
using System.IO.MemoryMappedFiles;

namespace SharpWsgi.Metrics;

/// <summary>
/// Per-worker counters in one shared memory file the supervisor creates (like <see cref="AcceptBalance"/>): each
/// worker adds into its own slot with Interlocked (no locks, no allocation, no cross-worker contention), and the
/// supervisor sums the slots when /metrics is scraped. When a worker exits, the supervisor folds its slot's
/// counters and histograms into its own totals and zeroes the slot, so a dead worker's counts are kept and the
/// slot can serve the next worker. Gauges are overwritten by the worker (a few times a second) and not folded.
/// </summary>
public sealed unsafe class MetricsTable : IDisposable
{
    /// <summary>As many as AcceptBalance.Slots: a worker has the same slot in both. (A literal: this file is also
    /// compiled into the unit tests, without the rest of the server.)</summary>
    public const int Slots = 1024;
    /// <summary>Longs per slot (1 KiB): the layout below, with room to grow.</summary>
    public const int SlotLongs = 128;

    public static readonly string[] Methods = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other" };
    public const int StatusClasses = 5; // 1xx..5xx

    // Layout of a slot (indexes of longs).
    public const int Requests = 0; // Methods.Length * StatusClasses counters
    public const int RequestBytes = 40, ResponseBytes = 41, AppExceptions = 42, QueueFull = 43, QueueTimeout = 44,
        RequestTimeout = 45, LimitRefusals = 46, StaticSendfileBytes = 47;
    /// <summary>Connections dropped by the delivery watchdog, by the rule they broke.</summary>
    public const int SlowClientsSendTimeout = 48, SlowClientsMinRate = 49;
    public const int CounterEnd = 50;
    public const int BusyThreads = 50, Threads = 51, Queued = 52, OpenConnections = 53, BufferedRequestBytes = 54,
        BufferedResponseBytes = 55;
    public const int GaugeEnd = 58; // two spare gauges
    /// <summary>Histograms: each has <see cref="Buckets"/> non-cumulative bucket counts (the last is +Inf), then its
    /// sum in microseconds. They end at 58 + 4 * 17 = 126 of the slot's 128 longs.</summary>
    public const int Histograms = 58;
    public const int Duration = 0, QueueWait = 1, AppTime = 2, Drain = 3, HistogramCount = 4;

    /// <summary>Upper bounds in seconds, 0.5 ms to 30 s (+Inf after them).</summary>
    public static readonly double[] Bounds = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
        2.5, 5, 10, 30 };
    public const int Buckets = 16;
    public const int HistogramLongs = Buckets + 1;

    private static readonly long[] BoundTicks = Bounds.Select(b => (long)(b * Stopwatch.Frequency)).ToArray();
    private static readonly long TicksPerMicrosecond = Math.Max(1, Stopwatch.Frequency / 1_000_000);

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long* _base;
    private readonly long* _slot; // a worker's own slot; null on the supervisor's side

    private MetricsTable(string path, int slot)
    {
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, Size, MemoryMappedFileAccess.ReadWrite);
        _view = _file.CreateViewAccessor(0, Size);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = (long*)(p + _view.PointerOffset);
        _slot = slot >= 0 ? _base + slot * SlotLongs : null;
    }

    private const long Size = (long)Slots * SlotLongs * sizeof(long);

    /// <summary>The supervisor's side: a zeroed file (1 MiB of tmpfs, touched only by the slots in use).</summary>
    public static (MetricsTable Table, string Path) Create()
    {
        var dir = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(); // as SharedFiles.Directory
        var path = Path.Combine(dir, $"sharpwsgi-{Environment.ProcessId}.metrics");
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.ReadWrite)) fs.SetLength(Size);
        return (new MetricsTable(path, -1), path);
    }

    /// <summary>A worker's side: the table the supervisor created, and this worker's slot in it.</summary>
    public static MetricsTable Open(string path, int slot) =>
        slot is >= 0 and < Slots ? new(path, slot) : throw new ArgumentOutOfRangeException(nameof(slot));

    // The worker's hot path: one or a few atomic adds into its own cache lines.

    public void Add(int index, long value = 1) => Interlocked.Add(ref _slot[index], value);
    public void Set(int index, long value) => Volatile.Write(ref _slot[index], value);

    public static int RequestIndex(string method, int status)
    {
        var m = method switch
        {
            "GET" => 0, "HEAD" => 1, "POST" => 2, "PUT" => 3, "DELETE" => 4, "PATCH" => 5, "OPTIONS" => 6, _ => 7,
        };
        var c = Math.Clamp(status / 100, 1, 5) - 1;
        return Requests + m * StatusClasses + c;
    }

    /// <summary>Records a duration in Stopwatch ticks (ignored when negative: a stage that was not reached).</summary>
    public void Observe(int histogram, long ticks)
    {
        if (ticks < 0) return;
        var i = Array.BinarySearch(BoundTicks, ticks);
        if (i < 0) i = ~i; // the first bound above: le is inclusive
        var h = Histograms + histogram * HistogramLongs;
        Interlocked.Increment(ref _slot[h + i]);
        Interlocked.Add(ref _slot[h + Buckets], ticks / TicksPerMicrosecond);
    }

    // The supervisor's side.

    /// <summary>Adds a slot's counters and histograms (not its gauges) into totals.</summary>
    public void AddCountsTo(int slot, long[] totals)
    {
        var s = _base + slot * SlotLongs;
        for (int i = 0; i < SlotLongs; i++)
            if (i is < CounterEnd or >= GaugeEnd) totals[i] += Volatile.Read(ref s[i]);
    }

    public void AddGaugesTo(int slot, long[] totals)
    {
        var s = _base + slot * SlotLongs;
        for (int i = CounterEnd; i < GaugeEnd; i++) totals[i] += Volatile.Read(ref s[i]);
    }

    /// <summary>A worker exited: keep its counts in totals and clear the slot for the next worker.</summary>
    public void Fold(int slot, long[] totals)
    {
        AddCountsTo(slot, totals);
        var s = _base + slot * SlotLongs;
        for (int i = 0; i < SlotLongs; i++) Volatile.Write(ref s[i], 0);
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
