using System.Buffers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using static SharpWsgi.Http.ServerAnswer;

namespace SharpWsgi.Hosting;

/// <summary>
/// gunicorn's request limits and the checks stricter than Kestrel's, before the app runs. Kestrel's own limits are
/// set well above ours, so a request over one of ours still reaches <see cref="Check"/> and gets a plain answer that
/// names the limit; Kestrel's stay as the memory backstop (its answers to them have no body).
/// </summary>
public sealed class RequestLimits
{
    /// <summary>The head the whole process may hold per request, whatever the settings say.</summary>
    private const int HardCap = 1 << 20;
    /// <summary>"HTTP/1.1": HTTP/2 has no request line, so its method and :path are measured as HTTP/1.1's
    /// line.</summary>
    private const int Http1VersionLength = 8;

    private readonly int _line, _fields, _fieldSize;
    private readonly long _body;

    public RequestLimits(ServerSettings settings)
    {
        _line = settings.LimitRequestLine;
        _fields = settings.LimitRequestFields;
        _fieldSize = settings.LimitRequestFieldSize;
        _body = settings.LimitRequestBody;
    }

    /// <summary>Kestrel's own limits, set so that ours are met first; and Kestrel's strict line ends.</summary>
    public static void Configure(KestrelServerOptions options, ServerSettings settings)
    {
        // A bare LF ending a line of the head is a 400 (RFC 9112 §2.2 allows refusing it; Kestrel accepts it by
        // default). Kestrel's parser reads the switch when the server is created, which is after this.
        AppContext.SetSwitch("Microsoft.AspNetCore.Server.Kestrel.DisableHttp1LineFeedTerminators", true);
        var limits = options.Limits;
        var line = KestrelLine(settings.LimitRequestLine);
        limits.MaxRequestLineSize = line;
        limits.MaxRequestHeaderCount = settings.LimitRequestFields == 0 ? 10_000
            : Math.Max(1_000, settings.LimitRequestFields * 2);
        // Room for every field at its largest (gunicorn's own bound), plus HTTP/2's 32 bytes a field and :path.
        var fieldSize = settings.LimitRequestFieldSize == 0 ? HardCap : settings.LimitRequestFieldSize;
        var fields = settings.LimitRequestFields == 0 ? 100 : settings.LimitRequestFields;
        var total = (int)Math.Clamp((long)fields * (fieldSize + 64) + line, 32 << 10, HardCap);
        limits.MaxRequestHeadersTotalSize = total;
        // HTTP/2: one decoded name or value, :path included, may be as long as the HTTP/1.1 backstops allow.
        limits.Http2.MaxRequestHeaderFieldSize = Math.Min(total, Math.Max(line, KestrelField(fieldSize)));
        // The HPACK dynamic table is per connection memory; a field larger than it is valid, only not indexed.
        limits.Http2.HeaderTableSize = 4096;
        // Chunked and HTTP/2 bodies are stopped by Kestrel as they cross the limit (a Content-Length is refused
        // in Check first); 0 keeps the host's own choice (no cap).
        if (settings.LimitRequestBody > 0) limits.MaxRequestBodySize = settings.LimitRequestBody;
        // Kestrel refuses to start when a head could not fit in the connection's buffer.
        if (limits.MaxRequestBufferSize is long buffer && buffer < Math.Max(line, total))
            limits.MaxRequestBufferSize = Math.Max(line, total);
    }

    /// <summary>Kestrel's line cap: well above ours, so a longer line still gets our answer.</summary>
    private static int KestrelLine(int ours) => ours == 0 ? HardCap : (int)Math.Clamp(2L * ours, 64 << 10, HardCap);

    private static int KestrelField(int ours) => (int)Math.Clamp(2L * ours, 16 << 10, HardCap);

