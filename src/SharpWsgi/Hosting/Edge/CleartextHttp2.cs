using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace SharpWsgi.Hosting;

/// <summary>
/// HTTP/1.1 and prior-knowledge h2c on one cleartext port. Kestrel picks HTTP/2 on a listener that has both only
/// when ALPN said "h2", so this connection middleware looks at the first bytes: the HTTP/2 connection preface
/// makes it present the ALPN answer Kestrel looks for; anything else goes on as HTTP/1.1. Nothing is consumed, so
/// Kestrel reads the same bytes. The scheme of such requests is decided by <see cref="KestrelExchange.IsTls"/>,
/// which looks for the TLS handshake that only a real TLS connection has.
/// </summary>
public static class CleartextHttp2
{
    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(TimeSpan timeout) => next => async context =>
    {
        var choice = await ChooseAsync(context.Transport.Input, timeout).ConfigureAwait(false);
        if (choice == Choice.TimedOut)
        {
            context.Abort(new ConnectionAbortedException("no request bytes within --header-timeout"));
            return;
        }
        if (choice == Choice.Http2)
        {
            context.Features.Set<ITlsConnectionFeature>(NoTls.Instance);
            context.Features.Set<ITlsApplicationProtocolFeature>(NoTls.Instance);
        }
        await next(context).ConfigureAwait(false);
    };

    private enum Choice { Http1, Http2, TimedOut }

    private static async ValueTask<Choice> ChooseAsync(PipeReader input, TimeSpan timeout)
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
                    catch (OperationCanceledException) { return Choice.TimedOut; }
                }
                var buffer = result.Buffer;
                var decided = Classify(buffer, out var http2);
                if (decided || result.IsCompleted || result.IsCanceled)
                {
                    input.AdvanceTo(buffer.Start); // nothing consumed or examined: Kestrel's first read sees it all
                    return decided && http2 ? Choice.Http2 : Choice.Http1;
                }
                input.AdvanceTo(buffer.Start, buffer.End); // a prefix of the preface so far: wait for more
            }
        }
        finally { timer?.Dispose(); }
    }

    /// <summary>True once the bytes say which protocol: the whole preface (HTTP/2) or a byte that differs.</summary>
    internal static bool Classify(ReadOnlySequence<byte> buffer, out bool http2)
    {
        Span<byte> head = stackalloc byte[24];
        var length = (int)Math.Min(buffer.Length, head.Length);
        buffer.Slice(0, length).CopyTo(head);
        http2 = false;
        if (!Preface[..length].SequenceEqual(head[..length])) return true;
        if (length < Preface.Length) return false;
        http2 = true;
        return true;
    }

    /// <summary>What Kestrel's protocol choice reads; there is no TLS, no certificate.</summary>
    private sealed class NoTls : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public static readonly NoTls Instance = new();
        private static readonly byte[] H2 = "h2"u8.ToArray();
        public X509Certificate2? ClientCertificate { get => null; set { } }
        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) =>
            Task.FromResult<X509Certificate2?>(null);
        public ReadOnlyMemory<byte> ApplicationProtocol => H2;
    }
}
