using System.Diagnostics;
using System.Text;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// The process's monitor: a Python thread that wakes every tick, which it can only do by taking the GIL, so its
/// heartbeat proves Python is responsive (a C call that holds the GIL forever stops it, and the supervisor then
/// replaces the process). It also enforces the request timeout (the host answers 504 and the Python thread gets
/// RequestTimeout raised asynchronously; a thread that does not come back within the grace period makes the process
/// ask to be recycled), and notices a process that makes no progress: every Python thread busy, requests waiting, and
/// none finished for the stuck timeout.
/// </summary>
public sealed class RequestWatchdog
{
    private sealed class Slot
    {
        public RequestLease? Lease;
        public long Started;
        public ulong ThreadIdent;
        public bool TimedOut;
        public long TimedOutAt;
        public bool StuckReported;
    }

    private readonly List<Slot> _slots = new();
    private readonly WsgiOptions _options;
    private readonly IGatewayLog _log;
    private readonly PyOwned _timeoutClass;
    private readonly long _timeoutTicks, _graceTicks, _noProgressTicks;
    private long _lastCompletion = Stopwatch.GetTimestamp();
    private long _lastMonitorPass;

    /// <summary>When this interpreter's GIL was last seen held (a request finished, or the monitor ran): a Stopwatch
    /// timestamp, read without the GIL.</summary>
    public long LastSignOfLife => Math.Max(Volatile.Read(ref _lastCompletion), Volatile.Read(ref _lastMonitorPass));
    private bool _noProgressReported;

    /// <summary>Called (without the GIL) after each tick in which the monitor got the GIL.</summary>
    public Action? OnHeartbeat { get; set; }
    /// <summary>Called (without the GIL) once per incident when the process should be replaced, with why.</summary>
    public Action<string>? OnStuck { get; set; }
    /// <summary>Requests waiting for a Python thread (set by the gateway).</summary>
    internal Func<int> Queued { get; set; } = () => 0;

    public RequestWatchdog(WsgiOptions options, IGatewayLog log, PyOwned timeoutClass)
    {
        _options = options;
        _log = log;
        _timeoutClass = timeoutClass;
        _timeoutTicks = (long)(options.RequestTimeout * Stopwatch.Frequency);
        _graceTicks = (long)(options.RequestTimeoutGrace * Stopwatch.Frequency);
        _noProgressTicks = (long)(options.NoProgressTimeout * Stopwatch.Frequency);
    }

    /// <summary>Registers the calling Python thread (GIL held); returns its slot.</summary>
    public int Register()
    {
        lock (_slots)
        {
            _slots.Add(new Slot { ThreadIdent = Py.CurrentThreadIdent() });
            return _slots.Count - 1;
        }
    }

    public void Begin(int slot, RequestLease lease)
    {
        Slot s;
        lock (_slots) s = _slots[slot];
        s.Started = Stopwatch.GetTimestamp();
        s.TimedOut = false;
        s.StuckReported = false;
        Volatile.Write(ref s.Lease, lease);
    }

    /// <summary>The request is over (GIL held). A timeout raised too late must not hit the thread's next
    /// request.</summary>
    public void End(int slot)
    {
        Slot s;
        lock (_slots) s = _slots[slot];
        Volatile.Write(ref s.Lease, null);
        Volatile.Write(ref _lastCompletion, Stopwatch.GetTimestamp());
        if (s.TimedOut)
        {
            Py.SetAsyncException(s.ThreadIdent, default); // clears a pending RequestTimeout
            s.TimedOut = false;
        }
    }

    /// <summary>A slot whose thread has ended (the interpreter is shutting down).</summary>
    public void Unregister(int slot)
    {
        lock (_slots) _slots[slot].ThreadIdent = 0;
    }

    private volatile bool _stopping;
    // Set to wake the loop early: a stop, or a proof of life asked for (see WaitResponsive).
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly object _proofGate = new();
    private long _proofsAsked, _proofsGiven;

    /// <summary>The main interpreter's monitor: a Python thread of its own.</summary>
    public void Start() => PythonThread.Start("python-monitor", Loop);

    /// <summary>A sub-interpreter's monitor runs on the interpreter's home thread (GIL held) until
    /// <see cref="Stop"/>.</summary>
    public void RunOnThisThread() => Loop();

    /// <summary>Ends the monitor loop at its next tick.</summary>
    public void Stop()
    {
        _stopping = true;
        _wake.Set();
        lock (_proofGate) Monitor.PulseAll(_proofGate); // nobody waits for a proof from a stopped monitor
    }

