using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using SharpWsgi.Http;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting;

/// <summary>
/// Directories the server sends files from, each under a prefix, and what a path under a prefix resolves to: the
/// part after the prefix is checked segment by segment (no "..", ".", dotfiles, backslash, control characters; for
/// URL paths no encoded slash, then percent-decoded), then realpath(3) must stay inside the directory's own real path,
/// so a symlink out of it is not followed. Results are cached (header values, and the bytes of small files) and
/// re-resolved every second; each use stats the file, so a changed or replaced file is served fresh. Used by
/// --static (URL paths), --internal (X-Accel-Redirect locations) and --x-sendfile-root (X-Sendfile paths).
/// </summary>
internal sealed partial class FileMounts
{
    public sealed record Mount(string Prefix, string Root);

    /// <summary>Why a path has no file: refused by the safety rules, leading out of the directory, or absent.
    /// </summary>
    public enum Miss { None, Unsafe, Outside, NoFile }

    /// <summary>Small files go out in one write into Kestrel's buffer, from memory when cached.</summary>
    public const int SmallFile = 64 * 1024;
    private const string ImmutableCacheControl = "public, max-age=31536000, immutable";
    private const long ResolveTtlMs = 1000;
    private const int MaxEntries = 4096;
    private const long MaxCachedBytes = 64L << 20;

    private readonly Mount[] _mounts;
    private readonly string? _cacheControl;
    private readonly bool _urlPaths;
    private readonly ConcurrentDictionary<string, Entry> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private int _entries;
    private long _cachedBytes;

