using System.Buffers;

namespace SharpWsgi.Http;

/// <summary>
/// Field syntax of RFC 9110 5.1 and 5.5, the one definition the server uses: header names the app sets
/// (start_response), tokens inside Forwarded, control characters in request and response values, and request IDs
/// that go into log lines and a header as they are.
/// </summary>
public static class HeaderSyntax
{
    private static readonly SearchValues<char> TokenChars = SearchValues.Create(
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    // CTLs other than HTAB (RFC 9110 5.5): no field value may carry them.
    private static readonly SearchValues<char> Controls = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000a\u000b\u000c\u000d\u000e\u000f" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f\u007f");

    /// <summary>tchar: a character of a token (a field name, a method, a Forwarded parameter).</summary>
    public static bool IsTokenChar(char c) => TokenChars.Contains(c);

    /// <summary>A non-empty token.</summary>
    public static bool IsToken(ReadOnlySpan<char> s) => !s.IsEmpty && !s.ContainsAnyExcept(TokenChars);

    /// <summary>Where the first control character other than HTAB is in a field value, or -1.</summary>
    public static int IndexOfControl(ReadOnlySpan<char> value) => value.IndexOfAny(Controls);

    /// <summary>Whether a comma-separated list (Vary, Cache-Control, Connection) names the token; a member's
    /// parameters (max-age=60) are not part of its name.</summary>
    public static bool ListContains(string? list, string token)
    {
        if (string.IsNullOrEmpty(list)) return false;
        foreach (var member in list.Split(',', StringSplitOptions.TrimEntries))
        {
            var end = member.IndexOfAny(['=', ';', ' ']);
            if ((end < 0 ? member : member[..end]).Equals(token, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    /// <summary>The list with the token added unless it is there already (or the list is "*", which covers it).
    /// </summary>
    public static string AddToList(string? list, string token)
    {
        if (string.IsNullOrWhiteSpace(list)) return token;
        return ListContains(list, token) || list.Trim() == "*" ? list : list + ", " + token;
    }

    /// <summary>Visible ASCII only (no space, no control, nothing above 0x7E).</summary>
    public static bool IsVisibleAscii(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
            if (c <= 0x20 || c >= 0x7f) return false;
        return true;
    }
}
