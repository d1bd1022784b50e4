using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting;

/// <summary>
/// A listening socket shared with the other workers, accepted from only while this worker's Python can run.
/// gunicorn's accept loop is Python, so a worker frozen in a C call that holds the GIL takes no new connection and
/// its siblings get them all. Kestrel's accept needs no Python, so a frozen worker would go on taking connections
/// whose requests then wait for it. Here, once a connection waits in the socket's queue, the worker first asks for
/// a proof of life and accepts only then; a frozen worker leaves the connection in the queue for a sibling. A
/// request finished within <see cref="RecentLife"/> is proof enough (a busy worker pays nothing); otherwise the
/// monitor thread must take the GIL after the ask (WsgiGateway.WaitResponsive), and that proof covers what is
/// accepted within <see cref="ProofLifetime"/> of asking for it. The few connections a worker may take in the
/// instant it freezes are not lost: their requests wait in its queue, which <see cref="StallHandover"/> sends to a
/// sibling. The wait runs on a thread of this listener's own (poll(2) on the socket), never on Kestrel's.
/// </summary>
internal sealed class ResponsiveListener : IConnectionListener
{
    /// <summary>How long after a proof was asked for an accept may still rely on it.</summary>
    private static readonly long ProofLifetime = Stopwatch.Frequency / 1000;
    /// <summary>How long a worker that is ahead (AcceptBalance) leaves a waiting connection to the others.</summary>
    private const int AheadWaitMicroseconds = 200;
    /// <summary>How recent a finished request (or monitor pass) must be to count as a proof by itself.</summary>
    private static readonly long RecentLife = Stopwatch.Frequency / 500;
    /// <summary>How long one ask waits before the queue is looked at again (the ask stays open meanwhile).</summary>
    private static readonly TimeSpan ProofWait = TimeSpan.FromMilliseconds(200);

    private readonly Socket _listenSocket;
    private readonly int _listenFd;
    private readonly int _wakeFd;
    private readonly SocketConnectionContextFactory _factory;
    private readonly Func<TimeSpan, bool> _proveResponsive;
    private readonly Func<long> _lastSignOfLife;
    private readonly Func<bool> _isAhead;
    private readonly ILogger _log;
    private readonly object _gate = new();
    private readonly Queue<ConnectionContext> _unclaimed = new();
    private TaskCompletionSource<ConnectionContext?>? _waiter;
    private long _provenSince; // a Stopwatch timestamp (0: never)
    private readonly Thread _thread;
    private readonly object _inline = new();
    private readonly bool _tcp;
    private volatile bool _closed;
    private bool _frozenLogged;

    public EndPoint EndPoint { get; }

    public ResponsiveListener(FileHandleEndPoint endpoint, SocketConnectionContextFactory factory,
        Func<TimeSpan, bool> proveResponsive, Func<long> lastSignOfLife, Func<bool> isAhead, ILogger log)
    {
        _lastSignOfLife = lastSignOfLife;
        _isAhead = isAhead;
        // Not owned, as with Kestrel's own listener: ServerHost closes the descriptors it was handed.
        _listenSocket = new Socket(new SafeSocketHandle((nint)endpoint.FileHandle, ownsHandle: false));
        _listenFd = (int)endpoint.FileHandle;
        // Every worker polls the shared socket and the first to accept wins: the others' accepts must not block.
        Libc.MakeNonBlocking(_listenFd);
        _wakeFd = Libc.EventFd();
        if (_wakeFd < 0) throw new IOException($"eventfd failed (errno {Marshal.GetLastPInvokeError()})");
        _factory = factory;
        _proveResponsive = proveResponsive;
        _log = log;
        EndPoint = _listenSocket.LocalEndPoint ?? endpoint;
        _tcp = EndPoint is IPEndPoint;
        _thread = new Thread(AcceptLoop) { IsBackground = true, Name = "accept-when-responsive" };
        _thread.Start();
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        // Under load a connection is usually waiting and Python was just seen running: accepted here, at once, with
        // no trip through the accept thread (two thread wake-ups per connection cost a quarter of the fresh-
        // connection rate).
        if (TryAcceptInline() is { } accepted) return accepted;
        TaskCompletionSource<ConnectionContext?> waiter;
        lock (_gate)
        {
            if (_unclaimed.TryDequeue(out var ready)) return ready;
            if (_closed) return null;
            waiter = new TaskCompletionSource<ConnectionContext?>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiter = waiter;
        }
        Libc.Signal(_wakeFd);
        await using var cancel = cancellationToken.Register(() =>
        {
            lock (_gate)
                if (_waiter == waiter) _waiter = null;
            waiter.TrySetCanceled(cancellationToken);
        });
        return await waiter.Task.ConfigureAwait(false);
    }

