using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// start_response(status, response_headers, exc_info=None) and the write callable it returns (PEP 3333). Status and
/// headers are validated here and go from the Python strings straight into the host's header collection through the
/// <see cref="ResponseWriter"/>, which owns what they mean for the body. Used on the request's Python thread only.
/// </summary>
public sealed class StartResponse : IPyCallable
{
    private readonly ResponseWriter _writer;
    private readonly WsgiObjects _objects;
    private readonly HeaderNames _names;
    private PyOwned? _write;

    internal StartResponse(ResponseWriter writer, WsgiObjects objects, HeaderNames names)
    {
        _writer = writer;
        _objects = objects;
        _names = names;
    }

    /// <summary>Set when the request is over: later calls raise.</summary>
    public bool Finished { get; set; }

    /// <summary>Keep the status and headers of the last accepted call (for a post_request hook).</summary>
    internal bool KeepHead { get; init; }
    private NewRef _keptStatus, _keptHeaders;
    /// <summary>What the app last gave start_response, when <see cref="KeepHead"/> (null otherwise or before).
    /// </summary>
    internal BorrowedRef KeptStatus => _keptStatus;
    internal BorrowedRef KeptHeaders => _keptHeaders;

    public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
    {
        if (Finished) throw new PyRaiseException(PyErrorKind.RuntimeError,
            "start_response called after the request finished");
        int n = PyArgs.Count(args);
        var excInfo = n == 3 ? PyArgs.At(args, 2) : PyArgs.Keyword(kwargs, "exc_info");
        if (n < 2 || n > 3) throw new PyRaiseException(PyErrorKind.TypeError,
            $"start_response() takes 2 or 3 arguments ({n} given)");
        bool hasExcInfo = !excInfo.IsNull && !Py.IsNone(excInfo);
        if (hasExcInfo)
        {
            if (!Py.IsTuple(excInfo) || Py.TupleSize(excInfo) != 3)
                throw new PyRaiseException(PyErrorKind.TypeError, "exc_info must be a (type, value, traceback) tuple");
            if (_writer.HeadersSent)
            {
                // PEP 3333: too late to change the response; re-raise the app's exception.
                Py.RestoreExcInfo(excInfo);
                throw PythonErrorAlreadySet.Instance;
            }
        }
        else if (_writer.HeadSet)
            throw new PyRaiseException(PyErrorKind.AssertionError,
                "start_response called a second time without exc_info");

        var (status, reason) = ParseStatus(PyArgs.At(args, 0));
        var headers = PyArgs.At(args, 1);
        if (!Py.IsList(headers))
            throw new PyRaiseException(PyErrorKind.TypeError,
                $"response_headers must be a list, not {Py.TypeNameOf(headers)}");
        _writer.BeginHead(status, reason);
        var complete = false;
        try
        {
            var count = Py.ListSize(headers);
            for (nint i = 0; i < count; i++) AddHeader(Py.ListItem(headers, i));
            complete = true;
        }
        finally { _writer.EndHead(complete); }
        if (KeepHead)
        {
            _keptStatus.Dispose();
            _keptHeaders.Dispose();
            _keptStatus = PyArgs.At(args, 0).NewReference();
            _keptHeaders = headers.NewReference();
        }
        if (_write == null)
        {
            var w = _objects.WriteType.CreateInstance(new WriteCallable(this));
            _write = w.ToOwned();
        }
        return _write.Borrow().NewReference();
    }

    private static (int, string) ParseStatus(BorrowedRef status)
    {
        if (!Py.IsStr(status)) throw new PyRaiseException(PyErrorKind.TypeError,
            $"status must be str, not {Py.TypeNameOf(status)}");
        if (!Py.TryLatin1(status, out var s)) throw new PyRaiseException(PyErrorKind.ValueError,
            "status must be latin-1 encodable");
        if (s.Length < 4 || s[3] != ' ' || !char.IsAsciiDigit(s[0]) || !char.IsAsciiDigit(s[1]) ||
            !char.IsAsciiDigit(s[2]))
            throw new PyRaiseException(PyErrorKind.ValueError, $"status must look like '200 OK', got {s}");
        if (HeaderSyntax.IndexOfControl(s) >= 0)
            throw new PyRaiseException(PyErrorKind.ValueError,
                "status must not contain control characters (CR, LF, NUL...)");
        var code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        if (code < 100) throw new PyRaiseException(PyErrorKind.ValueError,
            $"status code {code} is not a valid HTTP status");
        return (code, s[4..]);
    }

