using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Configuration;
using SharpWsgi.Http;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting;

/// <summary>
/// --static URL_PREFIX=DIR: GET and HEAD under a prefix are answered from DIR on Kestrel's thread, never reaching
/// Python. Validators: a strong ETag from size and mtime (as nginx makes it; strong so If-Range and Range work) and
/// Last-Modified; one byte range; precompressed .br/.gz siblings by Accept-Encoding. Safety: the decoded path is
/// checked segment by segment (no "..", ".", dotfiles, backslash, NUL, encoded slash), then realpath(3) must stay
/// inside DIR's own realpath, so a symlink out of DIR is not followed. What a URL path resolved to is cached (header
/// values, and the bytes of small files) and re-resolved every second; each request stats the file it sends, so a
/// changed or replaced file is served fresh. On cleartext HTTP/1.1 a large body goes by sendfile(2) through
/// <see cref="SendfileTransport"/> unless --no-sendfile.
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
        _lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
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
        var target = exchange.RawTarget;
        var rawPath = RequestTarget.RawPath(target);
        Mount? mount = null;
        foreach (var m in _mounts)
            if (rawPath.StartsWith(m.Prefix, StringComparison.Ordinal)) { mount = m; break; }
        if (mount == null) return null;

        var now = Environment.TickCount64;
        if (!_lookup.TryGetValue(rawPath, out var entry) || now - entry.ResolvedAt > ResolveTtlMs)
        {
            entry = Load(mount, rawPath, now);
            if (entry == null) return _fallthrough ? null : NotFoundAsync(exchange);
        }
        var representation = Choose(entry, exchange.KestrelRequestHeaders);
        // The one syscall of a cached hit: a file changed or replaced since is loaded afresh.
        if (FileStat.Of(representation.PathZ) != representation.Stat)
        {
            entry = Load(mount, rawPath, now);
            if (entry == null) return _fallthrough ? null : NotFoundAsync(exchange);
            representation = Choose(entry, exchange.KestrelRequestHeaders);
        }
        return Send(exchange, entry, representation, isHead);
    }

    private Task NotFoundAsync(KestrelExchange exchange) => PlainAsync(exchange, ServerAnswer.NoStaticFile, null);

    private static async Task PlainAsync(KestrelExchange exchange, ServerAnswer answer, string? contentRange)
    {
        var headers = contentRange == null ? null : new[] { KeyValuePair.Create("Content-Range", contentRange) };
        if (!await PlainResponse.WriteAsync(exchange, answer, headers).ConfigureAwait(false))
            exchange.AbortConnection();
    }

    /// <summary>
    /// What a URL path resolved to: the header values every answer needs, made once, and for small files the
    /// bytes. Re-resolved (realpath and all) after <see cref="ResolveTtlMs"/>, so a symlink swapped in later is
    /// judged again; every request still stats the file it sends.
    /// </summary>
    private sealed class Entry(long resolvedAt, string contentType, string cacheControl, Representation identity,
        Representation? br, Representation? gz)
    {
        public long ResolvedAt { get; } = resolvedAt;
        public string ContentType { get; } = contentType;
        public string CacheControl { get; } = cacheControl;
        public Representation Identity { get; } = identity;
        public Representation? Br { get; } = br;
        public Representation? Gz { get; } = gz;
        public bool HasSiblings => Br != null || Gz != null;
        public long CachedBytes => (Identity.Bytes?.Length ?? 0) + (Br?.Bytes?.Length ?? 0) + (Gz?.Bytes?.Length ?? 0);
    }

    /// <summary>One file as sent: identity or a precompressed sibling, with its own validators.</summary>
    private sealed class Representation(string path, FileStat stat, string? encoding, byte[]? bytes)
    {
        public string Path { get; } = path;
        public byte[] PathZ { get; } = FileStat.PathBytes(path);
        public FileStat Stat { get; } = stat;
        public string? Encoding { get; } = encoding;
        public byte[]? Bytes { get; } = bytes;
        // HTTP dates have whole seconds: comparisons use the same precision as the header.
        public DateTimeOffset LastModified { get; } = DateTimeOffset.FromUnixTimeSeconds(stat.MtimeSeconds);
        public string LastModifiedText => _lastModifiedText ??=
            LastModified.ToString("R", CultureInfo.InvariantCulture);
        private string? _lastModifiedText;
        public string ETag { get; } = "\"" + stat.Size.ToString("x", CultureInfo.InvariantCulture) + "-" +
            stat.MtimeMilliseconds.ToString("x", CultureInfo.InvariantCulture) +
            (encoding == null ? "" : "-" + encoding) + "\"";
    }

    private const long ResolveTtlMs = 1000;
    private const int MaxEntries = 4096;
    private const long MaxCachedBytes = 64L << 20;

    private readonly ConcurrentDictionary<string, Entry> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private int _entries;
    private long _cachedBytes;

    /// <summary>Resolves, stats and (small files) reads a path, and caches the result; null when there is no file.
    /// </summary>
    private Entry? Load(Mount mount, ReadOnlySpan<char> rawPath, long now)
    {
        var key = rawPath.ToString();
        var real = Resolve(mount, rawPath[mount.Prefix.Length..]);
        var identity = real == null ? null : Represent(real, null);
        if (identity == null)
        {
            Forget(key);
            return null;
        }
        var br = Sibling(real!, ".br") ? Represent(real + ".br", "br") : null;
        var gz = Sibling(real!, ".gz") ? Represent(real + ".gz", "gzip") : null;
        var entry = new Entry(now, ContentTypes.For(real!), IsHashedName(real!) ? ImmutableCacheControl : _cacheControl,
            identity, br, gz);
        // Client-chosen keys (percent-encoding variants of one name) must not grow the cache without bound.
        if (Interlocked.Increment(ref _entries) > MaxEntries)
        {
            _cache.Clear();
            Interlocked.Exchange(ref _entries, 1);
            Interlocked.Exchange(ref _cachedBytes, 0);
        }
        if (_cache.TryGetValue(key, out var old))
        {
            Interlocked.Decrement(ref _entries);
            Interlocked.Add(ref _cachedBytes, -old.CachedBytes);
        }
        _cache[key] = entry;
        return entry;
    }

    private void Forget(string key)
    {
        if (!_cache.TryRemove(key, out var old)) return;
        Interlocked.Decrement(ref _entries);
        Interlocked.Add(ref _cachedBytes, -old.CachedBytes);
    }

    /// <summary>A regular file's stat and, when small and the budget allows, its bytes; null when it is gone or no
    /// regular file (a directory).</summary>
    private Representation? Represent(string path, string? encoding)
    {
        var pathZ = FileStat.PathBytes(path);
        if (FileStat.Of(pathZ) is not { IsRegularFile: true } stat) return null;
        byte[]? bytes = null;
        if (stat.Size <= SmallFile && Interlocked.Add(ref _cachedBytes, stat.Size) <= MaxCachedBytes)
        {
            bytes = ReadWhole(path, stat);
            if (bytes == null) Interlocked.Add(ref _cachedBytes, -stat.Size);
        }
        return new Representation(path, stat, encoding, bytes);
    }

    /// <summary>The bytes, when the file did not change while they were read (else it is read per request).
    /// </summary>
    private static byte[]? ReadWhole(string path, FileStat stat)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var bytes = new byte[stat.Size];
            if (ReadFully(handle, bytes, 0) != bytes.Length) return null;
            return FileStat.Of(FileStat.PathBytes(path)) == stat ? bytes : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>A file inside the mount by its real path, or null when the path is unsafe or leads nowhere inside
    /// DIR.</summary>
    private static string? Resolve(Mount mount, ReadOnlySpan<char> rawRelative)
    {
        if (rawRelative.IsEmpty) return null;
        // An encoded slash or backslash would smuggle a separator past the segment checks below.
        if (rawRelative.Contains("%2f", StringComparison.OrdinalIgnoreCase) ||
            rawRelative.Contains("%5c", StringComparison.OrdinalIgnoreCase))
            return null;
        var relative = RequestTarget.PercentDecode(rawRelative);
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
        return real;
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

    /// <summary>A precompressed sibling is a separate representation, chosen by Accept-Encoding.</summary>
    private static Representation Choose(Entry entry, IHeaderDictionary request)
    {
        if (!entry.HasSiblings) return entry.Identity;
        var accept = request.AcceptEncoding;
        if (accept.Count == 0) return entry.Identity;
        if (entry.Br != null && AcceptEncoding.Accepts(accept, "br")) return entry.Br;
        if (entry.Gz != null && AcceptEncoding.Accepts(accept, "gzip")) return entry.Gz;
        return entry.Identity;
    }

    private Task Send(KestrelExchange exchange, Entry entry, Representation file, bool isHead)
    {
        var request = exchange.KestrelRequestHeaders;
        var response = exchange.Response;
        var headers = response.Headers;
        headers.Clear();
        exchange.ApplyHeadPolicy(closeConnection: false);
        headers.ETag = file.ETag;
        headers.LastModified = file.LastModifiedText;
        headers.CacheControl = entry.CacheControl;
        if (entry.HasSiblings) headers.Vary = "Accept-Encoding";

        if (Validators.NotModified(request.IfNoneMatch, request.IfModifiedSince, file.ETag, file.LastModified))
        {
            response.StatusCode = 304;
            return Task.CompletedTask;
        }

        headers.ContentType = entry.ContentType;
        if (file.Encoding != null) headers.ContentEncoding = file.Encoding;
        headers.AcceptRanges = "bytes";
        var length = file.Stat.Size;
        long start = 0, count = length;
        if (!isHead && request.Range.Count > 0 && Validators.IfRangeHolds(request.IfRange, file.ETag, file.LastModified))
        {
            switch (ByteRange.Parse(request.Range.ToString(), length, out var first, out var last))
            {
                case ByteRangeResult.Satisfiable:
                    response.StatusCode = 206;
                    headers.ContentRange = $"bytes {first}-{last}/{length}";
                    (start, count) = (first, last - first + 1);
                    break;
                case ByteRangeResult.Unsatisfiable:
                    return PlainAsync(exchange, ServerAnswer.RangeOutsideFile(length), $"bytes */{length}");
            }
        }
        if (response.StatusCode != 206) response.StatusCode = 200;
        headers.ContentLength = count;
        if (isHead || count == 0) return Task.CompletedTask;

        if (file.Bytes != null)
        {
            // Into Kestrel's response buffer; Kestrel flushes it with the head when the request ends.
            var writer = exchange.ResponseBodyFeature.Writer;
            file.Bytes.AsSpan((int)start, (int)count).CopyTo(writer.GetSpan((int)count));
            writer.Advance((int)count);
            exchange.CountBodyBytes(count);
            return Task.CompletedTask;
        }

        var transport = count > SmallFile && !exchange.IsHttp2 ? exchange.Features.Get<SendfileTransport>() : null;
        if (transport != null && !KestrelBodyCount.CanSet(exchange.Features))
        {
            WarnNoSendfileOnce();
            transport = null;
        }
        SafeFileHandle handle;
        // SendPacketsAsync takes only a FileStream opened for asynchronous I/O (on Linux a flag, no thread).
        try
        {
            handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite,
                transport != null ? FileOptions.Asynchronous : FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("Static file {Path} cannot be opened: {Error}", file.Path, e.Message);
            return PlainAsync(exchange, ServerAnswer.StaticFileUnreadable, null);
        }
        if (transport != null) return SendfileAsync(exchange, transport, handle, start, count);
        return count <= SmallFile ? SendSmall(exchange, handle, start, (int)count)
            : SendLargeAsync(exchange, handle, start, count);
    }

    private int _warnedNoSendfile;

    private void WarnNoSendfileOnce()
    {
        if (Interlocked.Exchange(ref _warnedNoSendfile, 1) == 0)
            _log.LogWarning("This Kestrel has no body counter that sendfile can update: static files are copied " +
                "through Kestrel instead (as with --no-sendfile)");
    }

    /// <summary>
    /// The head through Kestrel (flushed, so it is first in the forwarder's pipe), the body by sendfile(2) on the
    /// socket, then Kestrel is told the body is written so it keeps the connection alive.
    /// </summary>
    private async Task SendfileAsync(KestrelExchange exchange, SendfileTransport transport, SafeFileHandle handle,
        long start, long count)
    {
        using (handle)
        {
            var body = exchange.ResponseBodyFeature;
            try
            {
                await body.StartAsync().ConfigureAwait(false);
                var flush = await body.Writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCanceled || flush.IsCompleted)
                {
                    exchange.AbortConnection();
                    return;
                }
            }
            catch (Exception)
            {
                exchange.AbortConnection(); // the client went away
                return;
            }
            if (!await transport.SendFileAsync(handle, start, count).ConfigureAwait(false))
            {
                exchange.AbortConnection(); // logged by the forwarder at debug level
                return;
            }
            KestrelBodyCount.Add(exchange.Features, count);
            exchange.CountBodyBytes(count);
        }
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
            exchange.CountBodyBytes(count);
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
                    exchange.CountBodyBytes(read);
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
}