    private void AcceptLoop()
    {
        while (!_closed)
        {
            bool wanted;
            lock (_gate) wanted = _waiter != null;
            // Nobody asked (paused, at the connection limit, or between accepts): wait for an ask, not a client.
            var (pending, woken) = wanted
                ? Libc.PollReadable(_listenFd, _wakeFd, -1)
                : (false, Libc.PollReadable(_wakeFd, _wakeFd, -1).First);
            if (woken) Libc.Drain(_wakeFd);
            if (_closed || !pending) continue;
            if (!ProofIsFresh(Stopwatch.GetTimestamp()))
            {
                var asked = Stopwatch.GetTimestamp();
                if (!_proveResponsive(ProofWait))
                {
                    if (!_frozenLogged)
                        _log.LogWarning("Worker {Pid}: Python is not responsive; connections are left to the other " +
                            "workers until it is", Environment.ProcessId);
                    _frozenLogged = true;
                    continue;
                }
                if (_frozenLogged)
                    _log.LogInformation("Worker {Pid}: Python is responsive again; accepting", Environment.ProcessId);
                _frozenLogged = false;
                _provenSince = asked;
            }
            if (_isAhead())
            {
                // Another worker has clearly fewer connections: a moment for it to take this one (it is woken too),
                // then this worker takes it if it is still there. Evens out bursts of keep-alive connections.
                if (Libc.WaitReadable(_wakeFd, AheadWaitMicroseconds)) Libc.Drain(_wakeFd);
                if (!Libc.WaitReadable(_listenFd, 0)) continue;
            }
            lock (_gate)
                if (_waiter == null) continue; // the ask was cancelled while the proof came
            var fd = Libc.AcceptNonBlocking(_listenFd);
            if (fd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is not (Libc.EAGAIN or Libc.EINTR or 103 /* ECONNABORTED */))
                {
                    // Out of descriptors (EMFILE/ENFILE) and the like: the connection stays queued; do not spin.
                    _log.LogError("Worker {Pid}: accept failed (errno {Errno}); retrying", Environment.ProcessId,
                        errno);
                    Thread.Sleep(100);
                }
                continue; // EAGAIN: a sibling took it
            }
            Deliver(Wrap(fd));
        }
        TaskCompletionSource<ConnectionContext?>? last;
        lock (_gate)
        {
            last = _waiter;
            _waiter = null;
        }
        last?.TrySetResult(null);
    }

    private bool ProofIsFresh(long now) =>
        now - _provenSince <= ProofLifetime || now - _lastSignOfLife() <= RecentLife;

    /// <summary>A connection already waiting, accepted on the caller's thread when Python's proof is fresh; null
    /// otherwise (the accept thread then waits for one, and for the proof).</summary>
    private ConnectionContext? TryAcceptInline()
    {
        int fd;
        lock (_inline) // UnbindAsync takes it too: no accept on a descriptor being closed
        {
            if (_closed || !ProofIsFresh(Stopwatch.GetTimestamp()) || _isAhead()) return null;
            lock (_gate)
                if (_unclaimed.Count > 0) return null;
            fd = Libc.AcceptNonBlocking(_listenFd);
        }
        return fd < 0 ? null : Wrap(fd);
    }

    private ConnectionContext Wrap(int fd)
    {
        var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        if (_tcp) socket.NoDelay = true; // as Kestrel's own listener does
        return _factory.Create(socket);
    }

    /// <summary>To the accept that asked; one cancelled meanwhile leaves it for the next (never dropped).</summary>
    private void Deliver(ConnectionContext connection)
    {
        lock (_gate)
        {
            var waiter = _waiter;
            _waiter = null;
            if (waiter == null || !waiter.TrySetResult(connection)) _unclaimed.Enqueue(connection);
        }
    }

    /// <summary>Ends the accept loop, and returns once it has (ServerHost may close the descriptor next: the loop must
    /// never poll or accept on a number reused meanwhile). It may be waiting for a proof (at most
    /// <see cref="ProofWait"/>).</summary>
    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        lock (_inline) _closed = true;
        Libc.Signal(_wakeFd);
        await Task.Run(() => _thread.Join(TimeSpan.FromSeconds(5)), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        if (!_thread.IsAlive)
        {
            _listenSocket.Dispose();
            Libc.Close(_wakeFd);
        }
        lock (_gate)
            while (_unclaimed.TryDequeue(out var connection)) connection.Abort();
    }
}

/// <summary>
/// Binds the sockets the supervisor handed down (shared with the other workers) as <see cref="ResponsiveListener"/>s;
/// anything else (--reuse-port sockets of this worker's own, where the kernel picks the worker) goes to Kestrel's
/// socket transport.
/// </summary>
internal sealed class ResponsiveListenerFactory : IConnectionListenerFactory
{
    private readonly IConnectionListenerFactory _sockets;
    private readonly SocketConnectionContextFactory _factory;
    private readonly Func<TimeSpan, bool> _proveResponsive;
    private readonly Func<long> _lastSignOfLife;
    private readonly ILogger _log;

    /// <summary>Whether another worker has clearly fewer connections (AcceptBalance); set once the listener control
    /// that counts them exists.</summary>
    public Func<bool> IsAhead { get; set; } = () => false;

    public ResponsiveListenerFactory(IConnectionListenerFactory sockets, SocketTransportOptions options,
        Func<TimeSpan, bool> proveResponsive, Func<long> lastSignOfLife, ILoggerFactory loggers)
    {
        _sockets = sockets;
        _proveResponsive = proveResponsive;
        _lastSignOfLife = lastSignOfLife;
        _log = loggers.CreateLogger("sharpwsgi.accept");
        _factory = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions
        {
            IOQueueCount = options.IOQueueCount,
            WaitForDataBeforeAllocatingBuffer = options.WaitForDataBeforeAllocatingBuffer,
            MaxReadBufferSize = options.MaxReadBufferSize,
            MaxWriteBufferSize = options.MaxWriteBufferSize,
            UnsafePreferInlineScheduling = options.UnsafePreferInlineScheduling,
        }, loggers.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"));
    }

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is FileHandleEndPoint handle)
            return ValueTask.FromResult<IConnectionListener>(
                new ResponsiveListener(handle, _factory, _proveResponsive, _lastSignOfLife, () => IsAhead(), _log));
        return _sockets.BindAsync(endpoint, cancellationToken);
    }
}
