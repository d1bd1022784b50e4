using System.IO.Pipelines;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>Raised on the Python thread when the response can no longer be sent (client gone, or too slow).</summary>
internal sealed class ClientDisconnectedException : Exception
{
    public ClientDisconnectedException(string message = "client disconnected") : base(message) { }
}

/// <summary>The worker-wide rules for holding response bytes that the client has not taken yet.</summary>
public sealed class ResponseBuffering
{
    public required string TempDirectory { get; init; }
    /// <summary>Bytes of one response that may wait in a spool file (past it the Python thread waits).</summary>
    public long SpoolPerResponse { get; init; } = 1L << 30;
    /// <summary>Spooled bytes of all responses of this process.</summary>
    public required ByteBudget SpoolBudget { get; init; }
    /// <summary>How long a Python thread that must wait for the client waits without progress before dropping
    /// it (<see cref="Timeout.InfiniteTimeSpan"/>: for as long as the client keeps the connection).</summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The one owner of every PEP 3333 body rule of a response: when the head goes out (with the first non-empty chunk, or
/// at the end), when Content-Length is added (a body of known size), enforced (a surplus is dropped and the connection
/// closed; a short body aborts it) or omitted (HEAD, 1xx, 204, 304, a CONNECT tunnel), when the body is chunked
/// (the host frames a body of unknown length), and <c>Connection: close</c>. It also decides how bytes reach the
/// client: into the host's pipe, whose in-memory buffer absorbs a slow client; past it into a spool drained by
/// <see cref="ResponseDrain"/>; and, for a live stream, straight to the client with the Python thread waiting at most
/// the send timeout. A host that sends something else in the body's place says so when the head is committed; the
/// body is then dropped as for HEAD. Used on the request's Python thread only.
/// </summary>
public sealed class ResponseWriter
{
    private const int FlushEvery = 64 * 1024;
    private readonly RequestLease _lease;
    private readonly WsgiExchange _exchange;
    private readonly ResponseBuffering _buffering;
    private readonly bool _isHead, _isConnect;
    private ResponseDrain? _drain;
    private long _unflushed;

    public ResponseWriter(RequestLease lease, ResponseBuffering buffering)
    {
        _lease = lease;
        _exchange = lease.Exchange;
        _buffering = buffering;
        _isHead = lease.Method == "HEAD";
        _isConnect = lease.Method == "CONNECT";
    }

    public int Status { get; private set; }
    public bool HeadSet { get; private set; }
    public bool HeadersSent { get; private set; }
    /// <summary>The app's Content-Length, or -1.</summary>
    public long DeclaredLength { get; private set; } = -1;
    public long BytesSent { get; private set; }
    public bool WriteUsed { get; internal set; }
    /// <summary>The app sent more than its Content-Length; the surplus was dropped.</summary>
    public bool Overrun { get; private set; }
    public bool ClientGone { get; private set; }
    /// <summary>Content-Type text/event-stream or X-Accel-Buffering: no: every chunk goes to the client at
    /// once.</summary>
    public bool LiveStream { get; private set; }
    /// <summary>The host sends something else in the body's place (it said so when the head was committed): what
    /// the app returns is dropped and no length is checked against it.</summary>
    public bool BodyDiscarded { get; private set; }
    /// <summary>May the response carry content? Not after a HEAD request, nor a 1xx, 204, 205 or 304 (RFC 9110
    /// 6.4.1, 15.3.6): what the app returns for those is dropped.</summary>
    public bool BodyAllowed => !BodyDiscarded && !_isHead && Status >= 200 && Status is not (204 or 205 or 304);
    /// <summary>May the head say Content-Length? Not for a 2xx CONNECT (a tunnel: nothing to frame), a 1xx or a 204
    /// (RFC 9110 8.6); a 205's is always 0, whatever the app said (15.3.6: Kestrel drops the connection
    /// otherwise).</summary>
    private bool LengthHeaderAllowed => !IsTunnel && Status >= 200 && Status is not (204 or 205);
    private bool IsTunnel => _isConnect && Status is >= 200 and < 300;

    // ---- the head, written by start_response straight into the host's header collection ----

