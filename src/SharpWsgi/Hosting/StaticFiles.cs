using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting;

/// <summary>
/// --static URL_PREFIX=DIR: GET and HEAD under a prefix are answered from DIR on Kestrel's thread, never reaching
/// Python. Validators: a strong ETag from size and mtime (as nginx makes it; strong so If-Range and Range work) and
/// Last-Modified; one byte range; precompressed .br/.gz siblings by Accept-Encoding. Safety: the decoded path is
/// checked segment by segment (no "..", ".", dotfiles, backslash, NUL, encoded slash), then realpath(3) must stay
/// inside DIR's own realpath, so a symlink out of DIR is not followed. Nothing is cached: a few stats per request.
/// </summary>
public sealed partial class StaticFiles
{
    private sealed record Mount(string Prefix, string Root);

    // Small files go out in one write into Kestrel's buffer; larger ones in chunks with backpressure (a flush
    // waits only once --response-buffer-size is buffered).
    private const int SmallFile = 64 * 1024;
    private const int ChunkSize = 256 * 1024;
    private const string ImmutableCacheControl = "public, max-age=31536000, immutable";

    private readonly Mount[] _mounts;
    private readonly string _cacheControl;
    private readonly bool _fallthrough;
    private readonly WorkerLifecycle _lifecycle;
    private readonly ILogger _log;

    private StaticFiles(Mount[] mounts, int maxAge, bool fallthrough, WorkerLifecycle lifecycle, ILogger log)
    {
        // The longest prefix wins when prefixes nest (/static/ and /static/admin/).
        _mounts = mounts.OrderByDescending(m => m.Prefix.Length).ToArray();
        _cacheControl = maxAge > 0 ? $"public, max-age={maxAge}" : "no-cache";
        _fallthrough = fallthrough;
        _lifecycle = lifecycle;
        _log = log;
    }

    /// <summary>Null when no --static is given (the request path then pays nothing).</summary>
    public static StaticFiles? Create(ServerSettings settings, WorkerLifecycle lifecycle, ILogger log)
    {
        if (settings.StaticMounts.Count == 0) return null;
        var mounts = new List<Mount>();
        foreach (var spec in settings.StaticMounts)
        {
            var (prefix, dir) = ParseMount(spec);
            var root = Libc.RealPath(dir) is { } real && Directory.Exists(real)
                ? real : throw new StartupException(DescribeBadDirectory(spec, dir));
            mounts.Add(new Mount(prefix, root));
        }
        return new StaticFiles(mounts.ToArray(), settings.StaticMaxAge, settings.StaticFallthrough, lifecycle, log);
    }

    /// <summary>"/static=dir" and "/static/=dir" both mean the files under /static/.</summary>
    public static (string Prefix, string Directory) ParseMount(string spec)
    {
        var equals = spec.IndexOf('=');
        var prefix = spec[..equals].Trim();
        if (!prefix.StartsWith('/')) prefix = "/" + prefix;
        if (!prefix.EndsWith('/')) prefix += "/";
        return (prefix, spec[(equals + 1)..]);
    }

    /// <summary>Null when the text is URL_PREFIX=DIR, else why not (the directory itself is checked at start).
    /// </summary>
    public static string? Validate(string spec)
    {
        var equals = spec.IndexOf('=');
        if (equals < 1 || equals == spec.Length - 1) return "expected URL_PREFIX=DIR (e.g. /static/=/srv/static)";
        var prefix = spec[..equals];
        if (prefix.IndexOfAny(['%', '?', '#', '\\', ' ']) >= 0 || prefix.Split('/').Any(s => s is "." or ".."))
            return $"URL prefix '{prefix}' must be a plain path (no %, ?, #, backslash, space, . or ..)";
        return null;
    }

    public static string DescribeBadDirectory(string spec, string dir) =>
        $"--static {spec}: '{dir}' is not a directory this process can read. Each --static maps a URL prefix to " +
        "a directory whose files the server sends itself, without Python (e.g. --static /static/=/srv/app/static " +
        "after Django's collectstatic); create the directory or correct the path.";

