using System.Net;
using Microsoft.AspNetCore.Connections;

namespace SharpWsgi.Hosting;

/// <summary>
/// Wraps Kestrel's socket transport so the process can stop accepting new connections while the ones it
/// has finish their requests (Kestrel's StopAsync does both at once), and counts open connections so a
/// retiring worker knows when its last client has gone.
/// </summary>
public sealed class ListenerControl : IConnectionListenerFactory
{
    private readonly IConnectionListenerFactory _inner;
    private readonly List<IConnectionListener> _listeners = new();
    private int _open;
    private volatile bool _stopped;

    private readonly AcceptBalance? _balance;

    public ListenerControl(IConnectionListenerFactory inner, AcceptBalance? balance)
    {
        _inner = inner;
        _balance = balance;
        _balance?.Publish(0);
    }

    private void Opened() { var n = Interlocked.Increment(ref _open); if (!_stopped) _balance?.Publish(n); }
    private void Closed() { var n = Interlocked.Decrement(ref _open); if (!_stopped) _balance?.Publish(n); }

    public int OpenConnections => Volatile.Read(ref _open);

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = new CountingListener(await _inner.BindAsync(endpoint, cancellationToken).ConfigureAwait(false), this);
        lock (_listeners) _listeners.Add(listener);
        return listener;
    }

    /// <summary>Stops accepting: the listening sockets stay open in other processes; connections already accepted go on.</summary>
    public async Task StopAcceptingAsync()
    {
        _stopped = true;
        _balance?.Publish(-1); // no longer accepting: not a candidate for the others to defer to
        IConnectionListener[] all;
        lock (_listeners) all = _listeners.ToArray();
        foreach (var l in all)
        {
            try { await l.UnbindAsync().ConfigureAwait(false); } catch (Exception) { }
        }
    }

    private sealed class CountingListener : IConnectionListener
    {
        private readonly IConnectionListener _inner;
        private readonly ListenerControl _owner;
        public CountingListener(IConnectionListener inner, ListenerControl owner) { _inner = inner; _owner = owner; }
        public EndPoint EndPoint => _inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            if (_owner._stopped) return null;
            if (_owner._balance != null) await _owner._balance.DeferWhileAheadAsync(_owner.OpenConnections, cancellationToken).ConfigureAwait(false);
            var connection = await _inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
            if (connection == null) return null;
            // A connection accepted in the instant the listener was unbound is still served (with Connection: close).
            _owner.Opened();
            connection.ConnectionClosed.Register(static o => ((ListenerControl)o!).Closed(), _owner);
            return connection;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => _inner.UnbindAsync(cancellationToken);
        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
