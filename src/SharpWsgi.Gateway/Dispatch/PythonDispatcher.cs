using System.Collections.Concurrent;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Hands requests from the host's threads to a fixed pool of dedicated Python threads through a bounded FIFO queue.
/// Host threads never touch Python or wait for the GIL: they enqueue (or are refused when the queue is full, for a
/// 503) and await the exchange's completion.
/// <para>GIL-aware: a Python thread takes the next request only while it holds the GIL, so the thread that is running
/// Python keeps serving the queue in order, and a parked thread that is woken for new work first waits for the GIL;
/// it gets it when the running thread blocks (I/O, sleep, waiting for the client: anywhere the GIL is released)
/// rather than by preempting it. The interpreter's switch interval (<see cref="WsgiOptions.SwitchInterval"/>) bounds
/// how long a woken thread waits before it forces a switch, so CPU-bound requests are not interleaved every 5 ms
/// (Python's default), while I/O-bound apps still run up to one request per thread at once. At most one parked
/// thread is woken to stand by for the GIL at a time: when it gets the GIL and takes work, the next request wakes
/// another.</para>
/// </summary>
public sealed class PythonDispatcher
{
    private readonly ConcurrentQueue<RequestLease> _queue = new();
    private readonly Wakeups _wake = new();
    private readonly int _capacity;
    private int _queued, _parked, _standby, _busy;
    private readonly Action<RequestLease> _run;
    private readonly RequestWatchdog _watchdog;
    private readonly IGatewayLog _log;
    private volatile bool _stopping;
    private int _running;
    private readonly ManualResetEventSlim _stopped = new(false);

    /// <summary>The pool of one interpreter (null: the main one): its threads run that interpreter's
    /// Python.</summary>
    public PythonDispatcher(int threads, int capacity, Action<RequestLease> run, RequestWatchdog watchdog,
        IGatewayLog log, PythonInterpreter? interpreter)
    {
        _capacity = capacity;
        _run = run;
        _watchdog = watchdog;
        _log = log;
        Threads = threads;
        _running = threads;
        for (int i = 0; i < threads; i++)
        {
            if (interpreter == null || interpreter.IsMain) PythonThread.Start($"python-{i}", Loop);
            else PythonThread.Start($"python-{interpreter.Id}-{i}", interpreter, Loop);
        }
    }

    /// <summary>Requests queued or running: how loaded this pool is (the gateway picks the least loaded).</summary>
    public int Load => Volatile.Read(ref _queued) + Volatile.Read(ref _busy);

    /// <summary>Ends the threads once the queue is empty (their running requests finish first); true when all have
    /// ended within the wait.</summary>
    public bool Stop(TimeSpan wait)
    {
        _stopping = true;
        _wake.Release(Threads);
        return _stopped.Wait(wait);
    }

    public int Queued => Volatile.Read(ref _queued);
    /// <summary>Python threads running a request now (a metrics gauge).</summary>
    public int Busy => Volatile.Read(ref _busy);
    public int Threads { get; private set; }

    /// <summary>Queues a request; false when the queue is full (the host answers 503).</summary>
    public bool TryEnqueue(WsgiExchange exchange)
    {
        if (Interlocked.Increment(ref _queued) > _capacity)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        _queue.Enqueue(new RequestLease(exchange));
        WakeStandby();
        return true;
    }

    /// <summary>
    /// Wakes a parked thread to stand by for the GIL, unless one already does. One standby is enough: it takes queued
    /// work when the running thread blocks, and then wakes the next if work is still queued; more standbys would only
    /// take turns forcing switches.
    /// </summary>
    private void WakeStandby()
    {
        if (Volatile.Read(ref _standby) > 0) return;
        while (true)
        {
            var parked = Volatile.Read(ref _parked);
            if (parked == 0) return;
            if (Interlocked.CompareExchange(ref _parked, parked - 1, parked) == parked)
            {
                Interlocked.Increment(ref _standby);
                _wake.Release();
                return;
            }
        }
    }

    /// <summary>Takes every queued request back (no GIL needed: a Python thread takes one only with the GIL, so
    /// these never reached Python) and finishes each as <see cref="ExchangeResult.Withdrawn"/>; returns how
    /// many.</summary>
    public int WithdrawQueued()
    {
        var count = 0;
        while (TryTake(out var lease))
            if (lease.TryFinish(ExchangeResult.Withdrawn)) count++;
        return count;
    }

    private bool TryTake(out RequestLease lease)
    {
        if (!_queue.TryDequeue(out lease!)) return false;
        Interlocked.Decrement(ref _queued);
        return true;
    }

    /// <summary>The next request, taken with the GIL held; parks with the GIL released only when none is
    /// queued.</summary>
    private RequestLease? Take()
    {
        while (true)
        {
            if (TryTake(out var lease)) return lease;
            if (_stopping) return null;
            Interlocked.Increment(ref _parked);
            if (TryTake(out lease))
            {
                // Found one after announcing: withdraw, unless a waker already counted on us
                // (a spare wake is harmless).
                var parked = Volatile.Read(ref _parked);
                if (parked > 0) Interlocked.CompareExchange(ref _parked, parked - 1, parked);
                return lease;
            }
            using (Gil.Release()) _wake.Wait();
            Interlocked.Decrement(ref _standby); // holds the GIL now: no longer a standby
            if (_stopping && _queue.IsEmpty) return null;
            if (TryTake(out lease))
            {
                if (!_queue.IsEmpty) WakeStandby(); // a burst: the next thread stands by in turn
                return lease;
            }
        }
    }

    private void Loop()
    {
        var slot = _watchdog.Register();
        while (true)
        {
            var lease = Take();
            if (lease == null) break;
            _watchdog.Begin(slot, lease);
            Interlocked.Increment(ref _busy);
            try { _run(lease); }
            catch (Exception e) { _log.Critical($"Unhandled error on a Python thread: {e}"); }
            finally
            {
                Interlocked.Decrement(ref _busy);
                _watchdog.End(slot);
            }
        }
        _watchdog.Unregister(slot);
        DecRefQueue.Drain();
        if (Interlocked.Decrement(ref _running) == 0) _stopped.Set();
    }
}

/// <summary>
/// The parked Python threads' wake-ups: a counting semaphore that sleeps at once. SemaphoreSlim spins first
/// (Thread.Yield, i.e. sched_yield, then Sleep(0)), which on a busy 2-core machine takes the CPU from the threads
/// that have work: measured as 5% of a hello worker's samples.
/// </summary>
internal sealed class Wakeups
{
    private readonly object _gate = new();
    private int _permits;

    public void Release(int count = 1)
    {
        lock (_gate)
        {
            _permits += count;
            if (count == 1) Monitor.Pulse(_gate);
            else Monitor.PulseAll(_gate);
        }
    }

    public void Wait()
    {
        lock (_gate)
        {
            while (_permits == 0) Monitor.Wait(_gate);
            _permits--;
        }
    }
}
