using System.Net;
using Microsoft.AspNetCore.Connections;

namespace SharpWsgi.Hosting;

/// <summary>
/// Wraps Kestrel's socket transport so the process can stop accepting new connections while the ones it
/// has finish their requests (Kestrel's StopAsync does both at once), pause and resume accepting (a worker
/// whose Python is unresponsive leaves new connections to the others), and counts open connections so a
/// retiring worker knows when its last client has gone. With a connection limit (--max-connections) it does not
/// accept while that many are open: new connections wait in the kernel's backlog, where another worker sharing the
/// socket may take them (Kestrel's own MaxConcurrentConnections would accept them and close them at once).
/// </summary>
public sealed class ListenerControl : IConnectionListenerFactory
{
    private readonly IConnectionListenerFactory _inner;
    private readonly List<IConnectionListener> _listeners = new();
    private readonly AcceptBalance? _balance;
    private int _open;
    private volatile bool _stopped;

    // Pausing: accepts in progress wait on the pause token (cancelled when a pause starts); new ones wait
    // for _resumed. Both are replaced under _pauseGate; a pause is rare, so they are allocated per pause.
    private readonly object _pauseGate = new();
    private volatile bool _paused;
    private CancellationTokenSource _pauseToken = new();
    private TaskCompletionSource _resumed = Completed();

    // The connection limit: slots are taken before an accept (so several listeners cannot overshoot together) and
    // given back when the accept yields nothing or the connection closes. Waiters wait for _slotFreed.
    private readonly int _maxConnections;
    private readonly object _slotGate = new();
    private int _slots;
    private TaskCompletionSource? _slotFreed;

    /// <param name="maxConnections">Open connections at most (0: no limit).</param>
    public ListenerControl(IConnectionListenerFactory inner, AcceptBalance? balance, int maxConnections = 0)
    {
        _inner = inner;
        _balance = balance;
        _maxConnections = Math.Max(0, maxConnections);
        _balance?.Publish(0);
    }

    /// <summary>Null when a slot was taken (or there is no limit); else the task that completes when one may be
    /// free.</summary>
    private Task? TakeSlot()
    {
        if (_maxConnections == 0) return null;
        lock (_slotGate)
        {
            if (_slots < _maxConnections)
            {
                _slots++;
                return null;
            }
            return (_slotFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    private void ReleaseSlot(bool taken)
    {
        if (_maxConnections == 0) return;
        TaskCompletionSource? freed;
        lock (_slotGate)
        {
            if (taken) _slots--;
            freed = _slotFreed;
            _slotFreed = null;
        }
        freed?.TrySetResult(); // outside the lock: continuations may take it
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    private void Opened() => Publish(Interlocked.Increment(ref _open));
    private void Closed()
    {
        Publish(Interlocked.Decrement(ref _open));
        ReleaseSlot(taken: true);
    }

    // A worker that does not accept shows -1: the others do not defer to it.
    private void Publish(int open)
    {
        if (!_stopped && !_paused) _balance?.Publish(open);
    }

    public int OpenConnections => Volatile.Read(ref _open);

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint,
        CancellationToken cancellationToken = default)
    {
        var inner = await _inner.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        var listener = new CountingListener(inner, this);
        lock (_listeners) _listeners.Add(listener);
        return listener;
    }

    /// <summary>
    /// Stops taking new connections until <see cref="Resume"/>: an accept in progress is cancelled, so a
    /// connection waiting in a shared socket's queue goes to another worker. The sockets stay open, and the
    /// connections already accepted go on.
    /// </summary>
    public void Pause()
    {
        CancellationTokenSource cancel;
        lock (_pauseGate)
        {
            if (_paused || _stopped) return;
            _paused = true;
            _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cancel = _pauseToken;
            _pauseToken = new CancellationTokenSource();
            _balance?.Publish(-1);
        }
        cancel.Cancel(); // outside the lock: cancellation runs the accepts' callbacks
    }

    /// <summary>Takes new connections again after <see cref="Pause"/>.</summary>
    public void Resume()
    {
        TaskCompletionSource resumed;
        lock (_pauseGate)
        {
            if (!_paused) return;
            _paused = false;
            resumed = _resumed;
            if (!_stopped) _balance?.Publish(OpenConnections);
        }
        resumed.TrySetResult();
    }

    /// <summary>
    /// Stops accepting for good: the listening sockets stay open in other processes; connections already
    /// accepted go on.
    /// </summary>
    public async Task StopAcceptingAsync()
    {
        _stopped = true;
        _balance?.Publish(-1); // no longer accepting: not a candidate for the others to defer to
        lock (_pauseGate) _resumed.TrySetResult(); // a paused accept loop sees the stop and ends
        ReleaseSlot(taken: false); // so does one waiting for a free slot
        IConnectionListener[] all;
        lock (_listeners) all = _listeners.ToArray();
        foreach (var l in all)
        {
            try { await l.UnbindAsync().ConfigureAwait(false); } catch (Exception) { }
        }
    }

    /// <summary>While paused: the task to wait for. Otherwise: the token that a pause cancels.</summary>
    private (Task? Resumed, CancellationToken PauseToken) AcceptPermit()
    {
        lock (_pauseGate) return _paused ? (_resumed.Task, default) : (null, _pauseToken.Token);
    }

    private sealed class CountingListener : IConnectionListener
    {
        private readonly IConnectionListener _inner;
        private readonly ListenerControl _owner;
        public CountingListener(IConnectionListener inner, ListenerControl owner) { _inner = inner; _owner = owner; }
        public EndPoint EndPoint => _inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                if (_owner._stopped || _unbound) return null;
                var (resumed, pauseToken) = _owner.AcceptPermit();
                if (resumed != null)
                {
                    await resumed.WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (_owner.TakeSlot() is { } slotFreed)
                {
                    // At the limit: not accepting leaves new connections in the backlog (or to other workers).
                    await slotFreed.WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                using var linked = cancellationToken.CanBeCanceled
                    ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, pauseToken)
                    : null;
                ConnectionContext? connection;
                try
                {
                    // Balancing is the ResponsiveListener's (it defers, to the microsecond, while a connection
                    // waits); the only other sockets are --reuse-port ones, which the kernel balances.
                    connection = await _inner.AcceptAsync(linked?.Token ?? pauseToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (pauseToken.IsCancellationRequested &&
                                                          !cancellationToken.IsCancellationRequested)
                {
                    _owner.ReleaseSlot(taken: true);
                    continue; // paused while waiting: nothing was accepted
                }
                catch
                {
                    _owner.ReleaseSlot(taken: true);
                    throw;
                }
                if (connection == null)
                {
                    _owner.ReleaseSlot(taken: true);
                    return null;
                }
                // A connection accepted in the instant the listener was unbound or paused is still served.
                _owner.Opened();
                connection.ConnectionClosed.Register(static o => ((ListenerControl)o!).Closed(), _owner);
                return connection;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound = true;
            _owner.ReleaseSlot(taken: false); // an accept loop waiting for a slot sees the unbind and ends
            return _inner.UnbindAsync(cancellationToken);
        }

        private volatile bool _unbound;
        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
