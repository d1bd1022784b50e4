using System.Globalization;

namespace SharpWsgi.Http;

/// <summary>Conditional requests against one representation's validators (RFC 9110 13).</summary>
public static class Validators
{
    /// <summary>If-None-Match (weak comparison) decides when present; else If-Modified-Since (RFC 9110 13.2.2).
    /// </summary>
    public static bool NotModified(IReadOnlyList<string?> ifNoneMatch, IReadOnlyList<string?> ifModifiedSince,
        string etag, DateTimeOffset lastModified)
    {
        if (ifNoneMatch.Count > 0)
        {
            foreach (var value in ifNoneMatch)
                foreach (var tag in (value ?? "").Split(',', StringSplitOptions.TrimEntries))
                    if (tag == "*" || WeakEquals(tag, etag)) return true;
            return false;
        }
        return ifModifiedSince.Count == 1 && HttpDate(ifModifiedSince[0] ?? "") is { } since && lastModified <= since;
    }

    /// <summary>If-Range: a strong ETag match or exactly the Last-Modified date, else the whole file.</summary>
    public static bool IfRangeHolds(IReadOnlyList<string?> ifRange, string etag, DateTimeOffset lastModified)
    {
        if (ifRange.Count == 0) return true;
        var value = string.Join(',', ifRange).Trim();
        if (value.StartsWith('"') || value.StartsWith("W/", StringComparison.Ordinal)) return value == etag;
        return HttpDate(value) is { } date && date == lastModified;
    }

    /// <summary>A strong ETag made weak (W/"x"), as a transformed representation must carry (RFC 9110 8.8.1:
    /// the compressed bytes are not the ones the tag was made for); a weak one or an empty value unchanged.</summary>
    public static string Weaken(string etag) =>
        etag.StartsWith('"') ? "W/" + etag : etag;

    private static bool WeakEquals(string a, string b) =>
        (a.StartsWith("W/", StringComparison.Ordinal) ? a[2..] : a) == b;

    /// <summary>An IMF-fixdate (RFC 9110 5.6.7), or null.</summary>
    public static DateTimeOffset? HttpDate(string value) =>
        DateTimeOffset.TryParseExact(value.Trim(), "R", CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var date) ? date : null;
}
