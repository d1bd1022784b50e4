using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharpWsgi.Http;

/// <summary>A request's header values as the resolver reads them: a header's lines joined by ",", or null.</summary>
public interface IForwardedHeaderSource
{
    string? Get(string name);
}

/// <summary>
/// What a trusted proxy's headers say about the client. Null members change nothing; <see cref="ClientPort"/> is 0
/// when the headers name no port. <see cref="Ignored"/> says why a header was not used (for a debug log).
/// </summary>
public readonly record struct ForwardedResult(string? ClientAddress, int ClientPort, string? Scheme, string? Ignored);

/// <summary>
/// The client address and scheme from forwarded headers, as a pure function of the peer, the header values and the
/// policy (--forwarded-allow-ips, --secure-scheme-headers); it knows nothing of Kestrel.
/// <list type="bullet">
/// <item>Only a trusted peer is listened to; a unix-socket peer (no address) is trusted unless the list is empty.
/// </item>
/// <item>X-Forwarded-For and RFC 7239 Forwarded for= are walked from the right: entries that are trusted proxies are
/// skipped, the first other address is the client. "*" trusts every peer but no entry: with it alone the right-most
/// entry (what the peer itself appended) is the client. An entry that cannot be parsed, or a Forwarded for= that is
/// unknown or obfuscated, ends the walk: the client is then the last trusted entry passed, if any.</item>
/// <item>Scheme: each --secure-scheme-headers header present votes https (its value) or http (any other value);
/// Forwarded's proto= of the chosen element votes too. Votes that disagree are all ignored.</item>
/// <item>Forwarded (with a for=) and X-Forwarded-For, when both are present, must name the same client, else neither
/// is used: a proxy manages one of them, and a client can send the other.</item>
/// </list>
/// </summary>
public sealed class ForwardedResolver
{
    public const string ForwardedHeader = "Forwarded";
    public const string XForwardedForHeader = "X-Forwarded-For";

    private readonly TrustedPeers _peers;
    // The same list without "*": who counts as a proxy inside the headers.
    private readonly TrustedPeers _hops;
    private readonly (string Name, string Value)[] _secure;

    public ForwardedResolver(string allowIps, string secureSchemeHeaders)
    {
        _peers = new TrustedPeers(allowIps);
        _hops = new TrustedPeers(string.Join(',', allowIps.Split(',', StringSplitOptions.TrimEntries)
            .Where(item => item != "*")));
        _secure = ParseSchemeHeaders(secureSchemeHeaders);
    }

    public IReadOnlyList<(string Name, string Value)> SecureSchemeHeaders => _secure;

