using System.Net;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>
/// The forwarded-headers rules (<see cref="ForwardedResolver"/>, src/SharpWsgi.Http/Proxies) as a pure function:
/// peer, header values and policy in, client address, port and scheme out. The Kestrel side is in
/// Functional/ForwardedTests.
/// </summary>
public sealed class ForwardedHeadersTests
{
    private const string DefaultSecure = "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on";
    private static readonly IPAddress Loopback = IPAddress.Loopback;

    /// <summary>Headers as a request has them: names case-insensitive, repeated lines joined by ",".</summary>
    private sealed class Headers : IForwardedHeaderSource
    {
        private readonly Dictionary<string, List<string>> _values = new(StringComparer.OrdinalIgnoreCase);
        public int Lookups { get; private set; }

        public Headers(params (string Name, string Value)[] lines)
        {
            foreach (var (name, value) in lines)
            {
                if (!_values.TryGetValue(name, out var list)) _values[name] = list = new List<string>();
                list.Add(value);
            }
        }

        public string? Get(string name)
        {
            Lookups++;
            return _values.TryGetValue(name, out var list) ? string.Join(",", list) : null;
        }
    }

    private static ForwardedResult Resolve(IPAddress? peer, params (string, string)[] headers) =>
        Resolve("127.0.0.1,::1", peer, headers);

    private static ForwardedResult Resolve(string allow, IPAddress? peer, params (string, string)[] headers) =>
        new ForwardedResolver(allow, DefaultSecure).Resolve(peer, new Headers(headers));

    private static (string, string) Xff(string value) => ("X-Forwarded-For", value);
    private static (string, string) Fwd(string value) => ("Forwarded", value);
    private static (string, string) Proto(string value) => ("X-Forwarded-Proto", value);

    // ---- who is trusted -------------------------------------------------------------------------------------

    [Fact]
    public void Resolve_UntrustedPeer_ChangesNothingAndReadsNoHeader()
    {
        var headers = new Headers(Xff("1.2.3.4"), Fwd("for=1.2.3.4;proto=https"), Proto("https"));
        var result = new ForwardedResolver("10.1.2.3", DefaultSecure).Resolve(IPAddress.Parse("192.0.2.1"), headers);
        Assert.Equal(default, result);
        Assert.Equal(0, headers.Lookups);
    }

    [Fact]
    public void Resolve_TrustedPeerWithoutHeaders_ChangesNothing()
    {
        Assert.Equal(default, Resolve(Loopback));
        Assert.Equal(default, Resolve(Loopback, ("Host", "example.com"), ("Forwarded", "  "), Xff("")));
    }

    [Fact]
    public void Resolve_PeerInCidrRange_IsTrusted()
    {
        var result = Resolve("10.0.0.0/8,2001:db8::/32", IPAddress.Parse("10.9.8.7"), Xff("203.0.113.7"));
        Assert.Equal("203.0.113.7", result.ClientAddress);
        result = Resolve("10.0.0.0/8,2001:db8::/32", IPAddress.Parse("2001:db8::5"), Xff("203.0.113.7"));
        Assert.Equal("203.0.113.7", result.ClientAddress);
        Assert.Null(Resolve("10.0.0.0/8", IPAddress.Parse("11.0.0.1"), Xff("203.0.113.7")).ClientAddress);
    }

    [Fact]
    public void Resolve_Ipv4MappedPeer_MatchedAsIpv4()
    {
        var result = Resolve(IPAddress.Parse("::ffff:127.0.0.1"), Xff("203.0.113.7"));
        Assert.Equal("203.0.113.7", result.ClientAddress);
    }

    [Fact]
    public void Resolve_UnixSocketPeer_TrustedWhateverTheList()
    {
        Assert.Equal("203.0.113.7", Resolve("10.1.2.3", null, Xff("203.0.113.7")).ClientAddress);
        Assert.Equal("https", Resolve("10.1.2.3", null, Proto("https")).Scheme);
    }

    [Fact]
    public void Resolve_UnixSocketPeerWithEmptyList_Untrusted()
    {
        Assert.Equal(default, Resolve("", null, Xff("203.0.113.7"), Proto("https")));
        Assert.Equal(default, Resolve("", Loopback, Xff("203.0.113.7")));
    }