    /// <summary>
    /// Blocks (no GIL needed) until the monitor has held this interpreter's GIL at some moment after the call began:
    /// proof that a request handed to Python now would run. False when that takes longer than the timeout or the
    /// monitor stops. Concurrent callers share one wake-up of the monitor.
    /// </summary>
    public bool WaitResponsive(TimeSpan timeout)
    {
        long ticket;
        lock (_proofGate) ticket = ++_proofsAsked;
        _wake.Set();
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        lock (_proofGate)
        {
            while (_proofsGiven < ticket)
            {
                var left = deadline - Stopwatch.GetTimestamp();
                if (_stopping || left <= 0) return false;
                Monitor.Wait(_proofGate, TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
            }
        }
        return true;
    }

    private void Loop()
    {
        var tick = _options.RequestTimeout > 0
            ? TimeSpan.FromMilliseconds(Math.Clamp(_options.RequestTimeout * 1000 / 10, 20, 250))
            : TimeSpan.FromMilliseconds(Math.Min(250, _options.HeartbeatInterval.TotalMilliseconds));
        long lastBeat = 0, answering = 0;
        var beatTicks = (long)(_options.HeartbeatInterval.TotalSeconds * Stopwatch.Frequency);
        while (!_stopping)
        {
            // Here the GIL is held: reaching this line is the proof of life, for the beat and for every proof asked
            // before the wait below ended.
            Volatile.Write(ref _lastMonitorPass, Stopwatch.GetTimestamp());
            if (answering > Volatile.Read(ref _proofsGiven))
                lock (_proofGate)
                {
                    _proofsGiven = Math.Max(_proofsGiven, answering);
                    Monitor.PulseAll(_proofGate);
                }
            var stuck = _timeoutTicks > 0 ? CheckTimeouts() : null;
            stuck ??= _noProgressTicks > 0 ? CheckProgress() : null;
            var now = Stopwatch.GetTimestamp();
            var beat = now - lastBeat >= beatTicks;
            if (beat) lastBeat = now;
            using (Gil.Release())
            {
                if (beat) OnHeartbeat?.Invoke();
                if (stuck != null) OnStuck?.Invoke(stuck);
                _wake.Wait(tick);
                // Reset before reading: a proof asked after this read sets the event again for the next round.
                _wake.Reset();
                answering = Volatile.Read(ref _proofsAsked);
            }
        }
    }

    private string? CheckTimeouts()
    {
        string? stuck = null;
        var now = Stopwatch.GetTimestamp();
        lock (_slots)
        {
            foreach (var s in _slots)
            {
                var lease = Volatile.Read(ref s.Lease);
                if (lease == null) continue;
                if (!s.TimedOut && now - s.Started > _timeoutTicks)
                {
                    s.TimedOut = true;
                    s.TimedOutAt = now;
                    _log.Error($"Request timed out after {_options.RequestTimeout}s: {lease.Describe}; " +
                        "answering 504 and interrupting its Python thread");
                    Py.SetAsyncException(s.ThreadIdent, _timeoutClass);
                    lease.TimeOut(ServerAnswer.AppTimedOut);
                }
                else if (s.TimedOut && !s.StuckReported && now - s.TimedOutAt > _graceTicks)
                {
                    s.StuckReported = true;
                    stuck = $"a Python thread did not return within {_options.RequestTimeoutGrace}s of the " +
                        $"request timeout ({lease.Describe})";
                }
            }
        }
        return stuck;
    }

    /// <summary>Every thread busy, requests waiting, nothing finished for the stuck timeout: the process is
    /// stuck.</summary>
    private string? CheckProgress()
    {
        var now = Stopwatch.GetTimestamp();
        var held = new StringBuilder();
        // Progress is a request finishing; the window opens when the last thread became busy.
        var since = Volatile.Read(ref _lastCompletion);
        lock (_slots)
        {
            foreach (var s in _slots)
            {
                var lease = Volatile.Read(ref s.Lease);
                if (lease == null) { _noProgressReported = false; return null; } // a thread is free
                since = Math.Max(since, s.Started);
                held.Append($"\n  {lease.Describe} running for {(now - s.Started) / (double)Stopwatch.Frequency:0.0}s");
            }
        }
        if (now - since <= _noProgressTicks || Queued() == 0)
        {
            _noProgressReported = false;
            return null;
        }
        if (_noProgressReported) return null;
        _noProgressReported = true;
        var seconds = _noProgressTicks / (double)Stopwatch.Frequency;
        _log.Critical($"No request finished for {seconds:0.#}s while every Python thread is busy and {Queued()} " +
            $"requests wait; recycling this worker. The threads hold:{held}");
        return $"no progress for {seconds:0.#}s with every Python thread busy";
    }
}
