using System.Globalization;

namespace SharpWsgi.Http;

public enum ByteRangeResult { Ignore, Satisfiable, Unsatisfiable }

/// <summary>The Range header of a GET for one file.</summary>
public static class ByteRange
{
    /// <summary>One bytes range: a-b, a- or -n. Several ranges or a malformed header: the whole file (RFC 9110
    /// 14.2 lets a server ignore Range).</summary>
    public static ByteRangeResult Parse(string header, long length, out long first, out long last)
    {
        first = last = 0;
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) return ByteRangeResult.Ignore;
        var spec = header["bytes=".Length..].Trim();
        if (spec.Contains(',')) return ByteRangeResult.Ignore;
        var dash = spec.IndexOf('-');
        if (dash < 0) return ByteRangeResult.Ignore;
        var a = spec[..dash].Trim();
        var b = spec[(dash + 1)..].Trim();
        if (!AllDigits(a) || !AllDigits(b) || (a.Length == 0 && b.Length == 0)) return ByteRangeResult.Ignore;
        if (a.Length == 0)
        {
            // A suffix: the last n bytes.
            if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                return ByteRangeResult.Ignore;
            if (n == 0 || length == 0) return ByteRangeResult.Unsatisfiable;
            first = Math.Max(0, length - n);
            last = length - 1;
            return ByteRangeResult.Satisfiable;
        }
        if (!long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out first))
            return ByteRangeResult.Unsatisfiable; // beyond any file
        if (b.Length == 0) last = length - 1;
        else if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out last)) last = length - 1;
        else if (last < first) return ByteRangeResult.Ignore;
        if (first >= length) return ByteRangeResult.Unsatisfiable;
        last = Math.Min(last, length - 1);
        return ByteRangeResult.Satisfiable;
    }

    private static bool AllDigits(string s)
    {
        foreach (var c in s) if (!char.IsAsciiDigit(c)) return false;
        return true;
    }
}