    [Fact]
    public void Resolve_StarTrustsEveryPeerButNoEntry_RightMostIsClient()
    {
        var result = Resolve("*", IPAddress.Parse("172.17.0.1"), Xff("6.6.6.6, 203.0.113.7"));
        Assert.Equal("203.0.113.7", result.ClientAddress);
        result = Resolve("*", IPAddress.Parse("172.17.0.1"), Xff("6.6.6.6, 127.0.0.1"));
        Assert.Equal("127.0.0.1", result.ClientAddress);
    }

    [Fact]
    public void Resolve_StarWithRange_RangeEntriesSkipped()
    {
        var result = Resolve("*,10.0.0.0/8", IPAddress.Parse("172.17.0.1"), Xff("6.6.6.6, 198.51.100.1, 10.0.0.5"));
        Assert.Equal("198.51.100.1", result.ClientAddress);
    }

    [Fact]
    public void Resolve_UntrustedOrNoHeaders_AllocatesNothing()
    {
        var resolver = new ForwardedResolver("127.0.0.1,::1,10.0.0.0/8", DefaultSecure);
        var headers = new Headers(("Host", "example.com"), ("Accept", "*/*"));
        var untrusted = IPAddress.Parse("192.0.2.1");
        var forged = new Headers(Xff("1.2.3.4"), Proto("https"));
        for (var i = 0; i < 100; i++)
        {
            resolver.Resolve(Loopback, headers);
            resolver.Resolve(untrusted, forged);
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            resolver.Resolve(Loopback, headers);
            resolver.Resolve(untrusted, forged);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // ---- X-Forwarded-For ------------------------------------------------------------------------------------

    [Fact]
    public void Resolve_XffSingleAddress_IsClientWithPortZero()
    {
        var result = Resolve(Loopback, Xff("203.0.113.7"));
        Assert.Equal(new ForwardedResult("203.0.113.7", 0, null, null), result);
    }

    [Fact]
    public void Resolve_XffChain_RightMostUntrustedIsClient()
    {
        var allow = "127.0.0.1,10.0.0.0/8";
        Assert.Equal("203.0.113.7",
            Resolve(allow, Loopback, Xff("6.6.6.6, 203.0.113.7, 10.0.0.2, 10.0.0.3")).ClientAddress);
        Assert.Equal("203.0.113.7", Resolve(allow, Loopback, Xff("6.6.6.6,203.0.113.7")).ClientAddress);
    }

    [Fact]
    public void Resolve_XffAllEntriesTrusted_LeftMostIsClient()
    {
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Xff("10.0.0.9, 10.0.0.2, 127.0.0.1"));
        Assert.Equal("10.0.0.9", result.ClientAddress);
    }

    [Fact]
    public void Resolve_XffSeveralLines_ReadAsOneListInOrder()
    {
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Xff("6.6.6.6"), Xff("203.0.113.7, 10.0.0.2"));
        Assert.Equal("203.0.113.7", result.ClientAddress);
        result = Resolve(Loopback, Xff("203.0.113.7"), Xff("6.6.6.6"));
        Assert.Equal("6.6.6.6", result.ClientAddress);
    }

    [Fact]
    public void Resolve_XffEmptyListElements_Skipped()
    {
        Assert.Equal("203.0.113.7", Resolve(Loopback, Xff(" , 203.0.113.7 ,, ")).ClientAddress);
    }

