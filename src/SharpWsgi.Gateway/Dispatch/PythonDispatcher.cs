using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Hands requests from the host's threads to a fixed pool of dedicated Python threads through a
/// bounded queue. Host threads never touch Python or wait for the GIL: they enqueue (or get a
/// refusal when the queue is full, for a 503) and await the exchange's completion. A Python thread
/// keeps the GIL while work is queued and releases it only to wait for more.
/// </summary>
public sealed class PythonDispatcher
{
    private readonly ConcurrentQueue<WsgiExchange> _queue = new();
    private readonly SemaphoreSlim _available = new(0);
    private readonly int _capacity;
    private int _queued;
    private readonly List<Thread> _threads = new();
    private readonly Action<WsgiExchange> _run;
    private readonly RequestWatchdog _watchdog;
    private readonly ILogger _log;
    private volatile bool _stopping;

    public PythonDispatcher(int threads, int capacity, Action<WsgiExchange> run, RequestWatchdog watchdog, ILogger log)
    {
        _capacity = capacity;
        _run = run;
        _watchdog = watchdog;
        _log = log;
        for (int i = 0; i < threads; i++)
            _threads.Add(PythonThread.Start($"python-{i}", Loop));
    }

    public int ThreadCount => _threads.Count;
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Queues a request; false when the queue is full (the host answers 503).</summary>
    public bool TryEnqueue(WsgiExchange exchange)
    {
        if (Interlocked.Increment(ref _queued) > _capacity)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        exchange.QueuedAt = Stopwatch.GetTimestamp();
        exchange.CaptureForLogs();
        _queue.Enqueue(exchange);
        _available.Release();
        return true;
    }

    /// <summary>The next request; waits for one with the GIL released only when none is queued.</summary>
    private WsgiExchange Take()
    {
        if (!_available.Wait(0))
        {
            using (Gil.Release()) _available.Wait();
        }
        WsgiExchange? item;
        var spin = new SpinWait();
        while (!_queue.TryDequeue(out item)) spin.SpinOnce(); // the release happens right after the enqueue
        Interlocked.Decrement(ref _queued);
        return item;
    }

    private void Loop()
    {
        var slot = _watchdog.Register();
        while (!_stopping)
        {
            var exchange = Take();
            _watchdog.Begin(slot, exchange);
            try { _run(exchange); }
            catch (Exception e) { _log.LogCritical(e, "Unhandled error on a Python thread"); }
            finally { _watchdog.End(slot); }
        }
    }

    public void Stop() => _stopping = true;
}