    /// <summary>Null when the request may run, else the refusal.</summary>
    public ServerAnswer? Check(KestrelExchange exchange)
    {
        // First, for every request: Kestrel reads "+5" as 5, so the text was checked on the raw head, and the
        // connection's guard learns here where the next head starts.
        if (StrictContentLength.Check(exchange) is { } malformed) return Refusal(400, malformed);
        if (_line > 0)
        {
            var version = exchange.Protocol is "HTTP/1.1" or "HTTP/1.0" ? exchange.Protocol.Length : Http1VersionLength;
            var length = exchange.Method.Length + 1 + exchange.RawTarget.Length + 1 + version;
            if (length > _line)
                return Refusal(414, $"the request line is {length} bytes (--limit-request-line {_line})");
        }
        var headers = exchange.KestrelRequestHeaders;
        // RFC 9112 §6.1: Transfer-Encoding on an HTTP/1.0 request means faulty framing (an HTTP/1.0 hop would read
        // the body by another rule): refused, and the connection closed like every answer here.
        if (exchange.Protocol == "HTTP/1.0" && headers.ContainsKey("Transfer-Encoding"))
            return Refusal(400, "Transfer-Encoding on an HTTP/1.0 request (RFC 9112 section 6.1: faulty framing)");
        var count = 0;
        foreach (var (name, values) in headers)
        {
            count += values.Count;
            for (var i = 0; i < values.Count; i++)
            {
                var value = values[i] ?? "";
                // The field as a line: name, ": ", value, CRLF (gunicorn's measure, for the usual single space).
                var size = name.Length + 2 + value.Length + 2;
                if (_fieldSize > 0 && size > _fieldSize)
                    return Refusal(431, $"header field {Shown(name)} is {size} bytes (--limit-request-field_size " +
                        $"{_fieldSize})");
                // CR, LF and NUL never get this far (Kestrel refuses them); BEL and DEL would.
                var at = HeaderSyntax.IndexOfControl(value);
                if (at >= 0)
                    return Refusal(400, $"header field {Shown(name)} has the control character 0x{(int)value[at]:X2} " +
                        "in its value");
            }
        }
        if (_fields > 0 && count > _fields)
            return Refusal(431, $"the request has {count} header fields (--limit-request-fields {_fields})");
        if (_body > 0)
        {
            exchange.BodyLimit = _body;
            if (headers.ContentLength is long declared)
            {
                if (declared > _body)
                {
                    // Kestrel would otherwise reset an HTTP/2 stream as its DATA crosses the same cap, and the reset
                    // can overtake this 413 (curl then sees a framing error): the cap is lifted for the answer,
                    // and Kestrel drops the unread body once the answer is complete.
                    if (exchange.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } kestrelCap)
                        kestrelCap.MaxRequestBodySize = null;
                    return BodyOverLimit(_body, declared);
                }
            }
            else if (exchange.Protocol is "HTTP/1.1" or "HTTP/1.0" &&
                     exchange.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } cap)
            {
                // Kestrel counts a chunked body's framing against its cap: our reader counts the body itself.
                cap.MaxRequestBodySize = null;
                exchange.CountBody = true;
            }
        }
        return null;
    }

    // Fields a trailer may not carry (RFC 9110 §6.5.1): framing, routing, authentication and request modifiers.
    // Kestrel keeps trailers apart from the head, but a hop that merges them would be misled. Content metadata
    // (Content-Type) stays allowed, as gunicorn allows it (its corpus case valid/012).
    private static readonly HashSet<string> ForbiddenTrailerFields = new(StringComparer.OrdinalIgnoreCase)
    {
        "Transfer-Encoding", "Content-Length", "Host", "TE", "Trailer", "Authorization", "Proxy-Authorization",
        "Cookie", "Expect", "Max-Forwards", "Range", "If-Match", "If-None-Match", "If-Modified-Since",
        "If-Unmodified-Since", "If-Range",
    };

    /// <summary>Once a chunked HTTP/1.1 body has been read to its end: the refusal when its trailer section carries a
    /// field a trailer may not, else null.</summary>
    public static RequestBodyException? CheckTrailers(IFeatureCollection features)
    {
        if (features.Get<IHttpRequestTrailersFeature>() is not { Available: true } trailers) return null;
        foreach (var (name, _) in trailers.Trailers)
            if (ForbiddenTrailerFields.Contains(name))
                return new RequestBodyException(Refusal(400,
                    $"the trailer section carries {Shown(name)}, which a trailer may not (RFC 9110 section 6.5.1)"));
        return null;
    }

    /// <summary>A name as the answer may quote it (it is a token, but may be long).</summary>
    private static string Shown(string name) => name.Length > 64 ? name[..64] + "..." : name;
}
