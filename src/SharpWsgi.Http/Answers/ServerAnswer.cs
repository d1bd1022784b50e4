namespace SharpWsgi.Http;

/// <summary>Why the server answered a request itself; the metrics count by it.</summary>
public enum AnswerCause
{
    /// <summary>Refused before the app ran: a limit, a malformed head or body (the stream may be out of step).
    /// </summary>
    Refused,
    /// <summary>The app was reading the body when the client's error showed (malformed, too slow, too large).</summary>
    BadBody,
    /// <summary>The queue was full.</summary>
    QueueFull,
    /// <summary>The request waited longer than --queue-timeout for a Python thread.</summary>
    QueueTimeout,
    /// <summary>The app ran past --request-timeout.</summary>
    RequestTimeout,
    /// <summary>The app raised before its response started.</summary>
    AppError,
    /// <summary>This worker's Python stopped responding and no sibling could take the request.</summary>
    WorkerStalled,
    /// <summary>A file answer that is not the file (404, 416, a read error): --static, an --internal location
    /// asked for from outside, or a file the app named with X-Accel-Redirect or X-Sendfile.</summary>
    StaticFile,
}

/// <summary>
/// One of the server's own answers: the status, why in one short line (the body says "STATUS PHRASE: reason"),
/// whether the connection closes after it, and Retry-After. Every plain answer, whichever room decides it, is made
/// from the table below, so its words and its connection rule live here; the host's one writer sends it.
/// </summary>
public sealed record ServerAnswer(int Status, string Reason, AnswerCause Cause, bool Close = false, int RetryAfter = 0)
{
    // ---- the table ------------------------------------------------------------------------------------------

    public static readonly ServerAnswer ThreadsBusy =
        new(503, "all Python threads are busy", AnswerCause.QueueFull, RetryAfter: 1);

    public static readonly ServerAnswer QueueTimedOut =
        new(503, "the request waited too long for a Python thread", AnswerCause.QueueTimeout);

    public static readonly ServerAnswer AppTimedOut =
        new(504, "the application did not answer in time", AnswerCause.RequestTimeout);

    /// <summary>The traceback is in the error log; the client learns nothing of the app's internals.</summary>
    public static readonly ServerAnswer AppFailed = new(500, "Internal Server Error", AnswerCause.AppError);

    /// <summary>The client may retry at once: another worker (or this one, recovered) takes the new connection.
    /// </summary>
    public static readonly ServerAnswer WorkerNotResponding = new(503,
        "this worker's Python is not responding; try again", AnswerCause.WorkerStalled, Close: true, RetryAfter: 1);

    public static readonly ServerAnswer NoStaticFile = new(404, "no such static file", AnswerCause.StaticFile);

    /// <summary>No file for an X-Accel-Redirect or X-Sendfile, or an --internal location asked for from outside.
    /// The words say no more than that: why is in the error log, not for the client.</summary>
    public static readonly ServerAnswer NoSuchFile = new(404, "no such file", AnswerCause.StaticFile);

    public static readonly ServerAnswer StaticFileUnreadable =
        new(500, "the static file cannot be read", AnswerCause.StaticFile);

    public static ServerAnswer RangeOutsideFile(long length) =>
        new(416, $"the range is outside the file's {length} bytes", AnswerCause.StaticFile);

    /// <summary>A request refused before the app ran: the rest of its bytes may not be in step, so the connection
    /// closes after the answer.</summary>
    public static ServerAnswer Refusal(int status, string reason) => new(status, reason, AnswerCause.Refused, true);

    public static ServerAnswer BodyOverLimit(long limit) => Refusal(413, limit > 0
        ? $"request body exceeds --limit-request-body {limit}"
        : "the request body is larger than the server accepts");

    public static ServerAnswer BodyOverLimit(long limit, long declared) =>
        Refusal(413, $"request body exceeds --limit-request-body {limit} (Content-Length: {declared})");

    public static readonly ServerAnswer SlowUpload =
        Refusal(408, "the request body arrived more slowly than --min-upload-rate allows");

    public static ServerAnswer MalformedBody(string detail) => Refusal(400, $"malformed request body: {detail}");

    /// <summary>The same client error, found while the app was reading the body rather than before it ran.</summary>
    public ServerAnswer WhileAppRead() => this with { Cause = AnswerCause.BadBody };
}
