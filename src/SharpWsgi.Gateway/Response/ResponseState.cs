using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>Raised on the Python thread when the response can no longer be sent (client gone).</summary>
internal sealed class ClientDisconnectedException : Exception
{
    public ClientDisconnectedException() : base("client disconnected") { }
}

/// <summary>
/// The response side of one request: start_response's rules, the headers, and the body writes to the
/// host's pipe. Headers go out with the first non-empty chunk (PEP 3333), Content-Length is enforced,
/// and every wait for the client releases the GIL. Used only on the request's Python thread.
/// </summary>
public sealed class ResponseState : IPyCallable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Transfer-Encoding", "Upgrade", "Keep-Alive", "TE", "Trailer", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
    };

    private readonly WsgiExchange _exchange;
    private readonly WsgiObjects _objects;
    private readonly ILogger _log;
    private PyOwned? _write;

    public int Status { get; private set; }
    public string? Reason { get; private set; }
    public List<KeyValuePair<string, string>> Headers { get; } = new();
    public bool HeadersSet { get; private set; }
    public bool HeadersSent { get; private set; }
    /// <summary>Content-Length the app declared, or -1.</summary>
    public long DeclaredLength { get; private set; } = -1;
    public long BytesSent { get; private set; }
    public bool WriteUsed { get; private set; }
    /// <summary>The app sent more than its Content-Length; the surplus was dropped.</summary>
    public bool Overrun { get; private set; }
    public bool ClientGone { get; private set; }
    public bool Finished { get; set; }

    public ResponseState(WsgiExchange exchange, WsgiObjects objects, ILogger log)
    {
        _exchange = exchange;
        _objects = objects;
        _log = log;
    }

    public bool BodyAllowed => !_exchange.IsHeadRequest && Status != 204 && Status != 304 && Status >= 200;
    internal PipeWriter Writer => _exchange.ResponseBody;
    internal void Enter() => _exchange.Enter();
    internal void Exit() => _exchange.Exit();
    internal void CountSkippedBody(long count) => BytesSent += count;
    internal void CountSentBody(long count) => BytesSent += count;
    internal void MarkClientGone()
    {
        ClientGone = true;
        throw new ClientDisconnectedException();
    }

    // ---- start_response(status, response_headers, exc_info=None) ----
    public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
    {
        if (Finished) throw new PyRaiseException(PyErrorKind.RuntimeError, "start_response called after the request finished");
        int n = PyArgs.Count(args);
        var excInfo = n == 3 ? PyArgs.At(args, 2) : PyArgs.Keyword(kwargs, "exc_info");
        if (n < 2 || n > 3) throw new PyRaiseException(PyErrorKind.TypeError, $"start_response() takes 2 or 3 arguments ({n} given)");
        bool hasExcInfo = !excInfo.IsNull && !Py.IsNone(excInfo);
        if (hasExcInfo)
        {
            if (!Py.IsTuple(excInfo) || Py.TupleSize(excInfo) != 3)
                throw new PyRaiseException(PyErrorKind.TypeError, "exc_info must be a (type, value, traceback) tuple");
            if (HeadersSent)
            {
                // PEP 3333: too late to change the response; re-raise the app's exception.
                Py.RestoreExcInfo(excInfo);
                throw PythonErrorAlreadySet.Instance;
            }
        }
        else if (HeadersSet)
            throw new PyRaiseException(PyErrorKind.AssertionError, "start_response called a second time without exc_info");

        var (status, reason) = ParseStatus(PyArgs.At(args, 0));
        var headers = ParseHeaders(PyArgs.At(args, 1), out var declared);
        Status = status;
        Reason = reason;
        Headers.Clear();
        Headers.AddRange(headers);
        DeclaredLength = declared;
        HeadersSet = true;
        if (_write == null)
        {
            var w = _objects.WriteType.CreateInstance(new WriteCallable(this));
            _write = w.ToOwned();
        }
        return _write.Borrow().NewReference();
    }

    private static (int, string) ParseStatus(BorrowedRef status)
    {
        if (!Py.IsStr(status)) throw new PyRaiseException(PyErrorKind.TypeError, $"status must be str, not {Py.TypeNameOf(status)}");
        if (!Py.TryLatin1(status, out var s)) throw new PyRaiseException(PyErrorKind.ValueError, "status must be latin-1 encodable");
        if (s.Length < 4 || s[3] != ' ' || !char.IsAsciiDigit(s[0]) || !char.IsAsciiDigit(s[1]) || !char.IsAsciiDigit(s[2]))
            throw new PyRaiseException(PyErrorKind.ValueError, $"status must look like '200 OK', got {s}");
        foreach (var c in s)
            if (c < ' ' && c != '\t' || c == '\x7f')
                throw new PyRaiseException(PyErrorKind.ValueError, "status must not contain control characters (CR, LF, NUL...)");
        var code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        if (code < 100) throw new PyRaiseException(PyErrorKind.ValueError, $"status code {code} is not a valid HTTP status");
        return (code, s[4..]);
    }

    private List<KeyValuePair<string, string>> ParseHeaders(BorrowedRef headers, out long declaredLength)
    {
        declaredLength = -1;
        if (!Py.IsList(headers)) throw new PyRaiseException(PyErrorKind.TypeError, $"response_headers must be a list, not {Py.TypeNameOf(headers)}");
        var n = Py.ListSize(headers);
        var result = new List<KeyValuePair<string, string>>((int)n);
        for (nint i = 0; i < n; i++)
        {
            var item = Py.ListItem(headers, i);
            if (!Py.IsTuple(item) || Py.TupleSize(item) != 2)
                throw new PyRaiseException(PyErrorKind.TypeError, $"each response header must be a (name, value) tuple, got {Py.Repr(item)}");
            var nameObj = Py.TupleItem(item, 0);
            var valueObj = Py.TupleItem(item, 1);
            if (!Py.IsStr(nameObj) || !Py.IsStr(valueObj))
                throw new PyRaiseException(PyErrorKind.TypeError, $"header name and value must be str, got {Py.Repr(item)}");
            if (!Py.TryLatin1(nameObj, out var name) || !Py.TryLatin1(valueObj, out var value))
                throw new PyRaiseException(PyErrorKind.ValueError, $"header {Py.Repr(item)} is not latin-1 encodable");
            if (name.Length == 0 || !name.All(IsTokenChar))
                throw new PyRaiseException(PyErrorKind.ValueError, $"invalid header name {Py.Repr(nameObj)}");
            foreach (var c in value)
                if (c < ' ' && c != '\t' || c == '\x7f')
                    throw new PyRaiseException(PyErrorKind.ValueError, $"header {name} value contains a control character (CR, LF, NUL...)");
            if (HopByHop.Contains(name))
                throw new PyRaiseException(PyErrorKind.AssertionError, $"hop-by-hop header {name} is not allowed from a WSGI application (PEP 3333)");
            if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                if (value.Split(',').Any(v => v.Trim().Equals("close", StringComparison.OrdinalIgnoreCase)))
                    result.Add(new(name, "close"));
                else
                    throw new PyRaiseException(PyErrorKind.AssertionError, $"hop-by-hop header Connection: {value} is not allowed from a WSGI application (only 'close' is honoured)");
                continue;
            }
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                var v = value.Trim();
                if (v.Length == 0 || v.Length > 18 || !v.All(char.IsAsciiDigit))
                    throw new PyRaiseException(PyErrorKind.ValueError, $"invalid Content-Length {value}");
                if (declaredLength >= 0) throw new PyRaiseException(PyErrorKind.ValueError, "duplicate Content-Length header");
                declaredLength = long.Parse(v);
                value = v;
            }
            result.Add(new(name, value));
        }
        return result;
    }

    private static bool IsTokenChar(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '!' or '#' or '$' or '%' or '&' or '\'' or '*'
            or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    /// <summary>Sends status and headers (at the first non-empty chunk, or at the end for an empty body).</summary>
    public void SendHeaders(long knownLength = -1)
    {
        if (HeadersSent) return;
        if (!HeadersSet) throw new PyRaiseException(PyErrorKind.AssertionError, "the application returned without calling start_response");
        if (DeclaredLength < 0 && knownLength >= 0 && Status >= 200 && Status != 204 && Status != 304)
        {
            Headers.Add(new("Content-Length", knownLength.ToString()));
            DeclaredLength = knownLength;
        }
        _exchange.Enter();
        try { _exchange.SetResponseHead(Status, Reason, Headers); }
        finally { _exchange.Exit(); }
        HeadersSent = true;
    }

    /// <summary>Appends body bytes (GIL held) honouring Content-Length; flushes when asked (GIL released while waiting).</summary>
    public void WriteBody(ReadOnlySpan<byte> data, bool flush)
    {
        if (data.Length == 0) return;
        if (!HeadersSent) SendHeaders();
        if (Overrun) return;
        if (DeclaredLength >= 0 && BytesSent + data.Length > DeclaredLength)
        {
            data = data[..(int)(DeclaredLength - BytesSent)];
            Overrun = true;
        }
        BytesSent += data.Length;
        if (!BodyAllowed) return;
        _exchange.Enter();
        try
        {
            CopyTo(_exchange.ResponseBody, data);
            if (flush) FlushEntered();
        }
        finally { _exchange.Exit(); }
    }

    /// <summary>
    /// Copies into the pipe with explicit size hints: Kestrel's writer can hand out an empty span for
    /// GetSpan(0) before the response starts, which BuffersExtensions.Write does not expect.
    /// </summary>
    internal static void CopyTo(PipeWriter writer, ReadOnlySpan<byte> data)
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

    /// <summary>Flushes the response pipe; the caller has entered the exchange.</summary>
    private void FlushEntered()
    {
        var pending = _exchange.ResponseBody.FlushAsync();
        FlushResult result;
        if (pending.IsCompleted) result = pending.Result;
        else
        {
            using (Gil.Release())
            {
                try { result = pending.AsTask().GetAwaiter().GetResult(); }
                catch (Exception) { result = new FlushResult(isCanceled: false, isCompleted: true); }
            }
        }
        if (result.IsCompleted || result.IsCanceled)
        {
            ClientGone = true;
            throw new ClientDisconnectedException();
        }
    }

    /// <summary>write(data) from the app: sent (and flushed) before returning, as PEP 3333 requires.</summary>
    internal NewRef Write(BorrowedRef args)
    {
        if (Finished) throw new PyRaiseException(PyErrorKind.RuntimeError, "write() called after the request finished");
        if (PyArgs.Count(args) != 1) throw new PyRaiseException(PyErrorKind.TypeError, "write() takes exactly one argument");
        var data = PyArgs.At(args, 0);
        if (!Py.IsBytes(data)) throw new PyRaiseException(PyErrorKind.TypeError, $"write() argument must be bytes, not {Py.TypeNameOf(data)}");
        if (!HeadersSet) throw new PyRaiseException(PyErrorKind.AssertionError, "write() called before start_response");
        WriteUsed = true;
        try { WriteBody(Py.BytesSpan(data), flush: true); }
        catch (ClientDisconnectedException) { throw new PyRaiseException(PyErrorKind.OSError, "client disconnected"); }
        catch (RequestAbandonedException e) { throw new PyRaiseException(PyErrorKind.OSError, e.Message); }
        return Py.None.NewReference();
    }

    public void DisposePython()
    {
        _write?.Dispose();
        _write = null;
    }
}

/// <summary>The write callable start_response returns.</summary>
internal sealed class WriteCallable : IPyCallable
{
    private readonly ResponseState _state;
    public WriteCallable(ResponseState state) => _state = state;
    public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs) => _state.Write(args);
}