    /// <summary>Starts (or, with exc_info, restarts) the head; the caller adds the headers, then ends it.</summary>
    internal void BeginHead(int status, string? reason)
    {
        _lease.Enter();
        HeadSet = false;
        Status = status;
        DeclaredLength = -1;
        LiveStream = false;
        _exchange.SetStatus(status, reason);
        _exchange.ClearResponseHeaders();
    }

    /// <summary>One validated header; the special ones are interpreted here.</summary>
    internal void AddHeader(string name, string value, HeaderRole role)
    {
        switch (role)
        {
            case HeaderRole.ContentLength:
                if (DeclaredLength >= 0)
                    throw new PyRaiseException(PyErrorKind.ValueError, "duplicate Content-Length header");
                // Neither sent nor enforced where it must not be (Kestrel would fail the response as short).
                if (!LengthHeaderAllowed) return;
                DeclaredLength = long.Parse(value);
                break;
            case HeaderRole.ContentType:
                if (value.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase)) LiveStream = true;
                break;
            case HeaderRole.AccelBuffering:
                LiveStream = value.Equals("no", StringComparison.OrdinalIgnoreCase);
                break;
        }
        _exchange.AddResponseHeader(name, value);
    }

    internal void EndHead(bool complete)
    {
        HeadSet = complete;
        _lease.Exit();
    }

    /// <summary>Sends the head; a body of known length gets a Content-Length (PEP 3333 lets the server add
    /// it).</summary>
    public void SendHeaders(long knownLength = -1)
    {
        if (HeadersSent) return;
        if (!HeadSet)
            throw new PyRaiseException(PyErrorKind.AssertionError,
                "the application returned without calling start_response");
        _lease.Enter();
        try
        {
            // "Reset Content" says its length, always 0 (RFC 9110 15.3.6); what the app returns is dropped.
            if (Status == 205) _exchange.AddResponseHeader("Content-Length", "0");
            // A 304's length would be the representation's (RFC 9110 8.6), not the empty body's.
            else if (DeclaredLength < 0 && knownLength >= 0 && LengthHeaderAllowed && Status != 304)
            {
                _exchange.AddResponseHeader("Content-Length", knownLength.ToString());
                DeclaredLength = knownLength;
            }
            var head = new ResponseHead(Status, Status == 205 ? 0 : DeclaredLength, BodyAllowed, LiveStream);
            BodyDiscarded = _exchange.CommitHead(head) == BodyDisposition.Discard;
        }
        finally { _lease.Exit(); }
        HeadersSent = true; // the host sends the head with the first body bytes, or when the exchange finishes
    }

    // ---- the body ----

    /// <summary>Body bytes from the app (GIL held), within Content-Length; flush asks for them to go out now.</summary>
    public void Write(ReadOnlySpan<byte> data, bool flush)
    {
        if (data.Length == 0) return;
        if (!HeadersSent) SendHeaders();
        if (Overrun || BodyDiscarded) return;
        if (DeclaredLength >= 0 && BytesSent + data.Length > DeclaredLength)
        {
            data = data[..(int)(DeclaredLength - BytesSent)];
            Overrun = true;
        }
        BytesSent += data.Length;
        if (!BodyAllowed || data.Length == 0) return;
        if (_drain != null)
        {
            Spool(data);
            return;
        }
        _lease.Enter();
        try
        {
            CopyTo(_exchange.ResponseBody, data);
            _unflushed += data.Length;
            if (flush || LiveStream || _unflushed >= FlushEvery) FlushEntered();
        }
        finally { _lease.Exit(); }
    }

    private void Spool(ReadOnlySpan<byte> data)
    {
        try { _drain!.Append(data, _exchange); }
        catch (ClientDisconnectedException) { ClientGone = true; throw; }
    }

