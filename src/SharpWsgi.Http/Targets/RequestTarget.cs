using System.Text;

namespace SharpWsgi.Http;

/// <summary>
/// The request target as CGI and PEP 3333 read it, in one place for the environ, static files and the access log:
/// origin-form "/path?query"; absolute-form "scheme://authority/path?query" (its path and query; no path is "/");
/// authority-form, CONNECT's "host:port" (no path, no query); and "*". A fragment, which a conforming client never
/// sends, is dropped.
/// </summary>
public static class RequestTarget
{
    /// <summary>The path, still percent-encoded; a span of the target (no copy), except "/" for an absolute-form
    /// target without a path.</summary>
    public static ReadOnlySpan<char> RawPath(string target)
    {
        Locate(target, out var pathStart, out var pathLength, out _, out _);
        return pathStart < 0 ? "/" : target.AsSpan(pathStart, pathLength);
    }

    /// <summary>The query, without its '?' (empty when there is none).</summary>
    public static ReadOnlySpan<char> Query(string target)
    {
        Locate(target, out _, out _, out var queryStart, out var queryLength);
        return queryStart < 0 ? default : target.AsSpan(queryStart, queryLength);
    }

    /// <summary>Path and query as strings; the target itself when it is all path (the common case: no copy).</summary>
    public static void Split(string target, out string path, out string query)
    {
        Locate(target, out var pathStart, out var pathLength, out var queryStart, out var queryLength);
        path = pathStart < 0 ? "/"
            : pathStart == 0 && pathLength == target.Length ? target
            : target.Substring(pathStart, pathLength);
        query = queryStart < 0 ? "" : target.Substring(queryStart, queryLength);
    }

    /// <summary>PATH_INFO's rule: each %XX becomes the byte it names, read as latin-1 (so %2F is '/', and bytes
    /// above 0x7F are the code points PEP 3333 expects); a '%' not followed by two hex digits stays.</summary>
    public static string PercentDecode(ReadOnlySpan<char> path)
    {
        if (path.IndexOf('%') < 0) return path.ToString();
        var sb = new StringBuilder(path.Length);
        for (int i = 0; i < path.Length; i++)
        {
            var c = path[i];
            if (c == '%' && i + 2 < path.Length && IsHex(path[i + 1]) && IsHex(path[i + 2]))
            {
                sb.Append((char)(HexValue(path[i + 1]) * 16 + HexValue(path[i + 2])));
                i += 2;
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Where path and query lie in the target: pathStart -1 means "/" (absolute-form without a path),
    /// queryStart -1 means no query.</summary>
    private static void Locate(string target, out int pathStart, out int pathLength, out int queryStart,
        out int queryLength)
    {
        var end = target.IndexOf('#');
        if (end < 0) end = target.Length;
        var from = 0;
        queryStart = -1;
        queryLength = 0;
        if (end > 0 && target[0] != '/' && target != "*")
        {
            var schemeEnd = target.AsSpan(0, end).IndexOf("://", StringComparison.Ordinal);
            if (schemeEnd < 0)
            {
                pathStart = 0; // authority-form: no path, no query
                pathLength = 0;
                return;
            }
            from = schemeEnd + 3;
            var rest = target.AsSpan(from, end - from);
            var slash = rest.IndexOf('/');
            var question = rest.IndexOf('?');
            if (slash < 0 || (question >= 0 && question < slash))
            {
                pathStart = -1;
                pathLength = 1;
                if (question >= 0) (queryStart, queryLength) = (from + question + 1, end - (from + question + 1));
                return;
            }
            from += slash;
        }
        var at = target.AsSpan(from, end - from).IndexOf('?');
        pathStart = from;
        pathLength = at < 0 ? end - from : at;
        if (at >= 0) (queryStart, queryLength) = (from + at + 1, end - (from + at + 1));
    }

    private static bool IsHex(char c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f') or (>= 'A' and <= 'F');
    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
