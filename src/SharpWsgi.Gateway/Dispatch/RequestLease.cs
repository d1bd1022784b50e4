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
/// watchdog calls <see cref="TimeOut"/>: pending I/O is cancelled, and when no gateway call is inside the exchange
/// (at once, or when the last one leaves) the host is told to answer 504 itself (on its own threads). From then on
/// Enter throws, so a Python thread that comes back late can never write into a response the host has moved on from,
/// and Finish is called only once.
/// </summary>
public sealed class RequestLease
{
    private int _busy;
    private int _abandoned;
    private int _finished;
    private ServerAnswer? _timeoutAnswer;

    public RequestLease(WsgiExchange exchange)
    {
        Exchange = exchange;
        QueuedAt = Stopwatch.GetTimestamp();
        exchange.MarkQueued(QueuedAt);
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
            Exit();
            throw new RequestAbandonedException();
        }
    }

    /// <summary>Done touching the host's objects; the last one out of a timed-out exchange hands it to the host.
    /// </summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _busy) == 0 && Volatile.Read(ref _abandoned) != 0) FinishTimedOut();
    }

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
    public void TimeOut(ServerAnswer answer)
    {
        // Published before the flag: whoever sees the flag and leaves last finishes with this answer.
        if (Interlocked.CompareExchange(ref _timeoutAnswer, answer, null) != null) return;
        if (Interlocked.Exchange(ref _abandoned, 1) != 0 || IsFinished) return;
        // A read or flush pending now returns at once; one not yet started returns at once too (a pipe keeps the
        // cancellation for its next call), and the next Enter throws.
        Exchange.CancelPendingIo();
        if (Volatile.Read(ref _busy) == 0) FinishTimedOut();
    }

    /// <summary>Both the monitor and a leaving Python thread may get here; FinishOnce lets one through. The host
    /// writes the answer on its own thread (the completion runs its continuations asynchronously).</summary>
    private void FinishTimedOut() => FinishOnce(ExchangeResult.Plain(Volatile.Read(ref _timeoutAnswer)!));
}