    /// <summary>
    /// Copies into the pipe with explicit size hints: Kestrel's writer can hand out an empty span for GetSpan(0)
    /// before the response starts, which BuffersExtensions.Write does not expect.
    /// </summary>
    private static void CopyTo(PipeWriter writer, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            var span = writer.GetSpan(Math.Min(data.Length, 64 * 1024));
            var n = Math.Min(span.Length, data.Length);
            data[..n].CopyTo(span);
            writer.Advance(n);
            data = data[n..];
        }
    }

    /// <summary>
    /// Flushes (the caller has entered the lease). A flush that cannot complete at once means the host's buffer is
    /// full: the rest of an ordinary response goes to a spool; a live stream waits for the client (GIL released).
    /// </summary>
    private void FlushEntered()
    {
        _unflushed = 0;
        var pending = _exchange.ResponseBody.FlushAsync();
        if (pending.IsCompleted)
        {
            CheckFlush(pending);
            return;
        }
        if (!LiveStream)
        {
            _drain = ResponseDrain.StartSpool(_lease, _exchange.ResponseBody, pending, _buffering);
            return;
        }
        WaitForClient(pending);
    }

    private void WaitForClient(ValueTask<FlushResult> pending)
    {
        var task = pending.AsTask();
        bool done;
        using (Gil.Release())
        {
            try { done = task.Wait(_buffering.SendTimeout); }
            catch (AggregateException) { done = true; }
        }
        if (!done)
        {
            ClientGone = true;
            _exchange.AbortConnection();
            throw new ClientDisconnectedException(
                $"the client took nothing for {_buffering.SendTimeout.TotalSeconds:0.#}s (--send-timeout)");
        }
        CheckFlush(new ValueTask<FlushResult>(task));
    }

    private void CheckFlush(ValueTask<FlushResult> flushed)
    {
        bool gone;
        try
        {
            var result = flushed.Result;
            gone = result.IsCompleted || result.IsCanceled;
        }
        catch (Exception) { gone = true; }
        if (!gone) return;
        if (_lease.IsAbandoned) throw new RequestAbandonedException();
        ClientGone = true;
        throw new ClientDisconnectedException();
    }

    /// <summary>
    /// wsgi.file_wrapper over a real file: the host sends count bytes from offset after the Python thread is done,
    /// without Python or the GIL. Takes ownership of the handle.
    /// </summary>
    internal void SendFile(SafeFileHandle file, long offset, long count)
    {
        if (BodyDiscarded)
        {
            file.Dispose();
            return;
        }
        if (DeclaredLength >= 0) count = Math.Min(count, DeclaredLength - BytesSent);
        if (count <= 0 || !BodyAllowed || _drain != null)
        {
            if (count > 0 && BodyAllowed) CopyFileToSpool(file, offset, count);
            else BytesSent += Math.Max(0, count);
            file.Dispose();
            return;
        }
        BytesSent += count;
        _lease.Enter();
        try
        {
            _drain = ResponseDrain.StartFile(_lease, _exchange.ResponseBody, file, offset, count, _buffering);
        }
        finally { _lease.Exit(); }
    }

    /// <summary>A file after bytes that were already spooled (write() then file_wrapper): it goes through the
    /// spool.</summary>
    private void CopyFileToSpool(SafeFileHandle file, long offset, long count)
    {
        var block = new byte[64 * 1024];
        while (count > 0)
        {
            int n;
            using (Gil.Release())
                n = RandomAccess.Read(file, block.AsSpan(0, (int)Math.Min(block.Length, count)), offset);
            if (n == 0) break;
            Write(block.AsSpan(0, n), flush: false);
            offset += n;
            count -= n;
        }
    }

    /// <summary>The app is done: the end-of-body rules decide how the host finishes the exchange.</summary>
    public ExchangeResult Complete(IGatewayLog log, string request)
    {
        if (!HeadersSent) SendHeaders(knownLength: WriteUsed ? -1 : 0);
        if (Overrun)
        {
            log.Warning($"{request}: the application sent more than its Content-Length ({DeclaredLength}); " +
                "body truncated and connection closed");
            return ExchangeResult.CompletedThenClose;
        }
        if (DeclaredLength >= 0 && BytesSent < DeclaredLength && BodyAllowed && !IsTunnel)
        {
            log.Error($"{request}: the application sent {BytesSent} bytes of its Content-Length {DeclaredLength}; " +
                "connection closed");
            return ExchangeResult.Aborted;
        }
        return ExchangeResult.Completed;
    }

    /// <summary>Hands the result to the host now, or once the drain has sent the rest.</summary>
    public void Finish(ExchangeResult result)
    {
        // A timed-out exchange is the host's again: leave it alone.
        if (!_lease.IsAbandoned) _lease.Exchange.CountBodyBytes(BytesSent);
        if (_drain != null) _drain.Complete(result);
        else _lease.TryFinish(result);
    }
}

/// <summary>What a response header means to the writer.</summary>
internal enum HeaderRole { Plain, ContentLength, ContentType, AccelBuffering }
