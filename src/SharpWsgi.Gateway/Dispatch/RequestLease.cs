using System.Diagnostics;

namespace SharpWsgi.Gateway;

/// <summary>The request timed out and was answered by the server; the gateway must not touch its exchange
/// any more.</summary>
public sealed class RequestAbandonedException : Exception
{
    public RequestAbandonedException() : base("the request timed out and was answered by the server") { }
}

/// <summary>
/// The gateway's hold on one exchange, from queueing to <see cref="WsgiExchange.Finish"/>. The Python thread touches
/// the host's objects only between <see cref="Enter"/> and <see cref="Exit"/>. When the request times out, the
/// watchdog calls <see cref="TimeOut"/>: pending I/O is cancelled, and once no gateway call is inside the exchange
/// the host is told to answer 504 itself (on its own threads). From then on Enter throws, so a Python thread that
/// comes back late can never write into a response the host has moved on from, and Finish is called only once.
/// </summary>
public sealed class RequestLease
{
    private int _busy;
    private int _abandoned;
    private int _finished;

    public RequestLease(WsgiExchange exchange)
    {
        Exchange = exchange;
        QueuedAt = Stopwatch.GetTimestamp();
        exchange.Timings.QueuedAt = QueuedAt;
        // Captured now: a timed-out request's host objects may already belong to the next request when it is logged.
        Method = exchange.Method;
        Target = exchange.RawTarget;
    }

    public WsgiExchange Exchange { get; }
    /// <summary>When the request was queued (Stopwatch ticks), for the queue timeout.</summary>
    public long QueuedAt { get; }
    public string Method { get; }
    public string Target { get; }
    /// <summary>"GET /path", for log lines.</summary>
    public string Describe => $"{Method} {Target}";
    public bool IsAbandoned => Volatile.Read(ref _abandoned) != 0;
    public bool IsFinished => Volatile.Read(ref _finished) != 0;

    /// <summary>Begin touching the host's objects; throws once the request has timed out.</summary>
    public void Enter()
    {
        Interlocked.Increment(ref _busy);
        if (Volatile.Read(ref _abandoned) != 0)
        {
            Interlocked.Decrement(ref _busy);
            throw new RequestAbandonedException();
        }
    }

    public void Exit() => Interlocked.Decrement(ref _busy);

    /// <summary>
    /// Finishes the exchange unless it was finished already or taken back by a timeout (whose 504 finishes it, even
    /// when the Python thread gets here first); true if this call did it.
    /// </summary>
    public bool TryFinish(ExchangeResult result) => !IsAbandoned && FinishOnce(result);

    private bool FinishOnce(ExchangeResult result)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0) return false;
        Exchange.Finish(result);
        return true;
    }

    /// <summary>
    /// The request ran past the request timeout (called on the monitor thread): take the exchange back and let the
    /// host answer 504, off this thread, once the Python thread is out of the exchange.
    /// </summary>
    public void TimeOut(string reason)
    {
        if (Interlocked.Exchange(ref _abandoned, 1) != 0 || IsFinished) return;
        Exchange.CancelPendingIo();
        _ = Task.Run(async () =>
        {
            while (Volatile.Read(ref _busy) != 0)
            {
                await Task.Delay(1).ConfigureAwait(false);
                Exchange.CancelPendingIo();
            }
            FinishOnce(ExchangeResult.Plain(504, reason));
        });
    }
}
