using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Net.Http.Headers;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>Kestrel's server-wide options: header encodings, buffer sizes, data rates, timeouts, HTTP/2 windows and
/// the request head limits. Listeners are added by <see cref="ServerListeners"/>.</summary>
internal static class KestrelSetup
{
    public static KestrelServerOptions Options(ServerSettings settings, TimeoutPolicy timeouts,
        IServiceProvider services)
    {
        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            AllowSynchronousIO = false,
            ApplicationServices = services,
            // PEP 3333 strings are latin-1: header bytes map 1:1 to code points both ways. Content-Length keeps
            // Kestrel's own byte parser: with an encoding Kestrel decodes it into 20 chars (a longer value aborts
            // the connection with a logged stack trace) and parses white space (VT, FF) around the digits.
            RequestHeaderEncodingSelector = static name => IsContentLength(name) ? null : Encoding.Latin1,
            ResponseHeaderEncodingSelector = _ => Encoding.Latin1,
            // h2c requests say ":scheme: http" on a connection Kestrel is told is HTTP/2 by ALPN (CleartextHttp2);
            // the scheme the app sees is decided by the connection itself (KestrelExchange.Scheme), not this header.
            AllowAlternateSchemes = true,
        };
        var limits = options.Limits;
        limits.MaxRequestBodySize = null; // spooled or streamed past the memory buffer: no size cap by default
        // A Content-Length body up to --body-buffer-size waits in the connection's input pipe: it must fit.
        limits.MaxRequestBufferSize = Math.Max(1 << 20, settings.BodyBufferSize + (64 << 10));
        // The in-memory part of the elastic response buffer: flushes complete at once until this much waits.
        limits.MaxResponseBufferSize = Math.Max(64 << 10, settings.ResponseBufferSize);
        limits.MinRequestBodyDataRate = timeouts.MinUploadRate;
        limits.MinResponseDataRate = timeouts.MinDownloadRate;
        limits.KeepAliveTimeout = timeouts.KeepAlive;
        limits.RequestHeadersTimeout = timeouts.RequestHead;
        limits.Http2.MaxStreamsPerConnection = settings.Http2MaxConcurrentStreams;
        limits.Http2.InitialStreamWindowSize = (int)Math.Clamp(settings.Http2StreamWindow, 65535, 1 << 30);
        limits.Http2.InitialConnectionWindowSize = (int)Math.Clamp(
            Math.Max(settings.Http2ConnectionWindow, settings.Http2StreamWindow), 65535, 1 << 30);
        RequestLimits.Configure(options, settings);
        return options;
    }

    private static bool IsContentLength(string name) =>
        name.Equals(HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase);
}
