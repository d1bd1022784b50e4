using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting;

/// <summary>
/// Requests Kestrel answers itself (a malformed request line or header, a head past its own limits): the
/// application never sees them, so their access log line and metrics come from Kestrel's "bad request" log event,
/// which names only the connection. A connection middleware keeps each open connection's peer for that lookup
/// (one dictionary entry per connection, nothing per request); it is installed only when a log or metrics want it.
/// </summary>
internal sealed class KestrelRefusals
{
    private readonly ConcurrentDictionary<string, string> _peers = new();
    private readonly AccessLog? _accessLog;
    private readonly WorkerMetrics? _metrics;

    public KestrelRefusals(AccessLog? accessLog, WorkerMetrics? metrics)
    {
        _accessLog = accessLog;
        _metrics = metrics;
    }

    /// <summary>After the PROXY header (its peer is the client), before TLS and HTTP.</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        var peer = connection.RemoteEndPoint switch
        {
            IPEndPoint ip => (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString(),
            _ => "-", // a unix socket's peer has no address; gunicorn's h is empty there too
        };
        _peers[connection.ConnectionId] = peer;
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            _peers.TryRemove(connection.ConnectionId, out _);
        }
    };

    /// <summary>Kestrel's ConnectionBadRequest event: its exception carries the status it answered.</summary>
    public void Record(string? connectionId, Exception exception)
    {
        var status = exception is Microsoft.AspNetCore.Http.BadHttpRequestException bad ? bad.StatusCode : 400;
        if (_metrics != null)
        {
            _metrics.Count(MetricsTable.RequestIndex("-", status));
            _metrics.Count(MetricsTable.LimitRefusals);
        }
        var peer = connectionId != null && _peers.TryGetValue(connectionId, out var p) ? p : "-";
        _accessLog?.LogRefusal(peer, status, exception.Message);
    }
}
