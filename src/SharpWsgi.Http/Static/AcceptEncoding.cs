using System.Globalization;

namespace SharpWsgi.Http;

/// <summary>Accept-Encoding as a static file server needs it: is one coding acceptable?</summary>
public static class AcceptEncoding
{
    /// <summary>The coding is acceptable unless absent or given q=0 (RFC 9110 12.5.3; * counts).</summary>
    public static bool Accepts(IReadOnlyList<string?> acceptEncoding, string coding)
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
}
