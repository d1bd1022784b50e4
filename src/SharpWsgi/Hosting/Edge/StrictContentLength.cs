using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace SharpWsgi.Hosting;

/// <summary>
/// A Content-Length must be digits only. Kestrel's number parser takes a sign ("+5", "-0") and keeps only the number,
/// so the text is checked on the raw bytes: this connection middleware puts a <see cref="ContentLengthGuard"/> over
/// each HTTP/1.x connection's decrypted input, and <see cref="Check"/>, the first thing every request runs, reads
/// its verdict and tells it how the body is framed (from Kestrel's own parse), so the guard never frames a body
/// itself. HTTP/2 connections pass untouched: DATA frames frame their bodies.
/// </summary>
public static class StrictContentLength
{
    private static ReadOnlySpan<byte> Http2Alpn => "h2"u8;

    /// <summary>Last in a listener's chain: after the PROXY header and TLS (plain HTTP bytes), and after ALPN or
    /// h2c sniffing has said whether the connection is HTTP/2.</summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => context =>
    {
        var alpn = context.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol ?? default;
        if (alpn.Span.SequenceEqual(Http2Alpn)) return next(context);
        var guard = new ContentLengthGuard(context.Transport.Input);
        context.Transport = new GuardedTransport(guard, context.Transport.Output);
        // Request features fall back to the connection's: Check finds it from the exchange.
        context.Features.Set(guard);
        return next(context);
    };

    /// <summary>
    /// Kestrel has parsed the request's head: the refusal (why) when a Content-Length in it was not digits only,
    /// else null, having told the guard where the next head starts: after the Content-Length body, or where a
    /// chunked body is seen to end (if it is not before the response starts, the connection closes after it).
    /// </summary>
    internal static string? Check(KestrelExchange exchange)
    {
        if (exchange.IsHttp2 || exchange.Features.Get<ContentLengthGuard>() is not { } guard) return null;
        var verdict = guard.EndOfHead(out var problem);
        if (verdict == HeadVerdict.Refused) return problem;
        if (verdict == HeadVerdict.Valid)
        {
            var headers = exchange.KestrelRequestHeaders;
            // Kestrel's framing: Transfer-Encoding (which it requires to end in chunked) wins over Content-Length.
            // An upgrade request's body is empty until the app upgrades, which a WSGI app cannot.
            if (headers.TransferEncoding.Count == 0)
            {
                guard.BodyFollows(headers.ContentLength ?? 0);
                return null;
            }
            guard.ChunkedBodyFollows();
        }
        // A chunked body, or a guard out of step: unless the next head is known when the response starts, the
        // response closes the connection.
        exchange.Response.OnStarting(CloseUnlessNextHeadKnown, exchange);
        return null;
    }

    /// <summary>A reader saw the end of the request body (chunked or not).</summary>
    public static void BodyEnded(IFeatureCollection features) => features.Get<ContentLengthGuard>()?.ChunkedBodyEnded();

    // Kestrel would drain the rest of the body and read the next request at an offset the guard cannot know.
    private static readonly Func<object, Task> CloseUnlessNextHeadKnown = static state =>
    {
        var exchange = (KestrelExchange)state;
        if (exchange.Features.Get<ContentLengthGuard>() is { NextHeadKnown: false })
            exchange.Response.Headers.Connection = "close";
        return Task.CompletedTask;
    };

    private sealed class GuardedTransport(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
