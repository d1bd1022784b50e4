using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using SharpWsgi.Python;

namespace SharpWsgi.Logging;

/// <summary>
/// A log file written off the request path: callers hand over finished lines in pooled arrays, one background thread
/// batches them into single O_APPEND writes. A full disk, a pipe nobody reads or a FIFO with no reader only stalls
/// that thread: the queue is bounded and lines past it are dropped (and counted), so a request never waits.
/// Under load the writer naps between batches instead of being woken per line: a wake-up is a futex call and a
/// context switch on the request's thread, which cost more than formatting the line (measured).
/// </summary>
public sealed class LogSink : IDisposable
{
    private const int MaxQueued = 16_384;
    private const int BatchBytes = 64 * 1024;
    // While lines keep coming the writer sleeps this long between batches; only this many waiting lines wake it.
    private const int NapMilliseconds = 20;
    private const int WakeAtQueued = 1024;
    private const int Awake = 0, Napping = 1, Idle = 2;
    private readonly string? _path;
    private readonly Action<string> _report;
    private readonly ConcurrentQueue<(byte[] Buffer, int Length)> _queue = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _thread;
    private int _queued;
    private int _sleeping;
    private int _overflowSaid;
    private volatile bool _reopen;
    private volatile bool _stopping;
    private long _dropped;
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

    /// <summary>Lines dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Takes ownership of <paramref name="buffer"/> (rented from the shared pool).</summary>
    public void Write(byte[] buffer, int length)
    {
        var queued = Interlocked.Increment(ref _queued);
        if (queued > MaxQueued)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _dropped);
            ArrayPool<byte>.Shared.Return(buffer);
            // Said once per spell (the writer is stuck, so it cannot say it); the writer re-arms this.
            if (Interlocked.Exchange(ref _overflowSaid, 1) == 0)
                _report($"Access log: {_path ?? "stdout"} is not keeping up; lines are being dropped");
            return;
        }
        _queue.Enqueue((buffer, length));
        // An idle writer is woken by the first line; a napping one only when many lines wait.
        var state = Volatile.Read(ref _sleeping);
        if ((state == Idle || (state == Napping && queued >= WakeAtQueued)) &&
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
        var batch = new byte[BatchBytes];
        while (true)
        {
            if (_fd < 0 || _reopen) OpenFile();
            var used = 0;
            var wrote = false;
            while (_queue.TryDequeue(out var line))
            {
                wrote = true;
                Interlocked.Decrement(ref _queued);
                if (used + line.Length > batch.Length)
                {
                    WriteAll(batch, used);
                    used = 0;
                }
                if (line.Length > batch.Length) WriteAll(line.Buffer, line.Length);
                else
                {
                    line.Buffer.AsSpan(0, line.Length).CopyTo(batch.AsSpan(used));
                    used += line.Length;
                }
                ArrayPool<byte>.Shared.Return(line.Buffer);
            }
            if (used > 0) WriteAll(batch, used);
            if (_queue.IsEmpty) Volatile.Write(ref _overflowSaid, 0);
            if (_stopping) return; // what was queued before the stop is written
            _wake.Reset();
            // Lines came: more will; nap and take them as one batch. None came: sleep until the next one.
            Interlocked.Exchange(ref _sleeping, wrote ? Napping : Idle); // a fence: the check below sees new lines
            if (!wrote && (!_queue.IsEmpty || _reopen)) { Volatile.Write(ref _sleeping, Awake); continue; }
            _wake.Wait(wrote ? NapMilliseconds : 1000);
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
        if (_fd < 0) { Interlocked.Increment(ref _dropped); return; }
        var offset = 0;
        while (offset < length)
        {
            var n = Libc.Write(_fd, buffer, offset, length - offset);
            if (n > 0) { offset += (int)n; continue; }
            var errno = Marshal.GetLastPInvokeError();
            if (n < 0 && errno == Libc.EINTR) continue;
            // ENOSPC, EPIPE, EIO...: this batch is lost; the next one tries again.
            Interlocked.Increment(ref _dropped);
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
