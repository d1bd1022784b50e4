using System.Globalization;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Hosting;

/// <summary>
/// Drops TCP connections whose client does not take what the server sends (--send-timeout) or takes it too slowly
/// (--min-download-rate after --min-rate-grace). One rule for every response path (buffered, spooled, live stream,
/// static file copied or sent with sendfile, HTTP/1.1 and HTTP/2, with or without TLS), because it looks below all of
/// them: once a second it asks the kernel how many bytes of each connection the client's TCP has acknowledged and
/// whether bytes are waiting for it (<see cref="TcpDelivery"/>), and <see cref="DeliveryTracker"/> decides. Aborting
/// the connection ends every pending write on it, so a response spool is closed (and its disk space freed) at once.
/// Unix-socket connections are not watched: their peer is a local proxy, which buffers for its own clients.
/// </summary>
public sealed partial class DeliveryWatchdog : IDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    private readonly DeliveryLimits _limits;
    private readonly ILogger _log;
    private readonly Action<DeliveryRuleBroken>? _dropped;
    private readonly object _gate = new();
    private readonly HashSet<Watched> _connections = new();
    private readonly List<Watched> _batch = new(); // the tick's copy: sampled outside the lock
    private readonly Timer _timer;
    private bool _timerRunning;
    private int _inTick;

    private DeliveryWatchdog(DeliveryLimits limits, ILogger log, Action<DeliveryRuleBroken>? dropped)
    {
        _limits = limits;
        _log = log;
        _dropped = dropped;
        // Started by the first connection and stopped when none is left, so an idle worker is not woken each second.
        _timer = new Timer(static s => ((DeliveryWatchdog)s!).Tick(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>Null when both rules are off, or when this kernel cannot tell what a client acknowledged.</summary>
    public static DeliveryWatchdog? Create(DeliveryLimits limits, ILogger log, Action<DeliveryRuleBroken>? dropped)
    {
        if (!limits.Enforced) return null;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            if (TcpDelivery.Read(probe) == null)
            {
                log.LogWarning("This kernel's TCP_INFO has no tcpi_bytes_acked/tcpi_notsent_bytes (Linux 4.6+): " +
                    "--send-timeout and --min-download-rate are left to Kestrel's own per-write limits");
                return null;
            }
        }
        return new DeliveryWatchdog(limits, log, dropped);
    }

    /// <summary>Connection middleware: watches the connection for as long as Kestrel has it.</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async context =>
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket?.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var watched = new Watched(this, context, socket);
        Add(watched);
        // Unwatched when the connection closes or when Kestrel is done with it, whichever comes first.
        using var closed = context.ConnectionClosed.Register(static w => ((Watched)w!).Unwatch(), watched);
        try { await next(context).ConfigureAwait(false); }
        finally { Remove(watched); }
    };

    private void Add(Watched watched)
    {
        lock (_gate)
        {
            _connections.Add(watched);
            if (_timerRunning) return;
            _timerRunning = true;
            _timer.Change(Period, Period);
        }
    }

    private void Remove(Watched watched)
    {
        lock (_gate) _connections.Remove(watched);
    }

    private void Tick()
    {
        // A tick that overran (thousands of connections on a starved thread pool) is not run twice at once.
        if (Interlocked.Exchange(ref _inTick, 1) == 1) return;
        try
        {
            lock (_gate)
            {
                if (_connections.Count == 0)
                {
                    _timerRunning = false;
                    _timer.Change(Timeout.Infinite, Timeout.Infinite);
                    return;
                }
                _batch.AddRange(_connections);
            }
            var now = Environment.TickCount64 / 1000.0;
            foreach (var watched in _batch)
            {
                // Null: the socket is being closed (its connection is about to be removed).
                if (TcpDelivery.Read(watched.Socket) is not { } sample) continue;
                var verdict = watched.Tracker.Observe(_limits, now, sample.BytesAcked, sample.Waiting);
                if (verdict.Drop) Drop(watched, verdict);
            }
        }
        catch (Exception e)
        {
            _log.LogError("The delivery watchdog failed: {Error}", e); // a bug; the next tick tries again
        }
        finally
        {
            _batch.Clear();
            Volatile.Write(ref _inTick, 0);
        }
    }

    private void Drop(Watched watched, DeliveryVerdict verdict)
    {
        Remove(watched); // once: its next samples would only repeat the verdict
        var peer = watched.Context.RemoteEndPoint?.ToString() ?? "unknown peer";
        var seconds = verdict.Seconds.ToString("0.#", CultureInfo.InvariantCulture);
        string reason;
        if (verdict.Rule == DeliveryRuleBroken.SendTimeout)
        {
            reason = $"the client took nothing for {seconds}s with data waiting (--send-timeout)";
            DroppedStalled(_log, peer, seconds, _limits.SendTimeout);
        }
        else
        {
            var rate = verdict.Rate.ToString("0", CultureInfo.InvariantCulture);
            reason = $"the client read {rate} bytes/s for {seconds}s (--min-download-rate)";
            DroppedSlow(_log, peer, rate, seconds, _limits.MinRate);
        }
        _dropped?.Invoke(verdict.Rule);
        watched.Context.Abort(new ConnectionAbortedException(reason));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Dropped a client that took nothing for {Seconds}s " +
        "while data waited for it (--send-timeout {Limit}): {Peer}")]
    private static partial void DroppedStalled(ILogger log, string peer, string seconds, double limit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Dropped a client that read {Rate} bytes/s for " +
        "{Seconds}s while data waited for it (--min-download-rate {Limit}): {Peer}")]
    private static partial void DroppedSlow(ILogger log, string peer, string rate, string seconds, double limit);

    public void Dispose() => _timer.Dispose();

    /// <summary>One watched connection; its tracker is touched only by the tick.</summary>
    private sealed class Watched(DeliveryWatchdog owner, ConnectionContext context, Socket socket)
    {
        public ConnectionContext Context { get; } = context;
        public Socket Socket { get; } = socket;
        public DeliveryTracker Tracker;
        public void Unwatch() => owner.Remove(this);
    }
}
