using SharpWsgi.Http;

namespace SharpWsgi.Hosting;

/// <summary>
/// --access-log-skip: the paths whose successful requests the access log leaves out (health checks, metrics
/// scrapes flood it otherwise: gunicorn #1781). A spec is an exact path, or a prefix with a trailing '*'. The path
/// compared is the request's as %(U)s prints it: percent-decoded, without the query, so /healthz and /health%7A are
/// one endpoint, as the app routes them. Only answers below 400 are skipped: a failing health check is worth a line.
/// </summary>
public sealed class AccessLogSkip
{
    private readonly string[] _exact;
    private readonly string[] _prefixes;

    private AccessLogSkip(string[] exact, string[] prefixes)
    {
        _exact = exact;
        _prefixes = prefixes;
    }

    /// <summary>The filter for the specs, or null when there are none (nothing to check per request).</summary>
    public static AccessLogSkip? From(IReadOnlyList<string> specs)
    {
        if (specs.Count == 0) return null;
        return new AccessLogSkip(specs.Where(s => !s.EndsWith('*')).ToArray(),
            specs.Where(s => s.EndsWith('*')).Select(s => s[..^1]).ToArray());
    }

    /// <summary>Null when the spec is acceptable, else why not.</summary>
    public static string? Validate(string spec)
    {
        if (!spec.StartsWith('/')) return "expected a path starting with / (a trailing * makes it a prefix)";
        if (spec.IndexOf('*') is var star && star >= 0 && star != spec.Length - 1)
            return "only a trailing * is a wildcard (a prefix, such as /static/*)";
        return null;
    }

    /// <summary>Whether the request's line is left out: its status is below 400 and its path matches.</summary>
    public bool Skips(string rawTarget, int status)
    {
        if (status >= 400) return false;
        var raw = RequestTarget.RawPath(rawTarget);
        // Decoding allocates: only a path with an escape in it pays for it.
        var path = raw.IndexOf('%') < 0 ? raw : RequestTarget.PercentDecode(raw).AsSpan();
        foreach (var exact in _exact)
            if (path.SequenceEqual(exact)) return true;
        foreach (var prefix in _prefixes)
            if (path.StartsWith(prefix, StringComparison.Ordinal)) return true;
        return false;
    }
}
