using System.Buffers;
using System.IO.Pipelines;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// wsgi.input: the request body read from the host's pipe as the app asks for it. The host has usually read a small
/// body already (it is in the pipe), so a read is one copy: from the pipe's buffers into the new bytes object. A body
/// still arriving is gathered in a buffer of ours only as far as one read needs (a 1 GiB upload read in blocks never
/// holds 1 GiB); b'' comes at the end without blocking, and every wait for the client releases the GIL.
/// </summary>
public sealed class InputStream : IPyIterator, IPyMethods
{
    public static readonly string[] Methods = { "read", "readline", "readlines", "close" };
    private readonly RequestLease _lease;
    private PipeReader Reader => _lease.Exchange.RequestBody;
    private byte[] _buffer = Array.Empty<byte>();
    private int _start, _end;
    private bool _eof, _finished;

    public InputStream(RequestLease lease) => _lease = lease;

    /// <summary>Set (400, 408, 413) when reading failed because of what the client sent.</summary>
    /// <summary>The client's error that stopped the body (malformed, too slow, too large), or null.</summary>
    public ServerAnswer? ClientError { get; private set; }

    private int Buffered => _end - _start;

    /// <summary>Called when the request is over: later reads raise, and the buffer goes back to the pool.</summary>
    public void Finish()
    {
        _finished = true;
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = Array.Empty<byte>();
        _start = _end = 0;
    }

    /// <summary>
    /// Reads from the pipe. With nothing of ours buffered, a read that the pipe's data satisfies (want bytes, the
    /// body's end, or a newline when line is set) is made straight from it; otherwise the data is appended to our
    /// buffer. Returns the bytes object, or default when the caller should look at the buffer again.
    /// </summary>
    private NewRef Fill(long want, bool line, out bool progressed)
    {
        progressed = false;
        if (_eof) return default;
        try { _lease.Enter(); }
        catch (RequestAbandonedException e) { _eof = true; throw new PyRaiseException(PyErrorKind.OSError, e.Message); }
        ReadResult result;
        try
        {
            if (!Reader.TryRead(out result))
            {
                using (Gil.Release())
                {
                    var pending = Reader.ReadAsync();
                    result = pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                }
            }
        }
        catch (Exception e) when (e is not PyRaiseException)
        {
            _eof = true;
            _lease.Exit();
            if (e is RequestBodyException bad) ClientError = bad.Answer;
            throw new PyRaiseException(PyErrorKind.OSError, $"error reading the request body: {e.Message}");
        }
        NewRef direct = default;
        try
        {
            var data = result.Buffer;
            var completed = result.IsCompleted || result.IsCanceled;
            if (Buffered == 0 && data.Length > 0 && CanServeDirectly(data, completed, want, line, out var take))
            {
                var slice = data.Slice(0, take);
                direct = Py.NewBytes((int)take, out var target);
                slice.CopyTo(target);
                Reader.AdvanceTo(slice.End);
                if (completed && take == data.Length) _eof = true;
            }
            else
            {
                if (data.Length > 0)
                {
                    Reserve((int)data.Length);
                    data.CopyTo(_buffer.AsSpan(_end));
                    _end += (int)data.Length;
                }
                Reader.AdvanceTo(data.End);
                if (completed) _eof = true;
            }
            progressed = data.Length > 0;
        }
        finally { _lease.Exit(); }
        if (result.IsCanceled && _lease.IsAbandoned)
        {
            direct.Dispose();
            _eof = true;
            throw new PyRaiseException(PyErrorKind.OSError, "the request timed out and was answered by the server");
        }
        return direct;
    }

    private static bool CanServeDirectly(ReadOnlySequence<byte> data, bool completed, long want, bool line,
        out long take)
    {
        take = 0;
        if (line)
        {
            var nl = data.PositionOf((byte)'\n');
            var lineLength = nl is { } p ? data.Slice(0, p).Length + 1 : -1;
            if (lineLength < 0 && !completed && (want < 0 || data.Length < want)) return false;
            take = lineLength >= 0 ? lineLength : data.Length;
            if (want >= 0) take = Math.Min(take, want);
            return true;
        }
        if (want < 0) { take = data.Length; return completed; }
        if (data.Length < want && !completed) return false;
        take = Math.Min(want, data.Length);
        return true;
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
        while (size < 0 || Buffered < size)
        {
            var direct = Fill(size, line: false, out var progressed);
            if (!direct.IsNull) return direct;
            if (!progressed && _eof) break;
        }
        return Take(size < 0 ? Buffered : (int)Math.Min(size, Buffered));
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
            if (_eof) return Take(limit >= 0 ? (int)Math.Min(limit, Buffered) : Buffered);
            var direct = Fill(limit, line: true, out _);
            if (!direct.IsNull) return direct;
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
            if (n > 1) throw new PyRaiseException(PyErrorKind.TypeError,
                $"{Methods[index]}() takes at most 1 argument");
            var arg = n == 1 ? PyArgs.At(args, 0) : PyArgs.Keyword(kwargs, index == 2 ? "hint" : "size");
            if (!arg.IsNull && !Py.IsNone(arg))
            {
                if (!Py.IsInt(arg)) throw new PyRaiseException(PyErrorKind.TypeError,
                    $"{Methods[index]}() argument must be int or None, not {Py.TypeNameOf(arg)}");
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
