using System.Buffers;
using System.IO.Pipelines;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// wsgi.input: the request body read from the host's pipe as the app asks for it. It buffers only what
/// one read needs (a 1 GiB upload read in blocks never holds 1 GiB), returns b'' at the end of the
/// body without blocking, and releases the GIL whenever it has to wait for the client.
/// </summary>
public sealed class InputStream : IPyIterator, IPyMethods
{
    public static readonly string[] Methods = { "read", "readline", "readlines", "close" };
    private readonly WsgiExchange _exchange;
    private PipeReader _reader => _exchange.RequestBody;
    private byte[] _buffer = Array.Empty<byte>();
    private int _start, _end;
    private bool _eof, _finished;

    public InputStream(WsgiExchange exchange) => _exchange = exchange;

    /// <summary>Set (e.g. 400) when reading failed because the client's body was malformed.</summary>
    public int ClientErrorStatus { get; private set; }

    /// <summary>Total body bytes handed to the app (for logs).</summary>
    public long BytesRead { get; private set; }

    private int Buffered => _end - _start;

    /// <summary>Called when the request is over: later reads raise, and the buffer goes back to the pool.</summary>
    public void Finish()
    {
        _finished = true;
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = Array.Empty<byte>();
        _start = _end = 0;
    }

    /// <summary>Reads whatever the client has sent next into the buffer; false at the end of the body.</summary>
    private bool Fill()
    {
        if (_eof) return false;
        ReadResult result;
        try { _exchange.Enter(); }
        catch (RequestAbandonedException e) { _eof = true; throw new PyRaiseException(PyErrorKind.OSError, e.Message); }
        try
        {
            if (!_reader.TryRead(out result))
            {
                using (Gil.Release())
                {
                    var pending = _reader.ReadAsync();
                    result = pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                }
            }
        }
        catch (Exception e) when (e is not PyRaiseException)
        {
            _eof = true;
            _exchange.Exit();
            // Kestrel's BadHttpRequestException: the client sent a malformed body (bad chunk size, too large...).
            if (e is Microsoft.AspNetCore.Http.BadHttpRequestException bad) ClientErrorStatus = bad.StatusCode;
            throw new PyRaiseException(PyErrorKind.OSError, $"error reading the request body: {e.Message}");
        }
        int length;
        try
        {
            var data = result.Buffer;
            length = (int)data.Length;
            if (length > 0)
            {
                Reserve(length);
                data.CopyTo(_buffer.AsSpan(_end));
                _end += length;
            }
            _reader.AdvanceTo(data.End);
        }
        finally { _exchange.Exit(); }
        if (result.IsCanceled && _exchange.IsAbandoned)
        {
            _eof = true;
            throw new PyRaiseException(PyErrorKind.OSError, "the request timed out and was answered by the server");
        }
        if (result.IsCompleted || result.IsCanceled) _eof = true;
        return length > 0 || !_eof;
    }

    private void Reserve(int extra)
    {
        if (_end + extra <= _buffer.Length) return;
        var live = Buffered;
        if (live + extra <= _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, live);
        }
        else
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(live + extra, Math.Max(8192, _buffer.Length * 2)));
            Buffer.BlockCopy(_buffer, _start, bigger, 0, live);
            if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        _start = 0;
        _end = live;
    }

    private NewRef Take(int count)
    {
        var bytes = Py.Bytes(_buffer.AsSpan(_start, count));
        _start += count;
        BytesRead += count;
        if (_start == _end) _start = _end = 0;
        return bytes;
    }

    private void CheckOpen()
    {
        if (_finished) throw new PyRaiseException(PyErrorKind.ValueError, "wsgi.input read after the request finished");
    }

    /// <summary>read(size=-1): up to size bytes, all the rest when size is negative or None.</summary>
    public NewRef Read(long size)
    {
        CheckOpen();
        if (size < 0)
        {
            while (Fill()) { }
            return Take(Buffered);
        }
        while (Buffered < size && Fill()) { }
        return Take((int)Math.Min(size, Buffered));
    }

    /// <summary>readline(size=-1): through the next b'\n' (or size bytes, or the end).</summary>
    public NewRef ReadLine(long limit)
    {
        CheckOpen();
        int scanned = 0;
        while (true)
        {
            var window = _buffer.AsSpan(_start + scanned, Buffered - scanned);
            var nl = window.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                var lineLength = scanned + nl + 1;
                return Take(limit >= 0 ? (int)Math.Min(limit, lineLength) : lineLength);
            }
            scanned = Buffered;
            if (limit >= 0 && Buffered >= limit) return Take((int)limit);
            if (!Fill()) return Take(limit >= 0 ? (int)Math.Min(limit, Buffered) : Buffered);
        }
    }

    public NewRef ReadLines(long hint)
    {
        var list = Py.List();
        try
        {
            long total = 0;
            while (true)
            {
                using var line = ReadLine(-1);
                var n = Py.BytesSpan(line).Length;
                if (n == 0) break;
                Py.ListAppend(list, line);
                total += n;
                if (hint > 0 && total >= hint) break;
            }
            return list;
        }
        catch { list.Dispose(); throw; }
    }

    public bool Next(BorrowedRef self, out NewRef item)
    {
        var line = ReadLine(-1);
        if (Py.BytesSpan(line).Length == 0) { line.Dispose(); item = default; return false; }
        item = line;
        return true;
    }

    public NewRef Invoke(int index, BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
    {
        long size = -1;
        if (index <= 2)
        {
            int n = PyArgs.Count(args);
            if (n > 1) throw new PyRaiseException(PyErrorKind.TypeError, $"{Methods[index]}() takes at most 1 argument");
            var arg = n == 1 ? PyArgs.At(args, 0) : PyArgs.Keyword(kwargs, index == 2 ? "hint" : "size");
            if (!arg.IsNull && !Py.IsNone(arg))
            {
                if (!Py.IsInt(arg)) throw new PyRaiseException(PyErrorKind.TypeError, $"{Methods[index]}() argument must be int or None, not {Py.TypeNameOf(arg)}");
                size = Py.AsLong(arg);
            }
        }
        return index switch
        {
            0 => Read(size),
            1 => ReadLine(size),
            2 => ReadLines(size),
            _ => Py.None.NewReference(),
        };
    }
}
