namespace SharpWsgi.Hosting;

/// <summary>
/// Process-wide state the HTTP side shares with the worker's control loop: whether the process is
/// draining (every response then carries Connection: close), and the request count for --max-requests.
/// </summary>
public sealed class WorkerLifecycle
{
    private long _requests;
    private readonly long _maxRequests;
    private int _limitReported;
    private volatile bool _draining;

    /// <param name="maxRequests">0 for no limit; otherwise the count (jitter already added) after which to
    /// recycle.</param>
    public WorkerLifecycle(long maxRequests) => _maxRequests = maxRequests;

    public bool Draining => _draining;
    public void StartDraining() => _draining = true;
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Raised once, on a Kestrel thread, when the request count reaches --max-requests.</summary>
    public event Action? MaxRequestsReached;

    public void CountRequest()
    {
        var n = Interlocked.Increment(ref _requests);
        if (_maxRequests > 0 && n >= _maxRequests && Interlocked.Exchange(ref _limitReported, 1) == 0)
            MaxRequestsReached?.Invoke();
    }
}
