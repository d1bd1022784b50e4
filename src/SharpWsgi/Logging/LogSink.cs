using System.Runtime.InteropServices;
using SharpWsgi.Python;

namespace SharpWsgi.Logging;

/// <summary>
/// A log file written off the request path: callers copy finished lines into the current batch buffer (a short
/// lock, no allocation), one background thread swaps it with a spare and writes it in one O_APPEND write. A full
/// disk, a pipe nobody reads or a FIFO with no reader only stalls that thread: the buffer is bounded and lines past
/// it are dropped (and counted), so a request never waits.
/// Under load the writer naps between batches instead of being woken per line: a wake-up is a futex call and a
/// context switch on the request's thread, which cost more than formatting the line (measured).
/// </summary>
public sealed class LogSink : ILogLineSink
{
    private const int BatchBytes = 256 * 1024;
    // While lines keep coming the writer sleeps this long between batches; only a batch this full wakes it.
    private const int NapMilliseconds = 20;
    private const int WakeAtBytes = BatchBytes / 4;
    private const int Awake = 0, Napping = 1, Idle = 2;
    private readonly string? _path;
    private readonly Action<string> _report;
    private readonly object _gate = new();
    private byte[] _current = new byte[BatchBytes];
    private byte[] _spare = new byte[BatchBytes];
    private int _used;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _thread;
    private int _sleeping;
    private int _overflowSaid;
    private volatile bool _reopen;
    private volatile bool _stopping;
    private int _fd = -1;
    private bool _failing;

    /// <param name="path">A file to append to, or "-" for stdout.</param>
    /// <param name="report">Where the sink's own trouble is said (the error log), once per spell of it.</param>
    public LogSink(string path, Action<string> report)
    {
        _path = path == "-" ? null : Path.GetFullPath(path);
        _report = report;
        // Opened on the writer thread: open(2) of a FIFO blocks until a reader comes.
        _thread = new Thread(Run) { IsBackground = true, Name = "access log" };
        _thread.Start();
    }

    /// <summary>Copies one finished line (its '\n' included) into the batch.</summary>
    public void Write(ReadOnlySpan<byte> line)
    {
        int used;
        lock (_gate)
        {
            if (line.Length > _current.Length - _used) used = -1; // full: this line is dropped
            else
            {
                line.CopyTo(_current.AsSpan(_used));
                used = _used += line.Length;
            }
        }
        if (used < 0)
        {
            // Said once per spell (the writer is stuck, so it cannot say it); the writer re-arms this.
            if (Interlocked.Exchange(ref _overflowSaid, 1) == 0)
                _report($"Access log: {_path ?? "stdout"} is not keeping up; lines are being dropped");
            return;
        }
        // An idle writer is woken by the first line; a napping one only when the batch fills up.
        var state = Volatile.Read(ref _sleeping);
        if ((state == Idle || (state == Napping && used >= WakeAtBytes)) &&
            Interlocked.Exchange(ref _sleeping, Awake) != Awake)
            _wake.Set();
    }

    /// <summary>SIGUSR1: reopen the file by its name (after logrotate moved it).</summary>
    public void Reopen()
    {
        _reopen = true;
        Interlocked.Exchange(ref _sleeping, Awake);
        _wake.Set();
    }

    private void Run()
    {
        while (true)
        {
            if (_fd < 0 || _reopen) OpenFile();
            byte[] batch;
            int used;
            lock (_gate)
            {
                (batch, _current, _spare) = (_current, _spare, _current);
                used = _used;
                _used = 0;
            }
            if (used > 0) WriteAll(batch, used);
            else Volatile.Write(ref _overflowSaid, 0);
            if (_stopping)
            {
                // What was written before the stop goes out too.
                lock (_gate) { used = _used; _used = 0; batch = _current; }
                if (used > 0) WriteAll(batch, used);
                return;
            }
            _wake.Reset();
            // Lines came: more will; nap and take them as one batch. None came: sleep until the next one.
            Interlocked.Exchange(ref _sleeping, used > 0 ? Napping : Idle); // a fence: the check sees new lines
            if (used == 0 && (Volatile.Read(ref _used) > 0 || _reopen))
            {
                Volatile.Write(ref _sleeping, Awake);
                continue;
            }
            _wake.Wait(used > 0 ? NapMilliseconds : 1000);
            Volatile.Write(ref _sleeping, Awake);
        }
    }

    private void OpenFile()
    {
        _reopen = false;
        if (_path == null) { _fd = 1; return; }
        var fd = Libc.Open(_path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC, 0x1a4 /* 0644 */);
        if (fd < 0)
        {
            Fail($"cannot open {_path} (errno {Marshal.GetLastPInvokeError()})");
            return; // the old descriptor, if any, stays in use
        }
        if (_fd >= 0) Libc.Close(_fd);
        _fd = fd;
    }

    private void WriteAll(byte[] buffer, int length)
    {
        if (_fd < 0) return;
        var offset = 0;
        while (offset < length)
        {
            var n = Libc.Write(_fd, buffer, offset, length - offset);
            if (n > 0) { offset += (int)n; continue; }
            var errno = Marshal.GetLastPInvokeError();
            if (n < 0 && errno == Libc.EINTR) continue;
            // ENOSPC, EPIPE, EIO...: this batch is lost; the next one tries again.
            Fail($"cannot write to {_path ?? "stdout"} (errno {errno}); access log lines are being dropped");
            return;
        }
        if (_failing)
        {
            _failing = false;
            _report($"Access log {_path ?? "stdout"} writable again");
        }
    }

    /// <summary>Said once per failure spell, not once per line.</summary>
    private void Fail(string message)
    {
        if (_failing) return;
        _failing = true;
        _report("Access log: " + message);
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        // A writer stuck on a dead target is not waited for long.
        _thread.Join(TimeSpan.FromSeconds(1));
    }
}
