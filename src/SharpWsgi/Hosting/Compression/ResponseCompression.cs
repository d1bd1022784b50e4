using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting;

/// <summary>
/// --compress: gzip and brotli on the fly for the app's responses, decided as the app's head is committed (the rule is
/// <see cref="CompressionRule"/>'s: compressible type, size, not encoded, not a range, not a live stream, not
/// no-transform; br or gzip by Accept-Encoding). A compressed head loses its Content-Length (the body is framed by
/// chunks or END_STREAM) and Accept-Ranges, its strong ETag becomes weak, and it says Content-Encoding and
/// Vary: Accept-Encoding; the body then flows through a <see cref="CompressedBody"/>. Files the server sends itself
/// (--static, X-Accel-Redirect) are not compressed on the fly: their precompressed siblings are.
/// </summary>
public sealed class ResponseCompression
{
    private readonly long _minimumSize;
    private readonly long _bufferSize;

    private ResponseCompression(long minimumSize, long bufferSize)
    {
        _minimumSize = minimumSize;
        _bufferSize = bufferSize;
    }

    /// <summary>Null without --compress (app heads are then not looked at).</summary>
    public static ResponseCompression? Create(ServerSettings settings) => settings.Compress
        ? new ResponseCompression(settings.CompressMinSize, Math.Max(64 << 10, settings.ResponseBufferSize))
        : null;

    /// <summary>The app's head, complete (on the Python thread, before any body byte): edits it and switches the
    /// exchange's body to a compressor when this response is to be compressed.</summary>
    internal void Commit(KestrelExchange exchange, in ResponseHead head)
    {
        var headers = exchange.Response.Headers;
        var candidate = new CompressionCandidate(exchange.Protocol, head.Status, head.BodyAllowed, head.LiveStream,
            head.ContentLength, headers.ContentType.ToString(), headers.ContentEncoding.ToString(),
            headers.CacheControl.ToString(), headers.ContentRange.Count > 0);
        var choice = CompressionRule.Decide(candidate, exchange.KestrelRequestHeaders.AcceptEncoding, _minimumSize);
        if (choice.Vary) headers.Vary = HeaderSyntax.AddToList(headers.Vary.ToString(), "Accept-Encoding");
        if (choice.Coding == null) return;
        headers.ContentEncoding = choice.Coding;
        headers.ContentLength = null;
        headers.Remove("Accept-Ranges");
        if (headers.ETag.Count == 1) headers.ETag = Validators.Weaken(headers.ETag.ToString());
        exchange.UseCompressedBody(new CompressedBody(exchange.ResponseBodyFeature.Writer, choice.Coding, _bufferSize));
    }
}
