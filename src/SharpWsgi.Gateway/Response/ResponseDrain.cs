using System.IO.Pipelines;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Sends the rest of a response from a file at the client's pace, off the Python thread, as nginx's proxy buffering
/// does. Two sources: a spool the Python thread keeps appending to once the host's in-memory buffer is full, and a
/// region of a real file given to wsgi.file_wrapper. The pump is an async loop on the thread pool; the Python thread
/// only appends (waiting, with the GIL released, only when the per-response or worker-wide spool cap is reached).
/// The exchange is finished when both the Python side has completed and the pump has sent everything (or failed).
/// </summary>
internal sealed class ResponseDrain
{
    private const int BlockSize = 64 * 1024;
    private const int ReleaseGilAbove = 1 << 20;
    /// <summary>How often a Python thread waiting for room in the worker-wide spool total looks again.</summary>
    private static readonly TimeSpan BudgetPoll = TimeSpan.FromMilliseconds(50);
    /// <summary>Beyond --send-timeout, how long such a thread waits for room before giving up on its client.
    /// </summary>
    private static readonly TimeSpan BudgetSlack = TimeSpan.FromSeconds(2);
    private readonly RequestLease _lease;
    private readonly PipeWriter _pipe;
    private readonly SafeFileHandle _file;
    private readonly ByteBudget? _budget; // null for a file region: those bytes are on disk already
    private readonly long _perResponseCap;
    private readonly TimeSpan _sendTimeout;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _wakePump = new(0);
    private long _end, _sent;
    private bool _pumpWaiting, _writerDone, _pumpEnded, _failed, _finished;
    private ExchangeResult _result = ExchangeResult.Aborted;

    private ResponseDrain(RequestLease lease, PipeWriter pipe, SafeFileHandle file, long start, long end,
        ByteBudget? budget, long perResponseCap, TimeSpan sendTimeout)
    {
        _lease = lease;
        _pipe = pipe;
        _file = file;
        _sent = start;
        _end = end;
        _budget = budget;
        _perResponseCap = perResponseCap;
        _sendTimeout = sendTimeout;
    }

    /// <summary>Starts spooling; the caller's flush is still pending (the in-memory buffer is full).</summary>
    public static ResponseDrain StartSpool(RequestLease lease, PipeWriter pipe, ValueTask<FlushResult> pendingFlush,
        ResponseBuffering buffering)
    {
        var drain = new ResponseDrain(lease, pipe, SpoolFile.Create(buffering.TempDirectory), 0, 0,
            buffering.SpoolBudget, buffering.SpoolPerResponse, buffering.SendTimeout);
        _ = drain.PumpAsync(pendingFlush);
        return drain;
    }

    /// <summary>Sends count bytes of a file from offset; the handle becomes the drain's.</summary>
    public static ResponseDrain StartFile(RequestLease lease, PipeWriter pipe, SafeFileHandle file, long offset,
        long count, ResponseBuffering buffering)
    {
        var drain = new ResponseDrain(lease, pipe, file, offset, offset + count, null, long.MaxValue,
            buffering.SendTimeout);
        _ = drain.PumpAsync(default);
        return drain;
    }

    /// <summary>
    /// Python thread, GIL held: appends to the spool. Waits (GIL released) only while the caps are reached; a client
    /// that takes nothing for the send timeout then is dropped.
    /// </summary>
    public void Append(ReadOnlySpan<byte> data, WsgiExchange exchange)
    {
        if (data.Length == 0) return;
        WaitForRoom(data.Length, exchange);
        long at;
        lock (_gate) at = _end;
        try
        {
            // A write to the page cache is a memory copy; only a large one is worth letting other threads run.
            if (data.Length >= ReleaseGilAbove)
                using (Gil.Release()) RandomAccess.Write(_file, data, at);
            else RandomAccess.Write(_file, data, at);
        }
        catch (ObjectDisposedException)
        {
            _budget?.Release(data.Length); // the pump ended (the client went) while this was written
            throw new ClientDisconnectedException();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _budget?.Release(data.Length);
            exchange.AbortConnection();
            Fail();
            throw new ClientDisconnectedException($"cannot spool the response: {e.Message}");
        }
        lock (_gate)
        {
            if (_pumpEnded)
            {
                // The client went while this was written: nobody will send (or release) these bytes.
                _budget?.Release(data.Length);
                throw new ClientDisconnectedException();
            }
            _end += data.Length;
            if (_pumpWaiting) { _pumpWaiting = false; _wakePump.Release(); }
        }
    }

