using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting;

/// <summary>A file an app's response names in place of its body.</summary>
/// <param name="Header">X-Accel-Redirect or X-Sendfile.</param>
/// <param name="Location">The header's value: a URI path under an --internal prefix, or an absolute file path.</param>
public sealed record FileRedirect(string Header, string Location);

/// <summary>
/// The app authorises, the server sends the file (nginx's X-Accel-Redirect, Apache's X-Sendfile): a response whose
/// head carries <c>X-Accel-Redirect: PREFIX/name</c> (an --internal PREFIX=DIR) or <c>X-Sendfile: /abs/path</c>
/// (under an --x-sendfile-root) has its body dropped and the file sent in its place, as --static sends files (path
/// safety, realpath inside DIR, validators and 304, one range, sendfile on cleartext HTTP/1.1). As in nginx the
/// status is the file's (200, 206, 304, 416; 404 when the name leads nowhere) and a GET's rules apply whatever the
/// method (HEAD stays HEAD); the app's other headers stay (Content-Disposition, Set-Cookie, Cache-Control, its
/// Content-Type over the extension's), those that described its own body go. An --internal prefix is not reachable
/// from outside: a request under it gets 404 without the app. A header the server is not configured for goes out
/// as the app set it.
/// </summary>
public sealed class FileRedirects
{
    public const string AccelRedirect = "X-Accel-Redirect";
    public const string Sendfile = "X-Sendfile";

    private readonly FileMounts? _internal;
    private readonly FileMounts? _sendfileRoots;
    private readonly string[] _internalPrefixes;
    private readonly FileResponse _sender;
    private readonly ILogger _log;

    private FileRedirects(FileMounts? internalMounts, string[] internalPrefixes, FileMounts? sendfileRoots,
        ILogger log)
    {
        _internal = internalMounts;
        _internalPrefixes = internalPrefixes;
        _sendfileRoots = sendfileRoots;
        _sender = new FileResponse(log);
        _log = log;
    }

