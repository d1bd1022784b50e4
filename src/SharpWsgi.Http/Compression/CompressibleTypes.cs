namespace SharpWsgi.Http;

/// <summary>
/// Media types worth compressing on the fly: text and the structured text formats (JSON, JavaScript, XML, SVG) and
/// the few binary formats that are not compressed already (icons, bitmaps, TrueType/OpenType fonts, wasm). Images,
/// audio, video, archives and woff/woff2 are compressed by their own format: compressing them again costs CPU for
/// nothing. A small fixed table, as nginx's gzip_types and whitenoise's skip list are.
/// </summary>
public static class CompressibleTypes
{
    private static readonly HashSet<string> Exact = new(StringComparer.OrdinalIgnoreCase)
    {
        "application/json", "application/javascript", "application/x-javascript", "application/ecmascript",
        "application/xml", "application/wasm", "application/vnd.ms-fontobject", "application/x-font-ttf",
        "application/graphql", "image/x-icon", "image/vnd.microsoft.icon", "image/bmp", "font/ttf", "font/otf",
    };

    /// <summary>True for a compressible Content-Type (its parameters ignored); false when absent.</summary>
    public static bool Contains(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return false;
        var semi = contentType.IndexOf(';');
        var type = (semi < 0 ? contentType : contentType[..semi]).Trim();
        if (type.StartsWith("text/", StringComparison.OrdinalIgnoreCase))
            // A live stream is never held back by a compressor.
            return !type.Equals("text/event-stream", StringComparison.OrdinalIgnoreCase);
        // Structured syntax suffixes (RFC 6839): application/problem+json, application/atom+xml, image/svg+xml.
        return Exact.Contains(type) || type.EndsWith("+json", StringComparison.OrdinalIgnoreCase) ||
            type.EndsWith("+xml", StringComparison.OrdinalIgnoreCase);
    }
}