    /// <summary>
    /// The static answer for a GET or HEAD under a prefix, or null when the app should have the request (not under
    /// any prefix, another method, or no such file with --static-fallthrough on).
    /// </summary>
    public Task? TryServe(KestrelExchange exchange)
    {
        var method = exchange.Method;
        var isHead = HttpMethods.IsHead(method);
        if (!isHead && !HttpMethods.IsGet(method)) return null;
        EnvironBuilder.SplitTarget(exchange.RawTarget, out var rawPath, out _);
        Mount? mount = null;
        foreach (var m in _mounts)
            if (rawPath.StartsWith(m.Prefix, StringComparison.Ordinal)) { mount = m; break; }
        if (mount == null) return null;

        var file = Resolve(mount, rawPath.AsSpan(mount.Prefix.Length));
        if (file is not { Exists: true })
            return _fallthrough ? null : NotFoundAsync(exchange);
        return Send(exchange, file, isHead);
    }

    private Task NotFoundAsync(KestrelExchange exchange) =>
        PlainAsync(exchange, 404, "no such static file", null);

    private static async Task PlainAsync(KestrelExchange exchange, int status, string reason, string? contentRange)
    {
        var headers = contentRange == null ? null : new[] { KeyValuePair.Create("Content-Range", contentRange) };
        if (!await PlainResponse.WriteAsync(exchange, status, reason, extraHeaders: headers).ConfigureAwait(false))
            exchange.AbortConnection();
    }