    private void WaitForRoom(int length, WsgiExchange exchange)
    {
        var stalledSince = Environment.TickCount64;
        var releasedBefore = _budget?.Released ?? 0;
        while (true)
        {
            long pending, sentBefore;
            lock (_gate)
            {
                if (_failed) throw new ClientDisconnectedException();
                pending = _end - _sent;
                sentBefore = _sent;
            }
            var fits = pending == 0 || pending + length <= _perResponseCap;
            if (fits && (_budget == null || _budget.TryReserve(length))) return;
            bool progressed;
            using (Gil.Release())
            {
                lock (_gate)
                {
                    // Past this response's own cap only its client can make room, and its progress wakes us. Past
                    // the worker-wide total, other responses' clients make it, and nothing wakes us: look again.
                    if (_sent == sentBefore && !_failed) Monitor.Wait(_gate, fits ? BudgetPoll : _sendTimeout);
                    progressed = _sent != sentBefore || _failed;
                }
            }
            if (fits && _budget!.Released is var released && released != releasedBefore)
            {
                releasedBefore = released;
                progressed = true;
            }
            if (progressed)
            {
                stalledSince = Environment.TickCount64;
                continue;
            }
            // Waiting for the total is not this client's fault: give the host's delivery watchdog time to drop the
            // clients that hold it (within --send-timeout plus its sampling) before giving up on this one.
            if (fits && (_sendTimeout == Timeout.InfiniteTimeSpan ||
                         Environment.TickCount64 - stalledSince < (_sendTimeout + BudgetSlack).TotalMilliseconds))
                continue;
            exchange.AbortConnection();
            Fail();
            throw new ClientDisconnectedException(fits
                ? $"no spool room came free for {(_sendTimeout + BudgetSlack).TotalSeconds:0.#}s " +
                  "(--response-spool-total, --send-timeout)"
                : $"the client took nothing for {_sendTimeout.TotalSeconds:0.#}s (--send-timeout)");
        }
    }

    /// <summary>The Python side is done (iterable exhausted, close() called): finish once the rest is sent.</summary>
    public void Complete(ExchangeResult result)
    {
        bool finishNow;
        lock (_gate)
        {
            _writerDone = true;
            _result = result;
            if (result.Outcome != ExchangeOutcome.Completed && result.Outcome != ExchangeOutcome.CompletedThenClose)
                _failed = true; // nothing more worth sending
            finishNow = _pumpEnded && !_finished;
            if (finishNow) _finished = true;
            if (_pumpWaiting) { _pumpWaiting = false; _wakePump.Release(); }
        }
        if (finishNow) _lease.TryFinish(_failed ? ExchangeResult.Aborted : result);
        // A failed response must not wait for a slow client: end the pump's pending flush, so it finishes now.
        else if (result.Outcome is not (ExchangeOutcome.Completed or ExchangeOutcome.CompletedThenClose))
            CancelPumpFlush();
    }

    private void CancelPumpFlush()
    {
        try { _lease.Enter(); }
        catch (RequestAbandonedException) { return; } // the host took the exchange back and cancelled its I/O
        try { _pipe.CancelPendingFlush(); }
        finally { _lease.Exit(); }
    }

    private void Fail()
    {
        lock (_gate)
        {
            _failed = true;
            Monitor.PulseAll(_gate);
            if (_pumpWaiting) { _pumpWaiting = false; _wakePump.Release(); }
        }
    }

    private async Task PumpAsync(ValueTask<FlushResult> first)
    {
        try
        {
            if (!await FlushedAsync(first).ConfigureAwait(false)) return;
            while (true)
            {
                long from, to;
                lock (_gate)
                {
                    if (_failed) return;
                    from = _sent;
                    to = _end;
                    if (from == to)
                    {
                        if (_writerDone) return;
                        _pumpWaiting = true;
                    }
                }
                if (from == to)
                {
                    await _wakePump.WaitAsync().ConfigureAwait(false);
                    continue;
                }
                int n;
                ValueTask<FlushResult> flush;
                try { _lease.Enter(); }
                catch (RequestAbandonedException) { Fail(); return; }
                try
                {
                    var memory = _pipe.GetMemory((int)Math.Min(BlockSize, to - from));
                    var want = (int)Math.Min(memory.Length, to - from);
                    n = RandomAccess.Read(_file, memory.Span[..want], from);
                    if (n <= 0) { Fail(); return; } // a file that shrank under us: the length check cannot pass
                    _pipe.Advance(n);
                    flush = _pipe.FlushAsync();
                }
                finally { _lease.Exit(); }
                lock (_gate)
                {
                    _sent += n;
                    Monitor.PulseAll(_gate);
                }
                _budget?.Release(n);
                if (!await FlushedAsync(flush).ConfigureAwait(false)) return;
            }
        }
        catch (Exception)
        {
            Fail();
        }
        finally
        {
            bool finishNow;
            long unsent;
            lock (_gate)
            {
                _file.Dispose(); // before anyone can finish the exchange: its spool is gone by then
                _pumpEnded = true;
                if (_sent != _end) _failed = true;
                unsent = _end - _sent;
                _sent = _end;
                Monitor.PulseAll(_gate);
                finishNow = _writerDone && !_finished;
                if (finishNow) _finished = true;
            }
            if (unsent > 0) _budget?.Release(unsent);
            if (finishNow) _lease.TryFinish(_failed ? ExchangeResult.Aborted : _result);
        }
    }

    /// <summary>False when the client is gone or the request was taken back (timeout).</summary>
    private async ValueTask<bool> FlushedAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result;
        try { result = await flush.ConfigureAwait(false); }
        catch (Exception) { Fail(); return false; }
        if (result.IsCompleted || result.IsCanceled) { Fail(); return false; }
        return true;
    }
}
