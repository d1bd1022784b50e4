using System.Diagnostics;
using System.IO.Pipelines;

namespace SharpWsgi.Gateway;

/// <summary>How the host must finish a request once the gateway is done with it.</summary>
public enum ExchangeOutcome
{
    /// <summary>The response is complete; keep-alive as HTTP allows.</summary>
    Completed,
    /// <summary>The response is complete but the connection must be closed after it (Content-Length overrun).</summary>
    CompletedThenClose,
    /// <summary>The response cannot be completed (error after headers, short body, client gone): abort the
    /// connection.</summary>
    Aborted,
    /// <summary>No response was sent: the host sends <see cref="ExchangeResult.Answer"/>, one of the server's own.
    /// </summary>
    PlainAnswer,
    /// <summary>Taken back from the queue before any Python saw it (this process's Python is not responsive): the
    /// host may send the request to another process, or answer it itself.</summary>
    Withdrawn,
}

/// <summary>The gateway's last word on one request, given to <see cref="WsgiExchange.Finish"/> exactly once.</summary>
public readonly record struct ExchangeResult(ExchangeOutcome Outcome, ServerAnswer? Answer = null)
{
    public static readonly ExchangeResult Completed = new(ExchangeOutcome.Completed);
    public static readonly ExchangeResult CompletedThenClose = new(ExchangeOutcome.CompletedThenClose);
    public static readonly ExchangeResult Aborted = new(ExchangeOutcome.Aborted);
    public static readonly ExchangeResult Withdrawn = new(ExchangeOutcome.Withdrawn);

    /// <summary>One of the server's own answers (the table is <see cref="ServerAnswer"/>).</summary>
    public static ExchangeResult Plain(ServerAnswer answer) => new(ExchangeOutcome.PlainAnswer, answer);
}

/// <summary>
/// The port between the gateway and its host: one request as the gateway sees it. The host (Kestrel in the server, a
/// fake in the unit tests) implements it; the gateway uses it on a Python thread and never concurrently with the host
/// (see <see cref="RequestLease"/>). Nothing here knows of sockets or ASP.NET Core.
/// <list type="bullet">
/// <item>the request snapshot: method, target, protocol, addresses, headers;</item>
/// <item>the body source: a pipe whose errors are <see cref="RequestBodyException"/>;</item>
/// <item>the response sink: status, headers, and the body pipe;</item>
/// <item>completion: <see cref="Finish"/>, called once, from any thread.</item>
/// </list>
/// </summary>
public abstract class WsgiExchange
{
    private ExchangeTimings _timings;
    private long _bodyBytes;

    /// <summary>When the request was queued, taken by a Python thread and done with the app, as the gateway recorded
    /// it; for the access log and metrics (read-only to the host).</summary>
    public ref readonly ExchangeTimings Timings => ref _timings;

    internal void MarkQueued(long at) => _timings.QueuedAt = at;
    internal void MarkStarted() => _timings.StartedAt = Stopwatch.GetTimestamp();
    internal void MarkAppDone() => _timings.AppDoneAt = Stopwatch.GetTimestamp();
    internal void MarkAppRaised() => _timings.AppRaised = true;

    /// <summary>Response body bytes written, the one count for the log and the metrics: the app's (added by the
    /// gateway when it is done) and the host's own (plain answers, static files).</summary>
    public long BodyBytes => _bodyBytes;
    public void CountBodyBytes(long count) => _bodyBytes += count;

    /// <summary>The request's ID (X-Request-ID) when the host assigns one; the error log tags the app's lines with
    /// it.</summary>
    public virtual string? RequestId => null;

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
    /// <summary>Header names as sent; several values of one name already joined (", ", or "; " for Cookie).</summary>
    public abstract IEnumerable<KeyValuePair<string, string>> RequestHeaders { get; }

    /// <summary>Further environ keys the host knows of the connection (HTTPS, SSL_*, the proxy's address), set
    /// after the headers; null when there are none.</summary>
    public virtual IReadOnlyList<KeyValuePair<string, string>>? ServerVariables => null;

