using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Http;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting;

/// <summary>
/// --static URL_PREFIX=DIR: GET and HEAD under a prefix are answered from DIR on Kestrel's thread, never reaching
/// Python. Validators: a strong ETag from size and mtime (as nginx makes it; strong so If-Range and Range work) and
/// Last-Modified; one byte range; precompressed .br/.gz siblings by Accept-Encoding. What a path resolves to and how
/// it is kept safe is <see cref="FileMounts"/>'s; how the file goes out (sendfile on cleartext HTTP/1.1)
/// <see cref="FileResponse"/>'s.
/// </summary>
public sealed class StaticFiles
{
    private readonly FileMounts _files;
    private readonly FileResponse _sender;
    private readonly bool _fallthrough;

    private StaticFiles(FileMounts files, bool fallthrough, ILogger log)
    {
        _files = files;
        _fallthrough = fallthrough;
        _sender = new FileResponse(log);
    }

    /// <summary>Null when no --static is given (the request path then pays nothing).</summary>
    public static StaticFiles? Create(ServerSettings settings, WorkerLifecycle lifecycle, ILogger log)
    {
        if (settings.StaticMounts.Count == 0) return null;
        var mounts = new List<FileMounts.Mount>();
        foreach (var spec in settings.StaticMounts)
        {
            var (prefix, dir) = ParseMount(spec);
            mounts.Add(new FileMounts.Mount(prefix, RealDirectory(dir) ??
                throw new StartupException(DescribeBadDirectory(spec, dir))));
        }
        var maxAge = settings.StaticMaxAge;
        var files = new FileMounts(mounts, maxAge > 0 ? $"public, max-age={maxAge}" : "no-cache", urlPaths: true);
        return new StaticFiles(files, settings.StaticFallthrough, log);
    }

    /// <summary>The directory's real path, or null when it is no directory.</summary>
    internal static string? RealDirectory(string dir) =>
        Libc.RealPath(dir) is { } real && Directory.Exists(real) ? real : null;

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
        var rawPath = RequestTarget.RawPath(exchange.RawTarget);
        if (_files.Find(rawPath) is not { } mount) return null;
        if (!_files.TryGet(mount, rawPath, exchange.KestrelRequestHeaders, out var entry, out var file, out _))
            return _fallthrough ? null : FileResponse.PlainAsync(exchange, ServerAnswer.NoStaticFile, null);
        return _sender.Send(exchange, entry, file, isHead, FileResponse.Head.FileOnly);
    }
}