    [Theory]
    [InlineData("203.0.113.7:5678", "203.0.113.7", 5678)]
    [InlineData("2001:db8::1", "2001:db8::1", 0)]
    [InlineData("2001:DB8:0:0::1", "2001:db8::1", 0)]
    [InlineData("[2001:db8::1]", "2001:db8::1", 0)]
    [InlineData("[2001:db8::1]:4711", "2001:db8::1", 4711)]
    [InlineData("::ffff:203.0.113.7", "203.0.113.7", 0)]
    [InlineData("[::ffff:203.0.113.7]:80", "203.0.113.7", 80)]
    public void Resolve_XffAddressForms_Parsed(string value, string address, int port)
    {
        var result = Resolve(Loopback, Xff(value));
        Assert.Equal(address, result.ClientAddress);
        Assert.Equal(port, result.ClientPort);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("1.2.3")]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("0x7f.0.0.1")]
    [InlineData("01.2.3.4")]
    [InlineData("256.1.1.1")]
    [InlineData("1.2.3.4.5")]
    [InlineData("1.2.3.4:")]
    [InlineData("1.2.3.4:0")]
    [InlineData("1.2.3.4:99999")]
    [InlineData("1.2.3.4:12ab")]
    [InlineData("1.2.3.4 5.6.7.8")]
    [InlineData("[2001:db8::1")]
    [InlineData("[2001:db8::1]x")]
    [InlineData("[1.2.3.4]")]
    [InlineData("fe80::1%eth0")]
    [InlineData("unknown")]
    [InlineData("_hidden")]
    [InlineData("\"1.2.3.4\"")]
    [InlineData("1.2.3.4\u0000")]
    [InlineData("é.1.1.1")]
    public void Resolve_XffMalformedRightMost_IgnoredWithReason(string value)
    {
        var result = Resolve(Loopback, Xff(value), Proto("https"));
        Assert.Null(result.ClientAddress);
        Assert.Equal(0, result.ClientPort);
        Assert.NotNull(result.Ignored);
        Assert.Equal("https", result.Scheme); // the scheme does not depend on the address
    }

    [Fact]
    public void Resolve_XffMalformedBehindTrustedHop_LastTrustedIsClient()
    {
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Xff("garbage, 10.0.0.2"));
        Assert.Equal("10.0.0.2", result.ClientAddress);
        Assert.NotNull(result.Ignored);
    }

    [Fact]
    public void Resolve_XffMalformedLeftOfClient_NeverReached()
    {
        var result = Resolve(Loopback, Xff("garbage, 203.0.113.7"));
        Assert.Equal(new ForwardedResult("203.0.113.7", 0, null, null), result);
    }

    [Fact]
    public void Resolve_XffVeryLong_Handled()
    {
        var list = string.Join(", ", Enumerable.Range(0, 5000).Select(i => $"10.0.{i / 256 % 256}.{i % 256}"));
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Xff("203.0.113.7, " + list));
        Assert.Equal("203.0.113.7", result.ClientAddress);
    }

    // ---- secure-scheme headers (gunicorn's semantics) -------------------------------------------------------

    [Theory]
    [InlineData("X-Forwarded-Proto", "https", "https")]
    [InlineData("X-Forwarded-Proto", " HTTPS ", "https")]
    [InlineData("X-Forwarded-Proto", "http", "http")]
    [InlineData("X-Forwarded-Proto", "", "http")]
    [InlineData("X-Forwarded-Proto", "https, http", "http")]
    [InlineData("x-forwarded-ssl", "on", "https")]
    [InlineData("X-Forwarded-Ssl", "off", "http")]
    [InlineData("X-Forwarded-Protocol", "ssl", "https")]
    [InlineData("X-Forwarded-Protocol", "https", "http")]
    public void Resolve_SecureSchemeHeader_ListedValueHttpsElseHttp(string name, string value, string scheme)
    {
        var result = Resolve(Loopback, (name, value));
        Assert.Equal(new ForwardedResult(null, 0, scheme, null), result);
    }

    [Fact]
    public void Resolve_SecureSchemeHeadersAgree_Used()
    {
        Assert.Equal("https", Resolve(Loopback, Proto("https"), ("X-Forwarded-Ssl", "on")).Scheme);
        Assert.Equal("http", Resolve(Loopback, Proto("http"), ("X-Forwarded-Ssl", "off")).Scheme);
    }

    [Fact]
    public void Resolve_SecureSchemeHeadersDisagree_NoneUsedNever500()
    {
        var result = Resolve(Loopback, Proto("https"), ("X-Forwarded-Ssl", "off"));
        Assert.Null(result.Scheme);
        Assert.Contains("disagree", result.Ignored);
        result = Resolve(Loopback, Proto("http"), ("X-Forwarded-Protocol", "ssl"), Xff("203.0.113.7"));
        Assert.Null(result.Scheme);
        Assert.Equal("203.0.113.7", result.ClientAddress);
    }

    [Fact]
    public void Resolve_RepeatedProtoLines_JoinedSoNotHttps()
    {
        // Two lines read as "https,https", which is not the listed value: http, the safe side.
        Assert.Equal("http", Resolve(Loopback, Proto("https"), Proto("https")).Scheme);
    }

    [Fact]
    public void Resolve_CustomSecureHeaders_OnlyThoseCount()
    {
        var resolver = new ForwardedResolver("127.0.0.1", "X-Scheme=https, Front-End-Https = on");
        Assert.Equal("https", resolver.Resolve(Loopback, new Headers(("X-Scheme", "https"))).Scheme);
        Assert.Equal("https", resolver.Resolve(Loopback, new Headers(("Front-End-Https", "ON"))).Scheme);
        Assert.Null(resolver.Resolve(Loopback, new Headers(Proto("https"))).Scheme);
    }

    [Fact]
    public void Resolve_NoSecureHeaders_ProtoHeaderIgnored()
    {
        var resolver = new ForwardedResolver("127.0.0.1", "");
        Assert.Equal(default, resolver.Resolve(Loopback, new Headers(Proto("https"))));
        Assert.Equal("https", resolver.Resolve(Loopback, new Headers(Fwd("proto=https"))).Scheme);
    }

    [Fact]
    public void ParseSchemeHeaders_PairsTrimmedAndJunkSkipped()
    {
        var pairs = ForwardedResolver.ParseSchemeHeaders(" A=1 ,B = two,junk,=x,,C=");
        Assert.Equal(new[] { ("A", "1"), ("B", "two"), ("C", "") }, pairs);
    }

    // ---- RFC 7239 Forwarded ---------------------------------------------------------------------------------

    [Fact]
    public void Resolve_ForwardedRfcExample_ClientAndScheme()
    {
        var result = Resolve(Loopback, Fwd("for=192.0.2.60;proto=http;by=203.0.113.43"));
        Assert.Equal(new ForwardedResult("192.0.2.60", 0, "http", null), result);
    }

    [Theory]
    [InlineData("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17", 4711)]
    [InlineData("For=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17", 0)]
    [InlineData("FOR=\"192.0.2.60:8080\";PROTO=HTTPS", "192.0.2.60", 8080)]
    [InlineData("for=[2001:db8::1]:80", "2001:db8::1", 80)]
    [InlineData("for = 192.0.2.60 ; proto = https", "192.0.2.60", 0)]
    [InlineData("for=\"1.2.3.4:_abc\"", "1.2.3.4", 0)]
    [InlineData("for=\"\\1.2.3.4\"", "1.2.3.4", 0)]
    [InlineData("ext=\"a,b;c=\\\"d\";for=1.2.3.4", "1.2.3.4", 0)]
    [InlineData(";;for=1.2.3.4;;", "1.2.3.4", 0)]
    public void Resolve_ForwardedForForms_Parsed(string value, string address, int port)
    {
        var result = Resolve(Loopback, Fwd(value));
        Assert.Equal(address, result.ClientAddress);
        Assert.Equal(port, result.ClientPort);
        Assert.Null(result.Ignored);
    }

    [Fact]
    public void Resolve_ForwardedChain_RightMostUntrustedAndItsProto()
    {
        var value = "for=6.6.6.6;proto=http, for=192.0.2.43;proto=https, for=198.51.100.17;proto=http";
        var result = Resolve("127.0.0.1,198.51.100.0/24", Loopback, Fwd(value));
        Assert.Equal(new ForwardedResult("192.0.2.43", 0, "https", null), result);
        result = Resolve(Loopback, Fwd(value));
        Assert.Equal(new ForwardedResult("198.51.100.17", 0, "http", null), result);
    }

    [Fact]
    public void Resolve_ForwardedSeveralLines_OneList()
    {
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback,
            Fwd("for=192.0.2.43;proto=https"), Fwd("for=10.0.0.2;proto=http"));
        Assert.Equal(new ForwardedResult("192.0.2.43", 0, "https", null), result);
    }

    [Fact]
    public void Resolve_ForwardedCommaInsideQuotes_NotASeparator()
    {
        var result = Resolve(Loopback, Fwd("for=192.0.2.43;ext=\"x, for=6.6.6.6\""));
        Assert.Equal("192.0.2.43", result.ClientAddress);
        Assert.Single(ForwardedResolver.ParseForwarded("for=192.0.2.43;ext=\"x, for=6.6.6.6\""));
    }

    [Theory]
    [InlineData("for=unknown;proto=https")]
    [InlineData("for=UNKNOWN;proto=https")]
    [InlineData("for=_hidden;proto=https")]
    [InlineData("for=\"_SEVKISEK:_x.y-z\";proto=https")]
    [InlineData("for=\"unknown:443\";proto=https")]
    [InlineData("proto=https")]
    public void Resolve_ForwardedClientHidden_AddressKeptSchemeUsed(string value)
    {
        var result = Resolve(Loopback, Fwd(value));
        Assert.Equal(new ForwardedResult(null, 0, "https", null), result);
    }

    [Fact]
    public void Resolve_ForwardedHiddenBehindTrustedHop_HopIsClient()
    {
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Fwd("for=_hidden;proto=https, for=10.0.0.2"));
        Assert.Equal(new ForwardedResult("10.0.0.2", 0, "https", null), result);
    }

    [Fact]
    public void Resolve_ForwardedAllTrusted_LeftMostAndItsProto()
    {
        var result = Resolve(Loopback, Fwd("for=127.0.0.1;proto=https"));
        Assert.Equal(new ForwardedResult("127.0.0.1", 0, "https", null), result);
    }

    [Theory]
    [InlineData("for=")]
    [InlineData("for")]
    [InlineData("=1.2.3.4")]
    [InlineData("for=\"1.2.3.4")]
    [InlineData("for=\"1.2.3.4\\")]
    [InlineData("for=1.2.3.4;for=5.6.7.8")]
    [InlineData("for=1.2.3.4;proto=http;proto=https")]
    [InlineData("for=1.2.3.4 x")]
    [InlineData("for=1.2.3.4\"x\"")]
    [InlineData("for=2001:db8::1")]
    [InlineData("for=\"2001:db8::1\"")]
    [InlineData("for=\"[2001:db8::1]:\"")]
    [InlineData("for=\"[2001:db8::1]:99999\"")]
    [InlineData("for=\"_\"")]
    [InlineData("for=\"_a b\"")]
    [InlineData("for=\"1.2.3.4:_\"")]
    [InlineData("for=127.1")]
    [InlineData("for=1.2.3.4:0x50")]
    [InlineData("fo\u00e9r=1.2.3.4")]
    [InlineData("\"for\"=1.2.3.4")]
    public void Resolve_ForwardedMalformed_IgnoredWithReason(string value)
    {
        var result = Resolve(Loopback, Fwd(value));
        Assert.Null(result.ClientAddress);
        Assert.Null(result.Scheme);
        Assert.NotNull(result.Ignored);
    }

    [Theory]
    [InlineData(",,,")]
    [InlineData(";;;")]
    [InlineData(" , ; , ")]
    public void Resolve_ForwardedEmptyElements_NothingAndNoComplaint(string value)
    {
        Assert.Equal(default, Resolve(Loopback, Fwd(value)));
    }

    [Fact]
    public void Resolve_ForwardedMalformedLeftOfClient_NeverReached()
    {
        var result = Resolve(Loopback, Fwd("for=\"oops, for=192.0.2.43;proto=https"));
        // The unterminated quote swallows the rest: one malformed element, nothing used.
        Assert.Null(result.ClientAddress);
        result = Resolve(Loopback, Fwd("for=oops;;x, for=192.0.2.43;proto=https"));
        Assert.Equal(new ForwardedResult("192.0.2.43", 0, "https", null), result);
    }

    [Fact]
    public void Resolve_ForwardedMalformedBehindTrustedHop_HopIsClient()
    {
        var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Fwd("for=??, for=10.0.0.2;proto=https"));
        Assert.Equal("10.0.0.2", result.ClientAddress);
        Assert.Equal("https", result.Scheme);
        Assert.NotNull(result.Ignored);
    }

    [Theory]
    [InlineData("ftp")]
    [InlineData("ws")]
    [InlineData("h\u00e9")]
    public void Resolve_ForwardedUnknownProto_SaysNothing(string proto)
    {
        var result = Resolve(Loopback, Fwd($"for=192.0.2.60;proto=\"{proto}\""));
        Assert.Equal(new ForwardedResult("192.0.2.60", 0, null, null), result);
    }

    [Fact]
    public void ParseForwarded_Elements_ForKindsAndProtos()
    {
        var elements = ForwardedResolver.ParseForwarded(
            "for=1.2.3.4;proto=https, for=unknown, by=x, for=\"[::1]:80\";proto=HTTP, for=%");
        Assert.Equal(5, elements.Count);
        Assert.Equal(ForwardedResolver.NodeKind.Address, elements[0].For);
        Assert.Equal("https", elements[0].Proto);
        Assert.Equal(ForwardedResolver.NodeKind.Hidden, elements[1].For);
        Assert.Equal(ForwardedResolver.NodeKind.Missing, elements[2].For);
        Assert.Equal(IPAddress.IPv6Loopback, elements[3].Address);
        Assert.Equal(80, elements[3].Port);
        Assert.Equal("http", elements[3].Proto);
        Assert.True(elements[4].Malformed);
    }

    // ---- Forwarded and X-Forwarded-* together ---------------------------------------------------------------

    [Fact]
    public void Resolve_BothAgree_UsedWithForwardedPort()
    {
        var result = Resolve(Loopback, Fwd("for=\"203.0.113.7:5555\";proto=https"), Xff("203.0.113.7"),
            Proto("https"));
        Assert.Equal(new ForwardedResult("203.0.113.7", 5555, "https", null), result);
    }

    [Fact]
    public void Resolve_BothNameDifferentClients_NeitherUsed()
    {
        // nginx appends to X-Forwarded-For and passes a client's own Forwarded through untouched.
        var result = Resolve(Loopback, Fwd("for=6.6.6.6"), Xff("203.0.113.7"), Proto("https"));
        Assert.Null(result.ClientAddress);
        Assert.Equal("https", result.Scheme);
        Assert.Contains("different clients", result.Ignored);
    }

    [Fact]
    public void Resolve_ForwardedHidesClientButXffNamesOne_NeitherUsed()
    {
        var result = Resolve(Loopback, Fwd("for=_hidden"), Xff("6.6.6.6"));
        Assert.Null(result.ClientAddress);
        Assert.NotNull(result.Ignored);
    }

    [Fact]
    public void Resolve_MalformedForwardedAndXff_NeitherUsed()
    {
        var result = Resolve(Loopback, Fwd("for=\"junk"), Xff("203.0.113.7"));
        Assert.Null(result.ClientAddress);
    }

    [Fact]
    public void Resolve_ForwardedWithoutFor_XffNamesClient()
    {
        var result = Resolve(Loopback, Fwd("proto=https;by=_lb"), Xff("203.0.113.7"));
        Assert.Equal(new ForwardedResult("203.0.113.7", 0, "https", null), result);
    }

    [Fact]
    public void Resolve_ForwardedProtoAndSecureHeaderDisagree_SchemeUnchanged()
    {
        var result = Resolve(Loopback, Fwd("for=203.0.113.7;proto=https"), Proto("http"));
        Assert.Equal("203.0.113.7", result.ClientAddress);
        Assert.Null(result.Scheme);
        Assert.NotNull(result.Ignored);
    }

    [Fact]
    public void Resolve_ForwardedWithoutProto_SecureHeaderDecides()
    {
        var result = Resolve(Loopback, Fwd("for=203.0.113.7"), Proto("https"));
        Assert.Equal(new ForwardedResult("203.0.113.7", 0, "https", null), result);
    }

    [Fact]
    public void Resolve_SecureHeadersConflictAndForwardedProto_SchemeUnchanged()
    {
        var result = Resolve(Loopback, Fwd("proto=https"), Proto("https"), ("X-Forwarded-Ssl", "off"));
        Assert.Null(result.Scheme);
    }

    // ---- nothing throws -------------------------------------------------------------------------------------

    [Fact]
    public void Resolve_RandomJunk_NeverThrows()
    {
        var random = new Random(7239);
        const string alphabet = "for=\"[]:;,_ \\.1234567890abcdef:proto=https unknown\t\u00e9\0";
        for (var i = 0; i < 20_000; i++)
        {
            var chars = new char[random.Next(0, 40)];
            for (var j = 0; j < chars.Length; j++) chars[j] = alphabet[random.Next(alphabet.Length)];
            var junk = new string(chars);
            var result = Resolve("127.0.0.1,10.0.0.0/8", Loopback, Fwd(junk), Xff(junk), Proto(junk));
            if (result.ClientAddress != null) Assert.True(IPAddress.TryParse(result.ClientAddress, out _), junk);
            Assert.True(result.Scheme is null or "http" or "https");
        }
    }
}