    /// <summary>The request body. A malformed or too slow body surfaces as
    /// <see cref="RequestBodyException"/>.</summary>
    public abstract PipeReader RequestBody { get; }

    /// <summary>Status and reason phrase (null: the standard one) of the response; may be set again until it
    /// starts.</summary>
    public abstract void SetStatus(int status, string? reasonPhrase);
    /// <summary>Drops the headers set so far (start_response called again with exc_info).</summary>
    public abstract void ClearResponseHeaders();
    /// <summary>Adds one response header (a repeated name adds another value).</summary>
    public abstract void AddResponseHeader(string name, string value);
    /// <summary>Where the app's body goes; read again after <see cref="CommitHead"/>, which may change it (a host
    /// that compresses hands out its own pipe from then on).</summary>
    public abstract PipeWriter ResponseBody { get; }
    /// <summary>The head is complete (status, the app's headers, the length rule's): the host adds what it says on
    /// every response (its policy), before the head goes out with the first body bytes or at the end. The host may
    /// answer that it will not send the app's body (it sends something else in its place, such as a file the app
    /// named): the gateway then drops the body, as for HEAD, and checks no length against it.</summary>
    public virtual BodyDisposition CommitHead(in ResponseHead head) => BodyDisposition.Send;

    /// <summary>Makes a pending body read or response flush return at once (the request timed out).</summary>
    public abstract void CancelPendingIo();
    /// <summary>Resets the connection now (a client too slow to take a live stream).</summary>
    public abstract void AbortConnection();

    /// <summary>The gateway is done: called exactly once, on a Python thread or on the thread that drained a
    /// spool.</summary>
    public abstract void Finish(ExchangeResult result);
}

/// <summary>What the gateway knows of a head it commits, so the host need not parse it again.</summary>
/// <param name="Status">The status code.</param>
/// <param name="ContentLength">The Content-Length the head says (the app's, or the one the gateway added for a body
/// of known size); -1 when the body's length is unknown (it is chunked, or ends with the stream).</param>
/// <param name="BodyAllowed">Whether the response may carry content (not for HEAD, 1xx, 204, 205, 304).</param>
/// <param name="LiveStream">text/event-stream or X-Accel-Buffering: no: each chunk must reach the client at once.
/// </param>
public readonly record struct ResponseHead(int Status, long ContentLength, bool BodyAllowed, bool LiveStream);

/// <summary>What the host does with the app's body once the head is committed.</summary>
public enum BodyDisposition
{
    /// <summary>The body goes to the client through <see cref="WsgiExchange.ResponseBody"/>.</summary>
    Send,
    /// <summary>The host sends something else in its place: the gateway drops the body (it still iterates and
    /// closes it, as PEP 3333 wants) and finishes the exchange as usual.</summary>
    Discard,
}

/// <summary>Stopwatch timestamps of one request's way through the gateway (0: not reached).</summary>
public struct ExchangeTimings
{
    public long QueuedAt { get; internal set; }
    public long StartedAt { get; internal set; }
    public long AppDoneAt { get; internal set; }
    /// <summary>The app raised (500 before the headers, an aborted response after them); for the metrics.</summary>
    public bool AppRaised { get; internal set; }
}

/// <summary>The request a Python thread is running now, for log lines written on that thread.</summary>
public static class RequestScope
{
    [ThreadStatic] private static string? _requestId;
    public static string? CurrentRequestId { get => _requestId; internal set => _requestId = value; }
}

/// <summary>
/// The request body could not be read because of the client: malformed framing (400), too slow (408), too large
/// (413). The host throws it from <see cref="WsgiExchange.RequestBody"/>; the app sees an OSError.
/// </summary>
public sealed class RequestBodyException : IOException
{
    /// <summary>What the server answers for it (a refusal from <see cref="ServerAnswer"/>'s table).</summary>
    public ServerAnswer Answer { get; }
    public int Status => Answer.Status;
    public RequestBodyException(ServerAnswer answer) : base(answer.Reason) => Answer = answer;
}