    private void AddHeader(BorrowedRef item)
    {
        if (!Py.IsTuple(item) || Py.TupleSize(item) != 2)
            throw new PyRaiseException(PyErrorKind.TypeError,
                $"each response header must be a (name, value) tuple, got {Py.Repr(item)}");
        var nameObj = Py.TupleItem(item, 0);
        var valueObj = Py.TupleItem(item, 1);
        if (!Py.IsStr(nameObj) || !Py.IsStr(valueObj))
            throw new PyRaiseException(PyErrorKind.TypeError,
                $"header name and value must be str, got {Py.Repr(item)}");
        var (name, role) = _names.Resolve(nameObj);
        if (!Py.TryLatin1(valueObj, out var value))
            throw new PyRaiseException(PyErrorKind.ValueError, $"header {Py.Repr(item)} is not latin-1 encodable");
        if (HeaderSyntax.IndexOfControl(value) >= 0)
            throw new PyRaiseException(PyErrorKind.ValueError,
                $"header {name} value contains a control character (CR, LF, NUL...)");
        switch (role)
        {
            case NameRole.Connection:
                if (!value.Split(',').Any(v => v.Trim().Equals("close", StringComparison.OrdinalIgnoreCase)))
                    throw new PyRaiseException(PyErrorKind.AssertionError,
                        $"hop-by-hop header Connection: {value} is not allowed from a WSGI application " +
                        "(only 'close' is honoured)");
                _writer.AddHeader(name, "close", HeaderRole.Plain);
                return;
            case NameRole.ContentLength:
                var v = value.Trim();
                if (v.Length == 0 || v.Length > 18 || !v.All(char.IsAsciiDigit))
                    throw new PyRaiseException(PyErrorKind.ValueError, $"invalid Content-Length {value}");
                _writer.AddHeader(name, v, HeaderRole.ContentLength);
                return;
            case NameRole.ContentType: _writer.AddHeader(name, value, HeaderRole.ContentType); return;
            case NameRole.AccelBuffering: _writer.AddHeader(name, value, HeaderRole.AccelBuffering); return;
            default: _writer.AddHeader(name, value, HeaderRole.Plain); return;
        }
    }

    /// <summary>write(data) from the app: buffered for sending before it returns, as PEP 3333 allows.</summary>
    internal NewRef Write(BorrowedRef args)
    {
        if (Finished) throw new PyRaiseException(PyErrorKind.RuntimeError, "write() called after the request finished");
        if (PyArgs.Count(args) != 1) throw new PyRaiseException(PyErrorKind.TypeError,
            "write() takes exactly one argument");
        var data = PyArgs.At(args, 0);
        if (!Py.IsBytes(data)) throw new PyRaiseException(PyErrorKind.TypeError,
            $"write() argument must be bytes, not {Py.TypeNameOf(data)}");
        if (!_writer.HeadSet) throw new PyRaiseException(PyErrorKind.AssertionError,
            "write() called before start_response");
        _writer.WriteUsed = true;
        try { _writer.Write(Py.BytesSpan(data), flush: true); }
        catch (ClientDisconnectedException e) { throw new PyRaiseException(PyErrorKind.OSError, e.Message); }
        catch (RequestAbandonedException e) { throw new PyRaiseException(PyErrorKind.OSError, e.Message); }
        return Py.None.NewReference();
    }

    public void DisposePython()
    {
        _write?.Dispose();
        _write = null;
        _keptStatus.Dispose();
        _keptHeaders.Dispose();
    }
}

/// <summary>The write callable start_response returns.</summary>
internal sealed class WriteCallable : IPyCallable
{
    private readonly StartResponse _owner;
    public WriteCallable(StartResponse owner) => _owner = owner;
    public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs) => _owner.Write(args);
}

internal enum NameRole { Plain, ContentLength, ContentType, Connection, AccelBuffering }

/// <summary>
/// Response header names, validated and converted once per Python string object: apps pass the same str constants
/// ('Content-Type') on every request, so the cache is keyed by the object and keeps it alive, which makes the key
/// safe to compare by address. Bounded; names past the bound are converted each time. One per Python thread.
/// </summary>
internal sealed class HeaderNames
{
    private const int MaxCached = 256;
    private readonly Dictionary<nint, (PyOwned Keep, string Name, NameRole Role)> _cache = new();

    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Transfer-Encoding", "Upgrade", "Keep-Alive", "TE", "Trailer", "Proxy-Authenticate", "Proxy-Authorization",
        "Proxy-Connection",
    };

    public (string Name, NameRole Role) Resolve(BorrowedRef nameObj)
    {
        if (_cache.TryGetValue(nameObj.Handle, out var hit)) return (hit.Name, hit.Role);
        if (!Py.TryLatin1(nameObj, out var name))
            throw new PyRaiseException(PyErrorKind.ValueError,
                $"header name {Py.Repr(nameObj)} is not latin-1 encodable");
        if (!HeaderSyntax.IsToken(name))
            throw new PyRaiseException(PyErrorKind.ValueError, $"invalid header name {Py.Repr(nameObj)}");
        if (HopByHop.Contains(name))
            throw new PyRaiseException(PyErrorKind.AssertionError,
                $"hop-by-hop header {name} is not allowed from a WSGI application (PEP 3333)");
        var role = name.ToLowerInvariant() switch
        {
            "content-length" => NameRole.ContentLength,
            "content-type" => NameRole.ContentType,
            "connection" => NameRole.Connection,
            "x-accel-buffering" => NameRole.AccelBuffering,
            _ => NameRole.Plain,
        };
        if (_cache.Count < MaxCached)
        {
            var keep = nameObj.NewReference();
            _cache[nameObj.Handle] = (keep.ToOwned(), name, role);
        }
        return (name, role);
    }
}