    /// <summary>NAME=VALUE pairs, comma-separated; a pair without a name or "=" is skipped.</summary>
    public static (string Name, string Value)[] ParseSchemeHeaders(string text)
    {
        var pairs = new List<(string, string)>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = item.IndexOf('=');
            if (eq <= 0) continue;
            var name = item[..eq].Trim();
            if (name.Length > 0) pairs.Add((name, item[(eq + 1)..].Trim()));
        }
        return pairs.ToArray();
    }

    /// <summary>Whether the peer may speak for the client. Null: a unix socket, whose file permissions already
    /// decide who may connect (gunicorn trusts it the same way).</summary>
    public bool Trusts(IPAddress? peer) => peer == null ? !_peers.IsEmpty : _peers.Contains(peer);

    public ForwardedResult Resolve<THeaders>(IPAddress? peer, THeaders headers) where THeaders : IForwardedHeaderSource
    {
        if (!Trusts(peer)) return default;
        string? ignored = null;

        string? headerScheme = null;
        var schemeConflict = false;
        foreach (var (name, secureValue) in _secure)
        {
            var value = headers.Get(name);
            if (value == null) continue;
            var vote = value.AsSpan().Trim().Equals(secureValue, StringComparison.OrdinalIgnoreCase) ? "https" : "http";
            if (headerScheme == null) headerScheme = vote;
            else if (headerScheme != vote) schemeConflict = true;
        }
        if (schemeConflict)
        {
            headerScheme = null;
            ignored = "the secure-scheme headers disagree";
        }

        var forwarded = NullIfBlank(headers.Get(ForwardedHeader));
        var xff = NullIfBlank(headers.Get(XForwardedForHeader));
        if (forwarded == null && xff == null)
            return headerScheme == null && ignored == null ? default : new(null, 0, headerScheme, ignored);

        Hop forwardedClient = default, xffClient = default;
        string? forwardedProto = null;
        var forwardedNamesFor = false;
        if (forwarded != null)
            forwardedClient = WalkForwarded(forwarded, out forwardedProto, out forwardedNamesFor, ref ignored);
        if (xff != null) xffClient = WalkXForwardedFor(xff, ref ignored);

        string? address = null;
        var port = 0;
        if (forwardedNamesFor && xff != null)
        {
            var a = forwardedClient.Format();
            if (a == xffClient.Format())
            {
                address = a;
                port = forwardedClient.Port != 0 ? forwardedClient.Port : xffClient.Port;
            }
            else ignored = "Forwarded and X-Forwarded-For name different clients";
        }
        else
        {
            var hop = forwardedNamesFor ? forwardedClient : xffClient;
            address = hop.Format();
            port = hop.Port;
        }

        var scheme = headerScheme;
        if (forwardedProto != null && !schemeConflict)
        {
            if (scheme == null) scheme = forwardedProto;
            else if (scheme != forwardedProto)
            {
                scheme = null;
                ignored = "Forwarded proto= and the secure-scheme headers disagree";
            }
        }
        return new(address, address == null ? 0 : port, scheme, ignored);
    }

    private static string? NullIfBlank(string? value) =>
        value == null || value.AsSpan().Trim().IsEmpty ? null : value;

    private readonly record struct Hop(IPAddress? Address, int Port)
    {
        public string? Format() => Address == null ? null : TrustedPeers.Normalize(Address).ToString();
    }

    // ---- X-Forwarded-For ------------------------------------------------------------------------------------

    private Hop WalkXForwardedFor(string value, ref string? ignored)
    {
        Hop lastTrusted = default;
        var rest = value.AsSpan();
        while (true)
        {
            var comma = rest.LastIndexOf(',');
            var item = rest[(comma + 1)..].Trim();
            // Empty list elements are allowed (RFC 9110 section 5.6.1).
            if (!item.IsEmpty)
            {
                if (ParseNode(item, forwardedSyntax: false, out var address, out var port) != NodeKind.Address)
                {
                    ignored = "X-Forwarded-For has an entry that is not an address";
                    return lastTrusted;
                }
                if (!_hops.Contains(address)) return new Hop(address, port);
                lastTrusted = new Hop(address, port);
            }
            if (comma < 0) return lastTrusted;
            rest = rest[..comma];
        }
    }

    // ---- RFC 7239 Forwarded ---------------------------------------------------------------------------------

    internal struct Element
    {
        public bool Malformed;
        public NodeKind For;
        public IPAddress? Address;
        public int Port;
        public string? Proto;
    }

    /// <summary>The chosen element: the first from the right whose for= is not a trusted proxy (an untrusted
    /// address, unknown, obfuscated or absent), else the last trusted one passed. Its proto= votes for the scheme.
    /// </summary>
    private Hop WalkForwarded(string value, out string? proto, out bool namesFor, ref string? ignored)
    {
        proto = null;
        var elements = ParseForwarded(value);
        // A Forwarded without any for= (say, only proto=) leaves the client to X-Forwarded-For; a malformed one
        // counts as naming a client, so that junk cannot switch the check off.
        namesFor = elements.Any(e => e.Malformed || e.For != NodeKind.Missing);
        Element? lastTrusted = null;
        for (var i = elements.Count - 1; i >= 0; i--)
        {
            var e = elements[i];
            if (e.Malformed)
            {
                ignored = "Forwarded has a malformed element";
                break;
            }
            if (e.For == NodeKind.Address && _hops.Contains(e.Address!))
            {
                lastTrusted = e;
                continue;
            }
            proto = e.Proto;
            if (e.For == NodeKind.Address) return new Hop(e.Address, e.Port);
            // unknown, obfuscated or no for=: the client is hidden; the nearest known hop stands for it.
            return lastTrusted is { } known ? new Hop(known.Address, known.Port) : default;
        }
        if (lastTrusted is not { } chosen) return default;
        proto = chosen.Proto;
        return new Hop(chosen.Address, chosen.Port);
    }

    /// <summary>forwarded-element *( "," forwarded-element ), each pair *( ";" pair ), token "=" (token /
    /// quoted-string), parameter names case-insensitive. A malformed element is kept as such (it ends the walk);
    /// parsing resumes at the next comma outside quotes. Empty elements are skipped.</summary>
    internal static List<Element> ParseForwarded(string s)
    {
        var elements = new List<Element>(2);
        var i = 0;
        while (i < s.Length)
        {
            var e = new Element();
            var pairs = 0;
            bool seenFor = false, seenProto = false;
            while (true)
            {
                SkipSpace(s, ref i);
                if (i >= s.Length || s[i] == ',') break;
                if (s[i] == ';') { i++; continue; }
                var nameStart = i;
                while (i < s.Length && HeaderSyntax.IsTokenChar(s[i])) i++;
                var name = s.AsSpan(nameStart, i - nameStart);
                SkipSpace(s, ref i); // RFC 7239 has no space around "=", but some proxies write one
                if (name.IsEmpty || i >= s.Length || s[i] != '=' || !TryReadValue(s, ref i, out var v))
                {
                    e.Malformed = true;
                    break;
                }
                SkipSpace(s, ref i);
                if (i < s.Length && s[i] != ';' && s[i] != ',')
                {
                    e.Malformed = true;
                    break;
                }
                pairs++;
                if (name.Equals("for", StringComparison.OrdinalIgnoreCase))
                {
                    // Each parameter at most once per element (RFC 7239 section 4).
                    if (seenFor) { e.Malformed = true; break; }
                    seenFor = true;
                    e.For = ParseNode(v, forwardedSyntax: true, out e.Address, out e.Port);
                    if (e.For == NodeKind.Malformed) { e.Malformed = true; break; }
                }
                else if (name.Equals("proto", StringComparison.OrdinalIgnoreCase))
                {
                    if (seenProto) { e.Malformed = true; break; }
                    seenProto = true;
                    // Only the schemes a WSGI app can be told; anything else says nothing.
                    if (v.Equals("https", StringComparison.OrdinalIgnoreCase)) e.Proto = "https";
                    else if (v.Equals("http", StringComparison.OrdinalIgnoreCase)) e.Proto = "http";
                }
                // by=, host= and extensions are not used.
            }
            if (e.Malformed) SkipToComma(s, ref i);
            if (e.Malformed || pairs > 0) elements.Add(e);
            if (i < s.Length && s[i] == ',') i++;
        }
        return elements;
    }

    /// <summary>At '=': reads a token or a quoted-string (quoted-pairs unescaped). Unquoted values are read up to
    /// ';', ',' or space, so that the common unquoted for=[::1] still parses (the node check is strict).</summary>
    private static bool TryReadValue(string s, ref int i, out ReadOnlySpan<char> value)
    {
        i++; // '='
        SkipSpace(s, ref i);
        value = default;
        if (i < s.Length && s[i] == '"')
        {
            var start = ++i;
            StringBuilder? unescaped = null;
            while (i < s.Length && s[i] != '"')
            {
                if (s[i] == '\\')
                {
                    if (i + 1 >= s.Length) return false;
                    unescaped ??= new StringBuilder().Append(s, start, i - start);
                    unescaped.Append(s[i + 1]);
                    i += 2;
                    continue;
                }
                unescaped?.Append(s[i]);
                i++;
            }
            if (i >= s.Length) return false; // unterminated
            value = unescaped != null ? unescaped.ToString().AsSpan() : s.AsSpan(start, i - start);
            i++;
            return true;
        }
        var begin = i;
        while (i < s.Length && s[i] is not (';' or ',' or ' ' or '\t' or '"')) i++;
        value = s.AsSpan(begin, i - begin);
        return !value.IsEmpty;
    }

    private static void SkipSpace(string s, ref int i)
    {
        while (i < s.Length && s[i] is ' ' or '\t') i++;
    }

    private static void SkipToComma(string s, ref int i)
    {
        var quoted = false;
        for (; i < s.Length; i++)
        {
            var c = s[i];
            if (quoted && c == '\\') i++;
            else if (c == '"') quoted = !quoted;
            else if (c == ',' && !quoted) return;
        }
    }

    // ---- nodes ----------------------------------------------------------------------------------------------

    internal enum NodeKind { Missing, Address, Hidden, Malformed }

    /// <summary>
    /// IPv4 (dotted quad, no shorthand), [IPv6], either with an optional :port; X-Forwarded-For also allows a bare
    /// IPv6 address. Forwarded also allows unknown and obfuscated (_x) names and ports (RFC 7239 section 6), which
    /// hide the client (<see cref="NodeKind.Hidden"/>; an obfuscated port is port 0).
    /// </summary>
    internal static NodeKind ParseNode(ReadOnlySpan<char> node, bool forwardedSyntax, out IPAddress? address,
        out int port)
    {
        address = null;
        port = 0;
        ReadOnlySpan<char> host, portText = default;
        if (node.StartsWith("["))
        {
            var close = node.IndexOf(']');
            if (close < 0) return NodeKind.Malformed;
            host = node[1..close];
            var after = node[(close + 1)..];
            if (!after.IsEmpty)
            {
                if (after[0] != ':') return NodeKind.Malformed;
                portText = after[1..];
                if (portText.IsEmpty) return NodeKind.Malformed;
            }
            if (host.IndexOf(':') < 0 || !TryParseV6(host, out address)) return NodeKind.Malformed;
        }
        else
        {
            var colons = node.Count(':');
            if (colons >= 2)
            {
                // A bare IPv6 address: X-Forwarded-For writes them so; RFC 7239 requires brackets.
                if (forwardedSyntax || !TryParseV6(node, out address)) return NodeKind.Malformed;
                return NodeKind.Address;
            }
            if (colons == 1)
            {
                var colon = node.IndexOf(':');
                host = node[..colon];
                portText = node[(colon + 1)..];
                if (portText.IsEmpty) return NodeKind.Malformed;
            }
            else host = node;
            if (forwardedSyntax && (host.Equals("unknown", StringComparison.OrdinalIgnoreCase) || IsObfuscated(host)))
                return portText.IsEmpty || TryParsePort(portText, forwardedSyntax, out _)
                    ? NodeKind.Hidden : NodeKind.Malformed;
            if (!TryParseV4(host, out address)) return NodeKind.Malformed;
        }
        if (!portText.IsEmpty && !TryParsePort(portText, forwardedSyntax, out port))
        {
            address = null;
            return NodeKind.Malformed;
        }
        return NodeKind.Address;
    }

    private static bool IsObfuscated(ReadOnlySpan<char> s)
    {
        if (s.Length < 2 || s[0] != '_') return false;
        foreach (var c in s[1..])
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-')) return false;
        return true;
    }

    private static bool TryParsePort(ReadOnlySpan<char> s, bool forwardedSyntax, out int port)
    {
        port = 0;
        if (forwardedSyntax && IsObfuscated(s)) return true;
        if (s.Length is 0 or > 5) return false;
        foreach (var c in s)
            if (!char.IsAsciiDigit(c)) return false;
        port = int.Parse(s);
        return port is > 0 and <= 65535;
    }

    /// <summary>Four decimal parts without leading zeros: IPAddress.TryParse alone also takes "127.1", "0x7f.1"
    /// and a bare number.</summary>
    private static bool TryParseV4(ReadOnlySpan<char> s, out IPAddress? address)
    {
        address = null;
        var parts = 0;
        var digits = 0;
        for (var i = 0; i <= s.Length; i++)
        {
            if (i == s.Length || s[i] == '.')
            {
                if (digits is 0 or > 3 || (digits > 1 && s[i - digits] == '0')) return false;
                if (int.Parse(s.Slice(i - digits, digits)) > 255) return false;
                parts++;
                digits = 0;
            }
            else if (char.IsAsciiDigit(s[i])) digits++;
            else return false;
        }
        return parts == 4 && IPAddress.TryParse(s, out address);
    }

    private static bool TryParseV6(ReadOnlySpan<char> s, out IPAddress? address)
    {
        address = null;
        // No zone ids (fe80::1%eth0): they name an interface of the proxy, not a client.
        foreach (var c in s)
            if (!char.IsAsciiHexDigit(c) && c is not (':' or '.')) return false;
        return IPAddress.TryParse(s, out address) && address.AddressFamily == AddressFamily.InterNetworkV6;
    }
}
