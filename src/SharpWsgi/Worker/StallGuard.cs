using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Worker;

/// <summary>
/// Keeps a worker whose Python is unresponsive from taking new connections. The heartbeat comes from the
/// gateway's monitor thread, which needs the GIL: a C call that holds the GIL stops it. This check needs no
/// Python (a .NET timer): once the last beat is older than <see cref="Threshold"/> the worker pauses
/// accepting (the other workers take the shared sockets' connections, and it shows -1 in the balance file so
/// they do not defer to it); the first beat after that resumes it. Connections it had already accepted wait
/// for its Python, as before. With --reuse-port the kernel keeps putting connections in this worker's own
/// socket queue, where they wait until it recovers or is killed: a paused worker cannot hand them over.
/// </summary>
public sealed class StallGuard : IDisposable
{
    private readonly Action _pause, _resume;
    private readonly ILogger _log;
    private readonly long _thresholdTicks;
    private readonly object _gate = new();
    private readonly Timer _timer;
    private long _lastBeat;
    private bool _paused;

    /// <summary>Two seconds, or two heartbeat intervals when that is longer: late enough that a busy but
    /// healthy worker (its monitor thread waits its turn for the GIL) is not paused.</summary>
    public static TimeSpan ThresholdFor(TimeSpan heartbeatInterval) =>
        TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(2).Ticks, 2 * heartbeatInterval.Ticks));

    public TimeSpan Threshold { get; }

    public StallGuard(TimeSpan heartbeatInterval, Action pause, Action resume, ILogger log)
    {
        Threshold = ThresholdFor(heartbeatInterval);
        _thresholdTicks = (long)(Threshold.TotalSeconds * Stopwatch.Frequency);
        _pause = pause;
        _resume = resume;
        _log = log;
        _timer = new Timer(static o => ((StallGuard)o!).Check(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Starts watching; the time of the call counts as the first beat.</summary>
    public void Start()
    {
        Beat();
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(50).Ticks, Threshold.Ticks / 10));
        _timer.Change(period, period);
    }

    /// <summary>A heartbeat (the monitor thread had the GIL); resumes accepting at once if paused.</summary>
    public void Beat()
    {
        Volatile.Write(ref _lastBeat, Stopwatch.GetTimestamp());
        if (Volatile.Read(ref _paused)) Check();
    }

    private void Check()
    {
        lock (_gate)
        {
            var silent = Stopwatch.GetTimestamp() - Volatile.Read(ref _lastBeat);
            var late = silent > _thresholdTicks;
            if (late == _paused) return;
            _paused = late;
            var seconds = (double)silent / Stopwatch.Frequency;
            if (late)
            {
                _log.LogWarning("Worker {Pid} stopped accepting connections: no heartbeat for {Seconds:F1}s " +
                                "(its Python is not responsive)", Environment.ProcessId, seconds);
                _pause();
            }
            else
            {
                _resume();
                _log.LogInformation("Worker {Pid} accepting connections again: its heartbeat is back",
                    Environment.ProcessId);
            }
        }
    }

    public void Dispose() => _timer.Dispose();
}
