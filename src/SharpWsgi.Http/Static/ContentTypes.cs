namespace SharpWsgi.Http;

/// <summary>Content-Type by extension: a small built-in table (no /etc/mime.types, so every host answers alike).
/// </summary>
public static class ContentTypes
{
    private static readonly Dictionary<string, string> ByExtension = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8", [".htm"] = "text/html; charset=utf-8",
        [".css"] = "text/css; charset=utf-8", [".js"] = "text/javascript; charset=utf-8",
        [".mjs"] = "text/javascript; charset=utf-8", [".json"] = "application/json",
        [".map"] = "application/json", [".txt"] = "text/plain; charset=utf-8",
        [".csv"] = "text/csv; charset=utf-8", [".xml"] = "application/xml", [".md"] = "text/markdown; charset=utf-8",
        [".webmanifest"] = "application/manifest+json",
        [".svg"] = "image/svg+xml", [".png"] = "image/png", [".jpg"] = "image/jpeg", [".jpeg"] = "image/jpeg",
        [".gif"] = "image/gif", [".webp"] = "image/webp", [".avif"] = "image/avif", [".ico"] = "image/x-icon",
        [".bmp"] = "image/bmp",
        [".woff"] = "font/woff", [".woff2"] = "font/woff2", [".ttf"] = "font/ttf", [".otf"] = "font/otf",
        [".eot"] = "application/vnd.ms-fontobject",
        [".mp4"] = "video/mp4", [".webm"] = "video/webm", [".mp3"] = "audio/mpeg", [".ogg"] = "audio/ogg",
        [".wav"] = "audio/wav",
        [".pdf"] = "application/pdf", [".wasm"] = "application/wasm", [".zip"] = "application/zip",
        [".gz"] = "application/gzip", [".br"] = "application/octet-stream", [".tar"] = "application/x-tar",
    };

    public static string For(string path) =>
        ByExtension.TryGetValue(Path.GetExtension(path), out var type) ? type : "application/octet-stream";
}
