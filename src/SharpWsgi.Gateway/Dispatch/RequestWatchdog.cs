using System.Diagnostics;
using Microsoft.Extensions.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// The process's monitor: a Python thread that wakes every tick, which it can only do by taking the GIL,
/// so its heartbeat proves Python is responsive (a C call that holds the GIL forever stops it, and the
/// supervisor then replaces the process). It also enforces the request timeout: the client gets 504 from
/// the host and the stuck Python thread gets a RequestTimeout exception raised asynchronously; a thread
/// that does not come back within the grace period makes the process ask to be recycled.
/// </summary>
public sealed class RequestWatchdog
{
    private sealed class Slot
    {
        public WsgiExchange? Exchange;
        public long Started;
        public ulong ThreadIdent;
        public bool TimedOut;
        public long TimedOutAt;
        public bool StuckReported;
    }

    private readonly List<Slot> _slots = new();
    private readonly WsgiOptions _options;
    private readonly ILogger _log;
    private readonly PyOwned _timeoutClass;
    private readonly long _timeoutTicks, _graceTicks;

    /// <summary>Called (without the GIL) after each tick in which the monitor got the GIL.</summary>
    public Action? OnHeartbeat { get; set; }
    /// <summary>Called (without the GIL) once when a timed-out thread has not come back within the grace period.</summary>
    public Action<string>? OnStuck { get; set; }

    public RequestWatchdog(WsgiOptions options, ILogger log, PyOwned timeoutClass)
    {
        _options = options;
        _log = log;
        _timeoutClass = timeoutClass;
        _timeoutTicks = (long)(options.RequestTimeout * Stopwatch.Frequency);
        _graceTicks = (long)(options.RequestTimeoutGrace * Stopwatch.Frequency);
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

    public void Begin(int slot, WsgiExchange exchange)
    {
        var s = _slots[slot];
        s.Started = Stopwatch.GetTimestamp();
        s.TimedOut = false;
        s.StuckReported = false;
        Volatile.Write(ref s.Exchange, exchange);
    }

    /// <summary>The request is over (GIL held). A timeout raised too late must not hit the thread's next request.</summary>
    public void End(int slot)
    {
        var s = _slots[slot];
        Volatile.Write(ref s.Exchange, null);
        if (s.TimedOut)
        {
            Py.SetAsyncException(s.ThreadIdent, default); // clears a pending RequestTimeout
            s.TimedOut = false;
        }
    }

    public void Start() => PythonThread.Start("python-monitor", Loop);

    private void Loop()
    {
        var tick = _options.RequestTimeout > 0
            ? TimeSpan.FromMilliseconds(Math.Clamp(_options.RequestTimeout * 1000 / 10, 20, 250))
            : TimeSpan.FromMilliseconds(Math.Min(250, _options.HeartbeatInterval.TotalMilliseconds));
        long lastBeat = 0;
        var beatTicks = (long)(_options.HeartbeatInterval.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            string? stuck = null;
            bool beat;
            // Here the GIL is held: reaching this line is the proof of life.
            if (_timeoutTicks > 0) stuck = CheckTimeouts();
            var now = Stopwatch.GetTimestamp();
            beat = now - lastBeat >= beatTicks;
            if (beat) lastBeat = now;
            using (Gil.Release())
            {
                if (beat) OnHeartbeat?.Invoke();
                if (stuck != null) OnStuck?.Invoke(stuck);
                Thread.Sleep(tick);
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
                var exchange = Volatile.Read(ref s.Exchange);
                if (exchange == null) continue;
                if (!s.TimedOut && now - s.Started > _timeoutTicks)
                {
                    s.TimedOut = true;
                    s.TimedOutAt = now;
                    _log.LogError("Request timed out after {Seconds}s: {Method} {Target}; answering 504 and interrupting its Python thread",
                        _options.RequestTimeout, exchange.LogMethod, exchange.LogTarget);
                    Py.SetAsyncException(s.ThreadIdent, _timeoutClass);
                    exchange.OnTimedOut();
                }
                else if (s.TimedOut && !s.StuckReported && now - s.TimedOutAt > _graceTicks)
                {
                    s.StuckReported = true;
                    stuck = $"a Python thread did not return within {_options.RequestTimeoutGrace}s of the request timeout ({exchange.LogMethod} {exchange.LogTarget})";
                }
            }
        }
        return stuck;
    }
}
