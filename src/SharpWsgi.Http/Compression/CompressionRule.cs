namespace SharpWsgi.Http;

/// <summary>The facts of one response head that decide on-the-fly compression.</summary>
/// <param name="ContentLength">The head's Content-Length; -1 when the length is unknown (a stream).</param>
/// <param name="BodyAllowed">False for HEAD and the bodiless statuses.</param>
/// <param name="LiveStream">text/event-stream or X-Accel-Buffering: no: every chunk must reach the client at once.
/// </param>
public readonly record struct CompressionCandidate(
    string Protocol, int Status, bool BodyAllowed, bool LiveStream, long ContentLength, string? ContentType,
    string? ContentEncoding, string? CacheControl, bool HasContentRange);

/// <summary>What to do with one response: say Vary: Accept-Encoding (the representation depends on it), and
/// compress it with Coding (br or gzip) or not at all (null).</summary>
public readonly record struct CompressionChoice(bool Vary, string? Coding)
{
    public static readonly CompressionChoice Leave = new(false, null);
}

/// <summary>
/// --compress: which responses are compressed on the fly, and with what. A response qualifies when its type is
/// compressible, it is not encoded already, not a range, not a live stream, not marked no-transform, and not known
/// to be smaller than the minimum (a stream of unknown length qualifies). Every qualifying response says
/// Vary: Accept-Encoding, whether or not this client gets it compressed, so a cache keeps the variants apart.
/// This request gets br or gzip by its Accept-Encoding, unless it is HEAD (no body to compress) or HTTP/1.0 (no
/// chunked framing for a body whose compressed length is unknown: nginx's gzip_http_version 1.1 rule).
/// </summary>
public static class CompressionRule
{
    public static CompressionChoice Decide(in CompressionCandidate response, IReadOnlyList<string?> acceptEncoding,
        long minimumSize)
    {
        // 206 is a range of the identity bytes; 1xx, 204, 205 and 304 have no body at all.
        if (response.Status is < 200 or 204 or 205 or 206 or 304) return CompressionChoice.Leave;
        if (!string.IsNullOrEmpty(response.ContentEncoding) || response.HasContentRange) return CompressionChoice.Leave;
        if (response.LiveStream || HeaderSyntax.ListContains(response.CacheControl, "no-transform"))
            return CompressionChoice.Leave;
        if (!CompressibleTypes.Contains(response.ContentType)) return CompressionChoice.Leave;
        if (response.ContentLength >= 0 && response.ContentLength < minimumSize) return CompressionChoice.Leave;
        if (!response.BodyAllowed || response.Protocol == "HTTP/1.0") return new(Vary: true, Coding: null);
        return new(Vary: true, AcceptEncoding.Preferred(acceptEncoding));
    }
}
