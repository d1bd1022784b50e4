using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Hosting;

/// <summary>
/// PROXY protocol v1/v2 as connection middleware, before TLS and HTTP (--proxy-protocol). The header's source
/// becomes the connection's remote end point and its destination the local one, so Kestrel's connection feature,
/// and through it REMOTE_ADDR/REMOTE_PORT (and the Host-less SERVER_NAME/SERVER_PORT fallback), follow. Exactly the
/// header's bytes are consumed; TLS or HTTP reads the rest. Anything the server cannot trust is closed before
/// Kestrel's HTTP layer sees a byte, so no request reaches the app.
/// </summary>
public static partial class ProxyProtocol
{
    /// <param name="allowed">--proxy-allow-from.</param>
    /// <param name="timeout">How long the whole header may take (<see cref="TimeoutPolicy.RequestHead"/>).</param>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(ProxyProtocolMode mode,
        TrustedPeers allowed, TimeSpan timeout, ILogger log)
    {
        var required = mode == ProxyProtocolMode.Required;
        return next => async context =>
        {
            // Unix sockets have no IP peer: whoever can open the socket file is local, and allowed.
            var peer = context.RemoteEndPoint as IPEndPoint;
            var trusted = peer == null || allowed.Contains(peer.Address);
            if (!trusted && required)
            {
                Close(context, log, "peer not in --proxy-allow-from");
                return;
            }
            var (outcome, header, reason) = await ReadAsync(context.Transport.Input, timeout, trusted, required)
                .ConfigureAwait(false);
            if (outcome == Outcome.Reject)
            {
                Close(context, log, reason);
                return;
            }
            if (outcome == Outcome.Header && !header.UseSocketAddresses)
            {
                context.RemoteEndPoint = header.Source;
                context.LocalEndPoint = header.Destination;
            }
            await next(context).ConfigureAwait(false);
        };
    }

    private enum Outcome { Header, NoHeader, Reject }

    /// <summary>
    /// Reads until the header is decided. Untrusted peers are only classified (a PROXY header from them is
    /// closed, anything else passes in optional mode); trusted ones are parsed. Usually one read holds it all.
    /// </summary>
    private static async ValueTask<(Outcome, ProxyHeader, string?)> ReadAsync(PipeReader input, TimeSpan timeout,
        bool trusted, bool required)
    {
        CancellationTokenSource? timer = null;
        try
        {
            while (true)
            {
                if (!input.TryRead(out var result))
                {
                    timer ??= new CancellationTokenSource(timeout);
                    try { result = await input.ReadAsync(timer.Token).ConfigureAwait(false); }
                    catch (OperationCanceledException)
                    {
                        return (Outcome.Reject, default, "no complete PROXY header within --header-timeout");
                    }
                }
                var buffer = result.Buffer;
                ProxyHeader header = default;
                int length = 0;
                string? error = null;
                var status = trusted
                    ? ProxyHeaderParser.Parse(buffer, out header, out length, out error)
                    : ProxyHeaderParser.Detect(buffer, out _);
                switch (status)
                {
                    case ProxyParseStatus.Complete when trusted:
                        input.AdvanceTo(buffer.GetPosition(length)); // the rest stays for TLS or HTTP
                        return (Outcome.Header, header, null);
                    case ProxyParseStatus.Complete:
                        input.AdvanceTo(buffer.Start);
                        return (Outcome.Reject, default, "PROXY header from a peer not in --proxy-allow-from");
                    case ProxyParseStatus.NotProxy:
                        input.AdvanceTo(buffer.Start); // nothing consumed: the next reader sees every byte
                        return required
                            ? (Outcome.Reject, default, "no PROXY header (--proxy-protocol on)")
                            : (Outcome.NoHeader, default, null);
                    case ProxyParseStatus.Invalid:
                        input.AdvanceTo(buffer.Start);
                        return (Outcome.Reject, default, "malformed PROXY header: " + error);
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    input.AdvanceTo(buffer.Start);
                    // A connect-and-close (a port check) is not worth a log line.
                    return (Outcome.Reject, default,
                        buffer.IsEmpty ? null : "truncated PROXY header (connection closed)");
                }
                input.AdvanceTo(buffer.Start, buffer.End); // a prefix so far: wait for more
            }
        }
        finally { timer?.Dispose(); }
    }

    private static void Close(ConnectionContext context, ILogger log, string? reason)
    {
        if (reason != null) Rejected(log, context.RemoteEndPoint?.ToString() ?? "unix socket", reason);
        context.Abort(new ConnectionAbortedException(reason ?? "closed before a PROXY header"));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "PROXY protocol: closed a connection from {Peer}: {Reason}")]
    private static partial void Rejected(ILogger log, string peer, string reason);
}