    /// <summary>A file inside the mount by its real path (Exists is false for a directory), or null when the path
    /// is unsafe or leads nowhere inside DIR. Its stat is the one the answer uses.</summary>
    private static FileInfo? Resolve(Mount mount, ReadOnlySpan<char> rawRelative)
    {
        if (rawRelative.IsEmpty) return null;
        // An encoded slash or backslash would smuggle a separator past the segment checks below.
        if (rawRelative.Contains("%2f", StringComparison.OrdinalIgnoreCase) ||
            rawRelative.Contains("%5c", StringComparison.OrdinalIgnoreCase))
            return null;
        var relative = EnvironBuilder.PercentDecode(rawRelative.ToString());
        // Decoded bytes are latin-1 chars; names on disk are UTF-8 (invalid UTF-8 is no file of ours).
        if (!Ascii.IsValid(relative))
        {
            try { relative = StrictUtf8.GetString(Encoding.Latin1.GetBytes(relative)); }
            catch (DecoderFallbackException) { return null; }
        }
        if (!IsSafeRelative(relative)) return null;
        var joined = Path.Join(mount.Root, relative);
        var real = Libc.RealPath(joined);
        if (real == null || !IsInside(mount.Root, real)) return null;
        // A symlink inside DIR may not reach a dotfile inside DIR either.
        if (real != joined && !IsSafeRelative(real[(mount.Root.Length + 1)..])) return null;
        return new FileInfo(real);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>Segments of a relative URL path: none empty, none starting with '.', no backslash or control
    /// character (NUL included).</summary>
    internal static bool IsSafeRelative(string relative)
    {
        foreach (var segment in relative.Split('/'))
        {
            if (segment.Length == 0 || segment[0] == '.') return false;
            foreach (var c in segment)
                if (c == '\\' || char.IsControl(c)) return false;
        }
        return true;
    }

    private static bool IsInside(string root, string real) =>
        real.Length > root.Length + 1 && real.StartsWith(root, StringComparison.Ordinal) && real[root.Length] == '/';

    private Task Send(KestrelExchange exchange, FileInfo file, bool isHead)
    {
        var path = file.FullName;
        var request = exchange.KestrelRequestHeaders;
        // A precompressed sibling is a separate representation: it has its own validators and length.
        var hasBr = Sibling(path, ".br");
        var hasGz = Sibling(path, ".gz");
        string? encoding = null;
        var sendPath = path;
        if (hasBr || hasGz)
        {
            var accept = request.AcceptEncoding;
            if (hasBr && Accepts(accept, "br")) (encoding, sendPath) = ("br", path + ".br");
            else if (hasGz && Accepts(accept, "gzip")) (encoding, sendPath) = ("gzip", path + ".gz");
        }

        var info = encoding == null ? file : new FileInfo(sendPath);
        long length;
        DateTimeOffset modified;
        try
        {
            length = info.Length;
            modified = info.LastWriteTimeUtc;
        }
        catch (IOException) { return NotFoundAsync(exchange); } // gone between the stat and now
        // HTTP dates have whole seconds: comparisons use the same precision as the header.
        var lastModified = new DateTimeOffset(modified.Ticks - modified.Ticks % TimeSpan.TicksPerSecond,
            TimeSpan.Zero);
        var etag = "\"" + length.ToString("x", CultureInfo.InvariantCulture) + "-" +
            modified.ToUnixTimeMilliseconds().ToString("x", CultureInfo.InvariantCulture) +
            (encoding == null ? "" : "-" + encoding) + "\"";

        var response = exchange.Response;
        var headers = response.Headers;
        headers.Clear();
        if (_lifecycle.Draining && !exchange.IsHttp2) headers.Connection = "close";
        headers.ETag = etag;
        headers.LastModified = lastModified.ToString("R", CultureInfo.InvariantCulture);
        headers.CacheControl = IsHashedName(path) ? ImmutableCacheControl : _cacheControl;
        if (hasBr || hasGz) headers.Vary = "Accept-Encoding";

        if (NotModified(request, etag, lastModified))
        {
            response.StatusCode = 304;
            return Task.CompletedTask;
        }

        headers.ContentType = ContentTypes.For(path);
        if (encoding != null) headers.ContentEncoding = encoding;
        headers.AcceptRanges = "bytes";
        long start = 0, count = length;
        if (!isHead && request.Range.Count > 0 && IfRangeHolds(request, etag, lastModified))
        {
            switch (ParseRange(request.Range.ToString(), length, out var first, out var last))
            {
                case RangeResult.Satisfiable:
                    response.StatusCode = 206;
                    headers.ContentRange = $"bytes {first}-{last}/{length}";
                    (start, count) = (first, last - first + 1);
                    break;
                case RangeResult.Unsatisfiable:
                    return PlainAsync(exchange, 416, $"the range is outside the file's {length} bytes",
                        $"bytes */{length}");
            }
        }
        if (response.StatusCode != 206) response.StatusCode = 200;
        headers.ContentLength = count;
        if (isHead || count == 0) return Task.CompletedTask;

        SafeFileHandle handle;
        try { handle = File.OpenHandle(sendPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("Static file {Path} cannot be opened: {Error}", sendPath, e.Message);
            return PlainAsync(exchange, 500, "the static file cannot be read", null);
        }
        return count <= SmallFile ? SendSmall(exchange, handle, start, (int)count)
            : SendLargeAsync(exchange, handle, start, count);
    }

    /// <summary>A regular file next to it, not a symlink (a link could lead out of DIR); one stat when absent.
    /// </summary>
    private static bool Sibling(string path, string suffix) =>
        File.Exists(path + suffix) && Libc.RealPath(path + suffix) == path + suffix;

    /// <summary>One read straight into Kestrel's response buffer; Kestrel flushes it when the request ends.</summary>
    private Task SendSmall(KestrelExchange exchange, SafeFileHandle handle, long start, int count)
    {
        using (handle)
        {
            var writer = exchange.ResponseBodyFeature.Writer;
            var span = writer.GetSpan(count)[..count];
            int read;
            try { read = ReadFully(handle, span, start); }
            catch (IOException e) { return ReadFailed(exchange, e); }
            if (read < count) return ReadFailed(exchange, new IOException("the file shrank while it was sent"));
            writer.Advance(count);
            return Task.CompletedTask;
        }
    }

    private async Task SendLargeAsync(KestrelExchange exchange, SafeFileHandle handle, long start, long count)
    {
        using (handle)
        {
            var writer = exchange.ResponseBodyFeature.Writer;
            try
            {
                while (count > 0)
                {
                    var size = (int)Math.Min(count, ChunkSize);
                    var memory = writer.GetMemory(size)[..size];
                    // Reads of files in the page cache are quicker than an async hop to the thread pool.
                    var read = ReadFully(handle, memory.Span, start);
                    if (read < size) throw new IOException("the file shrank while it was sent");
                    writer.Advance(read);
                    start += read;
                    count -= read;
                    var flush = await writer.FlushAsync().ConfigureAwait(false);
                    if (flush.IsCanceled || flush.IsCompleted) break;
                }
            }
            catch (IOException e)
            {
                await ReadFailed(exchange, e).ConfigureAwait(false);
            }
            catch (Exception) { exchange.AbortConnection(); } // the client went away
        }
    }

    private static int ReadFully(SafeFileHandle handle, Span<byte> span, long offset)
    {
        var total = 0;
        while (total < span.Length)
        {
            var n = RandomAccess.Read(handle, span[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>The head (with its Content-Length) may be out: the only honest ending is a reset.</summary>
    private Task ReadFailed(KestrelExchange exchange, IOException e)
    {
        _log.LogWarning("Static file read failed for {Target}: {Error}", exchange.RawTarget, e.Message);
        exchange.AbortConnection();
        return Task.CompletedTask;
    }

    /// <summary>Django's ManifestStaticFilesStorage names: name.0123456789ab.ext (12 hex digits).</summary>
    [GeneratedRegex(@"\.[0-9a-f]{12}\.[A-Za-z0-9]+$")]
    private static partial Regex HashedName();

    internal static bool IsHashedName(string path) => HashedName().IsMatch(Path.GetFileName(path));

    /// <summary>The coding is acceptable unless absent or given q=0 (RFC 9110 12.5.3; * counts).</summary>
    internal static bool Accepts(StringValues acceptEncoding, string coding)
    {
        var starQ = -1.0;
        foreach (var value in acceptEncoding)
        {
            if (value == null) continue;
            var items = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var item in items)
            {
                var semi = item.IndexOf(';');
                var name = (semi < 0 ? item : item[..semi]).Trim();
                var q = semi < 0 ? 1.0 : ParseQ(item[(semi + 1)..]);
                if (name.Equals(coding, StringComparison.OrdinalIgnoreCase)) return q > 0;
                if (name == "*") starQ = q;
            }
        }
        return starQ > 0;
    }

    private static double ParseQ(string parameters)
    {
        foreach (var p in parameters.Split(';', StringSplitOptions.TrimEntries))
            if (p.StartsWith("q=", StringComparison.OrdinalIgnoreCase))
                return double.TryParse(p[2..], NumberStyles.Float, CultureInfo.InvariantCulture, out var q) ? q : 0;
        return 1.0;
    }

    /// <summary>If-None-Match (weak comparison) decides when present; else If-Modified-Since (RFC 9110 13.2.2).
    /// </summary>
    private static bool NotModified(IHeaderDictionary request, string etag, DateTimeOffset lastModified)
    {
        var inm = request.IfNoneMatch;
        if (inm.Count > 0)
        {
            foreach (var value in inm)
                foreach (var tag in (value ?? "").Split(',', StringSplitOptions.TrimEntries))
                    if (tag == "*" || WeakEquals(tag, etag)) return true;
            return false;
        }
        var ims = request.IfModifiedSince;
        return ims.Count == 1 && HttpDate(ims.ToString()) is { } since && lastModified <= since;
    }

    /// <summary>If-Range: a strong ETag match or exactly the Last-Modified date, else the whole file.</summary>
    private static bool IfRangeHolds(IHeaderDictionary request, string etag, DateTimeOffset lastModified)
    {
        var ifRange = request.IfRange;
        if (ifRange.Count == 0) return true;
        var value = ifRange.ToString().Trim();
        if (value.StartsWith('"') || value.StartsWith("W/", StringComparison.Ordinal)) return value == etag;
        return HttpDate(value) is { } date && date == lastModified;
    }

    private static bool WeakEquals(string a, string b) =>
        (a.StartsWith("W/", StringComparison.Ordinal) ? a[2..] : a) == b;

    private static DateTimeOffset? HttpDate(string value) =>
        DateTimeOffset.TryParseExact(value.Trim(), "R", CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var date) ? date : null;

    internal enum RangeResult { Ignore, Satisfiable, Unsatisfiable }

    /// <summary>One bytes range: a-b, a- or -n. Several ranges or a malformed header: the whole file (RFC 9110
    /// 14.2 lets a server ignore Range).</summary>
    internal static RangeResult ParseRange(string header, long length, out long first, out long last)
    {
        first = last = 0;
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) return RangeResult.Ignore;
        var spec = header["bytes=".Length..].Trim();
        if (spec.Contains(',')) return RangeResult.Ignore;
        var dash = spec.IndexOf('-');
        if (dash < 0) return RangeResult.Ignore;
        var a = spec[..dash].Trim();
        var b = spec[(dash + 1)..].Trim();
        if (!AllDigits(a) || !AllDigits(b) || (a.Length == 0 && b.Length == 0)) return RangeResult.Ignore;
        if (a.Length == 0)
        {
            // A suffix: the last n bytes.
            if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                return RangeResult.Ignore;
            if (n == 0 || length == 0) return RangeResult.Unsatisfiable;
            first = Math.Max(0, length - n);
            last = length - 1;
            return RangeResult.Satisfiable;
        }
        if (!long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out first))
            return RangeResult.Unsatisfiable; // beyond any file
        if (b.Length == 0) last = length - 1;
        else if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out last)) last = length - 1;
        else if (last < first) return RangeResult.Ignore;
        if (first >= length) return RangeResult.Unsatisfiable;
        last = Math.Min(last, length - 1);
        return RangeResult.Satisfiable;
    }

    private static bool AllDigits(string s)
    {
        foreach (var c in s) if (!char.IsAsciiDigit(c)) return false;
        return true;
    }
}

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