    /// <summary>Null when neither --internal nor --x-sendfile-root is given (app heads are then not looked at).
    /// </summary>
    public static FileRedirects? Create(ServerSettings settings, ILogger log)
    {
        if (settings.InternalLocations.Count == 0 && settings.XSendfileRoots.Count == 0) return null;
        var internalMounts = new List<FileMounts.Mount>();
        foreach (var spec in settings.InternalLocations)
        {
            var (prefix, dir) = StaticFiles.ParseMount(spec);
            internalMounts.Add(new(prefix, StaticFiles.RealDirectory(dir) ??
                throw new StartupException(DescribeBadDirectory("--internal " + spec, dir))));
        }
        var roots = new List<FileMounts.Mount>();
        foreach (var dir in settings.XSendfileRoots)
        {
            var real = StaticFiles.RealDirectory(dir) ??
                throw new StartupException(DescribeBadDirectory("--x-sendfile-root " + dir, dir));
            // The app may name the file through the directory as configured or through its real path.
            var given = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)) + "/";
            roots.Add(new(given, real));
            if (real + "/" != given) roots.Add(new(real + "/", real));
        }
        // No Cache-Control of ours: a protected file is the app's to call cacheable or not.
        return new FileRedirects(
            internalMounts.Count > 0 ? new FileMounts(internalMounts, cacheControl: null, urlPaths: true) : null,
            internalMounts.Select(m => m.Prefix).ToArray(),
            roots.Count > 0 ? new FileMounts(roots, cacheControl: null, urlPaths: false) : null, log);
    }

    /// <summary>Null when the text is an absolute directory path, else why not (it is checked at start).</summary>
    public static string? ValidateRoot(string dir) =>
        dir.StartsWith('/') ? null : "expected an absolute directory path (e.g. /srv/app/private)";

    public static string DescribeBadDirectory(string option, string dir) =>
        $"{option}: '{dir}' is not a directory this process can read. The server sends files from it when the " +
        "app's response names one (X-Accel-Redirect for --internal, X-Sendfile for --x-sendfile-root); create the " +
        "directory or correct the path.";

    /// <summary>A request from outside for an --internal location (its decoded path, as the app would see it,
    /// under a prefix): answered 404 without the app, as nginx answers an internal location.</summary>
    public bool IsInternal(string rawTarget)
    {
        if (_internalPrefixes.Length == 0) return false;
        var path = RequestTarget.PercentDecode(RequestTarget.RawPath(rawTarget));
        foreach (var prefix in _internalPrefixes)
            if (path.StartsWith(prefix, StringComparison.Ordinal) || path == prefix[..^1]) return true;
        return false;
    }

    public Task RefuseOutsideAsync(KestrelExchange exchange)
    {
        _log.LogDebug("{Method} {Target}: 404, an --internal location is reachable only through X-Accel-Redirect",
            exchange.Method, exchange.RawTarget);
        return FileResponse.PlainAsync(exchange, ServerAnswer.NoSuchFile, null);
    }

    /// <summary>
    /// The file the app's committed head names, or null (no such header, or one the server is not configured for).
    /// Called on the Python thread: it only reads the head; the file is looked at on Kestrel's thread.
    /// </summary>
    public FileRedirect? Find(IHeaderDictionary appHead)
    {
        if (_internal != null && appHead.TryGetValue(AccelRedirect, out var accel) && accel.Count > 0)
            return new FileRedirect(AccelRedirect, accel[^1] ?? "");
        if (_sendfileRoots != null && appHead.TryGetValue(Sendfile, out var sendfile) && sendfile.Count > 0)
            return new FileRedirect(Sendfile, sendfile[^1] ?? "");
        return null;
    }

    /// <summary>Sends the named file in place of the app's body (on Kestrel's thread, the app done).</summary>
    public Task ServeAsync(KestrelExchange exchange, FileRedirect redirect)
    {
        var headers = exchange.Response.Headers;
        RemoveAppBodyHeaders(headers);
        var isAccel = redirect.Header == AccelRedirect;
        var files = isAccel ? _internal! : _sendfileRoots!;
        // nginx takes the location's path and drops its query; a file path has none.
        var location = isAccel ? RequestTarget.RawPath(redirect.Location) : redirect.Location.AsSpan();
        if (files.Find(location) is not { } mount)
            return NotFound(exchange, redirect, LogLevel.Warning, isAccel
                ? "it is not under any --internal prefix" : "it is not under any --x-sendfile-root");
        if (!files.TryGet(mount, location, exchange.KestrelRequestHeaders, out var entry, out var file, out var miss))
            return miss switch
            {
                FileMounts.Miss.NoFile => NotFound(exchange, redirect, LogLevel.Information,
                    $"no such file in {mount.Root}"),
                FileMounts.Miss.Outside => NotFound(exchange, redirect, LogLevel.Warning,
                    $"it leads out of {mount.Root} (a symlink)"),
                _ => NotFound(exchange, redirect, LogLevel.Warning,
                    "the path is refused (an empty, '.' or '..' segment, a dotfile, a backslash, a control " +
                    "character or an encoded slash)"),
            };
        return _sender.Send(exchange, entry, file, HttpMethods.IsHead(exchange.Method), FileResponse.Head.KeepApps);
    }

    private Task NotFound(KestrelExchange exchange, FileRedirect redirect, LogLevel level, string why)
    {
        _log.Log(level, "{Method} {Target}: the application's {Header}: {Location} is answered 404: {Why}",
            exchange.Method, exchange.RawTarget, redirect.Header, redirect.Location, why);
        return FileResponse.PlainAsync(exchange, ServerAnswer.NoSuchFile, null);
    }

    /// <summary>What described the app's own body (its length, range, encoding, validators), and the
    /// instructions meant for the server alone (every X-Accel-*, X-Sendfile): nginx passes neither on.</summary>
    private static void RemoveAppBodyHeaders(IHeaderDictionary headers)
    {
        List<string>? accel = null;
        foreach (var name in headers.Keys)
            if (name.StartsWith("X-Accel-", StringComparison.OrdinalIgnoreCase)) (accel ??= new()).Add(name);
        if (accel != null)
            foreach (var name in accel) headers.Remove(name);
        foreach (var name in BodyHeaders) headers.Remove(name);
    }

    private static readonly string[] BodyHeaders =
    [
        Sendfile, "Content-Length", "Content-Range", "Content-Encoding", "ETag", "Last-Modified", "Accept-Ranges",
    ];
}
