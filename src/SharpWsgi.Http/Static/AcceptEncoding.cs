using System.Globalization;

namespace SharpWsgi.Http;

/// <summary>Accept-Encoding (RFC 9110 12.5.3): how much a client wants a coding, and which of ours it gets.</summary>
public static class AcceptEncoding
{
    public const string Brotli = "br";
    public const string Gzip = "gzip";

    /// <summary>The coding is acceptable unless absent or given q=0 (* counts).</summary>
    public static bool Accepts(IReadOnlyList<string?> acceptEncoding, string coding) =>
        Quality(acceptEncoding, coding) > 0;

    /// <summary>The q-value the client gives the coding: its own entry, else *'s, else 0 (not acceptable).
    /// </summary>
    public static double Quality(IReadOnlyList<string?> acceptEncoding, string coding)
    {
        var starQ = 0.0;
        foreach (var value in acceptEncoding)
        {
            if (value == null) continue;
            var items = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var item in items)
            {
                var semi = item.IndexOf(';');
                var name = (semi < 0 ? item : item[..semi]).Trim();
                var q = semi < 0 ? 1.0 : ParseQ(item[(semi + 1)..]);
                if (name.Equals(coding, StringComparison.OrdinalIgnoreCase)) return q;
                if (name == "*") starQ = q;
            }
        }
        return starQ;
    }

    /// <summary>
    /// br or gzip, whichever the client rates higher among those on offer; br on a tie (smaller for the same CPU
    /// at the levels we use); null when it takes neither. nginx offers only gzip; brotli is what browsers send
    /// first.
    /// </summary>
    public static string? Preferred(IReadOnlyList<string?> acceptEncoding, bool brotli = true, bool gzip = true)
    {
        if (acceptEncoding.Count == 0) return null;
        var br = brotli ? Quality(acceptEncoding, Brotli) : 0;
        var gz = gzip ? Quality(acceptEncoding, Gzip) : 0;
        if (br > 0 && br >= gz) return Brotli;
        return gz > 0 ? Gzip : null;
    }

    private static double ParseQ(string parameters)
    {
        foreach (var p in parameters.Split(';', StringSplitOptions.TrimEntries))
            if (p.StartsWith("q=", StringComparison.OrdinalIgnoreCase))
                return double.TryParse(p[2..], NumberStyles.Float, CultureInfo.InvariantCulture, out var q)
                    ? Math.Clamp(q, 0, 1) : 0;
        return 1.0;
    }
}
