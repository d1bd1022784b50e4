using System.IO.Pipelines;
using Microsoft.Extensions.Primitives;

namespace SharpWsgi.Gateway;

/// <summary>How the hosting layer should finish the connection after the gateway is done with a request.</summary>
public enum ExchangeOutcome
{
    /// <summary>The response is complete; keep-alive as HTTP allows.</summary>
    Completed,
    /// <summary>The response is complete but the connection must be closed after it (Content-Length overrun).</summary>
    CompletedThenClose,
    /// <summary>The response cannot be completed (error after headers, short body, client gone): abort the connection.</summary>
    Aborted,
}

/// <summary>
/// One HTTP request/response as the gateway sees it. The hosting layer (Kestrel) implements it; the
/// gateway reads the request snapshot, the body pipe and writes the response pipe on a Python thread,
/// never concurrently with the host. The gateway knows nothing of sockets.
/// </summary>
public abstract class WsgiExchange
{
    public abstract string Method { get; }
    /// <summary>The request target exactly as the client sent it (origin-form, absolute-form or "*").</summary>
    public abstract string RawTarget { get; }
    /// <summary>"HTTP/1.0", "HTTP/1.1" or "HTTP/2".</summary>
    public abstract string Protocol { get; }
    public abstract string Scheme { get; }
    public abstract string RemoteAddress { get; }
    public abstract int RemotePort { get; }
    public abstract string LocalAddress { get; }
    public abstract int LocalPort { get; }
    public abstract IEnumerable<KeyValuePair<string, StringValues>> RequestHeaders { get; }
    public abstract PipeReader RequestBody { get; }

    /// <summary>Sets status and headers; called once, before the first body byte.</summary>
    public abstract void SetResponseHead(int status, string? reasonPhrase, IReadOnlyList<KeyValuePair<string, string>> headers);
    public abstract PipeWriter ResponseBody { get; }
    public abstract bool IsHeadRequest { get; }

    /// <summary>Called exactly once when the gateway is done (on the Python thread).</summary>
    public abstract void Finish(ExchangeOutcome outcome);

    /// <summary>Set by the gateway: time the request was queued (Stopwatch ticks), for queue timeouts.</summary>
    public long QueuedAt { get; set; }

    /// <summary>Method and target captured when the request was queued, for log lines written after the host
    /// may have moved on (a timed-out request's features can already belong to the next request).</summary>
    public string LogMethod { get; private set; } = "";
    public string LogTarget { get; private set; } = "";

    internal void CaptureForLogs()
    {
        LogMethod = Method;
        LogTarget = RawTarget;
    }

    // Ownership: the gateway touches the host's request/response only between Enter and Exit. When a request
    // times out the host takes the exchange back (Abandon) and answers it itself; from then on Enter throws,
    // so a Python thread that comes back late can never write into a response Kestrel has moved on from.
    private int _busy;
    private int _abandoned;

    public bool IsAbandoned => Volatile.Read(ref _abandoned) != 0;

    /// <summary>Gateway side: begin touching the host's objects; throws once the host has taken the exchange back.</summary>
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
    /// Host side: takes the exchange back from the gateway. Pending body reads and flushes are cancelled so a
    /// Python thread waiting on the client lets go; completes once no gateway call is inside the exchange.
    /// </summary>
    public async Task AbandonAsync()
    {
        Interlocked.Exchange(ref _abandoned, 1);
        CancelPendingIo();
        while (Volatile.Read(ref _busy) != 0)
        {
            await Task.Delay(1).ConfigureAwait(false);
            CancelPendingIo();
        }
    }

    /// <summary>Makes a pending body read or response flush return at once.</summary>
    protected abstract void CancelPendingIo();

    /// <summary>
    /// Called by the gateway's watchdog when the request ran past the request timeout: the host answers
    /// 504 (or aborts if the response had started) without waiting for the Python thread.
    /// </summary>
    public abstract void OnTimedOut();
}

/// <summary>The host took the exchange back (request timeout); the gateway must not touch it any more.</summary>
public sealed class RequestAbandonedException : Exception
{
    public RequestAbandonedException() : base("the request timed out and was answered by the server") { }
}