    /// <param name="cacheControl">What every file says (hashed names: a year, immutable), or null to say nothing
    /// (the app's own Cache-Control stands).</param>
    /// <param name="urlPaths">Paths are URL paths (percent-encoded); else file system paths, taken as they are.
    /// </param>
    public FileMounts(IEnumerable<Mount> mounts, string? cacheControl, bool urlPaths)
    {
        // The longest prefix wins when prefixes nest (/static/ and /static/admin/).
        _mounts = mounts.OrderByDescending(m => m.Prefix.Length).ToArray();
        _cacheControl = cacheControl;
        _urlPaths = urlPaths;
        _lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The mount whose prefix the path starts with (the longest), or null.</summary>
    public Mount? Find(ReadOnlySpan<char> path)
    {
        foreach (var m in _mounts)
            if (path.StartsWith(m.Prefix, StringComparison.Ordinal)) return m;
        return null;
    }

    /// <summary>
    /// The file a path under the mount names, as it is now, and the representation this request gets (identity or a
    /// precompressed sibling, by Accept-Encoding); false with the reason when there is none.
    /// </summary>
    public bool TryGet(Mount mount, ReadOnlySpan<char> path, IHeaderDictionary request, out Entry entry,
        out Representation file, out Miss miss)
    {
        var now = Environment.TickCount64;
        miss = Miss.None;
        file = null!;
        entry = null!;
        if (!_lookup.TryGetValue(path, out var cached) || now - cached.ResolvedAt > ResolveTtlMs)
        {
            if (Load(mount, path, now, out miss) is not { } loaded) return false;
            cached = loaded;
        }
        entry = cached;
        file = Choose(entry, request);
        // The one syscall of a cached hit: a file changed or replaced since is loaded afresh.
        if (FileStat.Of(file.PathZ) != file.Stat)
        {
            if (Load(mount, path, now, out miss) is not { } reloaded) return false;
            entry = reloaded;
            file = Choose(entry, request);
        }
        return true;
    }

    /// <summary>
    /// What a path resolved to: the header values every answer needs, made once, and for small files the bytes.
    /// Re-resolved (realpath and all) after <see cref="ResolveTtlMs"/>, so a symlink swapped in later is judged
    /// again; every request still stats the file it sends.
    /// </summary>
    public sealed class Entry(long resolvedAt, string contentType, string? cacheControl, Representation identity,
        Representation? br, Representation? gz)
    {
        public long ResolvedAt { get; } = resolvedAt;
        public string ContentType { get; } = contentType;
        /// <summary>Null: the mount says none.</summary>
        public string? CacheControl { get; } = cacheControl;
        public Representation Identity { get; } = identity;
        public Representation? Br { get; } = br;
        public Representation? Gz { get; } = gz;
        public bool HasSiblings => Br != null || Gz != null;
        public long CachedBytes => (Identity.Bytes?.Length ?? 0) + (Br?.Bytes?.Length ?? 0) + (Gz?.Bytes?.Length ?? 0);
    }

    /// <summary>One file as sent: identity or a precompressed sibling, with its own validators.</summary>
    public sealed class Representation(string path, FileStat stat, string? encoding, byte[]? bytes)
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

    /// <summary>Resolves, stats and (small files) reads a path, and caches the result; null when there is no file.
    /// </summary>
    private Entry? Load(Mount mount, ReadOnlySpan<char> path, long now, out Miss miss)
    {
        var key = path.ToString();
        var real = Resolve(mount, path[mount.Prefix.Length..], out miss);
        var identity = real == null ? null : Represent(real, null);
        if (identity == null)
        {
            if (miss == Miss.None) miss = Miss.NoFile; // a directory, or gone since realpath
            Forget(key);
            return null;
        }
        var br = Sibling(real!, ".br") ? Represent(real + ".br", "br") : null;
        var gz = Sibling(real!, ".gz") ? Represent(real + ".gz", "gzip") : null;
        var cacheControl = _cacheControl == null ? null : IsHashedName(real!) ? ImmutableCacheControl : _cacheControl;
        var entry = new Entry(now, ContentTypes.For(real!), cacheControl, identity, br, gz);
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
            if (FileResponse.ReadFully(handle, bytes, 0) != bytes.Length) return null;
            return FileStat.Of(FileStat.PathBytes(path)) == stat ? bytes : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>A file inside the mount by its real path, or null (and why) when the path is unsafe or leads nowhere
    /// inside DIR.</summary>
    private string? Resolve(Mount mount, ReadOnlySpan<char> rawRelative, out Miss miss)
    {
        miss = Miss.Unsafe;
        if (rawRelative.IsEmpty) return null;
        string relative;
        if (_urlPaths)
        {
            // An encoded slash or backslash would smuggle a separator past the segment checks below.
            if (rawRelative.Contains("%2f", StringComparison.OrdinalIgnoreCase) ||
                rawRelative.Contains("%5c", StringComparison.OrdinalIgnoreCase))
                return null;
            relative = RequestTarget.PercentDecode(rawRelative);
        }
        else relative = rawRelative.ToString();
        // Decoded bytes (and header values) are latin-1 chars; names on disk are UTF-8 (invalid UTF-8 is no file of
        // ours).
        if (!Ascii.IsValid(relative))
        {
            try { relative = StrictUtf8.GetString(Encoding.Latin1.GetBytes(relative)); }
            catch (DecoderFallbackException) { return null; }
        }
        if (!IsSafeRelative(relative)) return null;
        var joined = Path.Join(mount.Root, relative);
        var real = Libc.RealPath(joined);
        miss = real == null ? Miss.NoFile : Miss.Outside;
        if (real == null || !IsInside(mount.Root, real)) return null;
        // A symlink inside DIR may not reach a dotfile inside DIR either.
        miss = Miss.Unsafe;
        if (real != joined && !IsSafeRelative(real[(mount.Root.Length + 1)..])) return null;
        miss = Miss.None;
        return real;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>Segments of a relative path: none empty, none starting with '.', no backslash or control character
    /// (NUL included).</summary>
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
        return AcceptEncoding.Preferred(request.AcceptEncoding, brotli: entry.Br != null, gzip: entry.Gz != null)
            switch
            {
                AcceptEncoding.Brotli => entry.Br!,
                AcceptEncoding.Gzip => entry.Gz!,
                _ => entry.Identity,
            };
    }

    /// <summary>A regular file next to it, not a symlink (a link could lead out of DIR); one stat when absent.
    /// </summary>
    private static bool Sibling(string path, string suffix) =>
        File.Exists(path + suffix) && Libc.RealPath(path + suffix) == path + suffix;

    /// <summary>Django's ManifestStaticFilesStorage names: name.0123456789ab.ext (12 hex digits).</summary>
    [GeneratedRegex(@"\.[0-9a-f]{12}\.[A-Za-z0-9]+$")]
    private static partial Regex HashedName();

    internal static bool IsHashedName(string path) => HashedName().IsMatch(Path.GetFileName(path));
}
