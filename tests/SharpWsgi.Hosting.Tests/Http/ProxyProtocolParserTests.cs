using System.Buffers;
using System.Net;
using System.Text;
using SharpWsgi.Http;
using static SharpWsgi.Testing.ProxyHeaders;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>The PROXY header parser (src/SharpWsgi.Http/Proxies/ProxyHeaderParser.cs).</summary>
public class ProxyProtocolParserTests
{
    private static readonly byte[] Http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray();

    private static ReadOnlySequence<byte> Seq(byte[] bytes) => new(bytes);
    private static byte[] Ascii(string text) => Encoding.Latin1.GetBytes(text);

    private static ProxyHeader AssertComplete(byte[] bytes, int expectedLength)
    {
        var status = ProxyHeaderParser.Parse(Seq(bytes), out var header, out var length, out var error);
        Assert.True(status == ProxyParseStatus.Complete, $"expected Complete, got {status}: {error}");
        Assert.Equal(expectedLength, length);
        return header;
    }

    private static string AssertInvalid(byte[] bytes)
    {
        var status = ProxyHeaderParser.Parse(Seq(bytes), out _, out _, out var error);
        Assert.True(status == ProxyParseStatus.Invalid, $"expected Invalid, got {status}");
        Assert.False(string.IsNullOrEmpty(error));
        return error!;
    }

    // ---- v1 -------------------------------------------------------------------------------------------------

    [Fact]
    public void Parse_V1Tcp4_GivesAddressesAndExactLength()
    {
        const string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        var header = AssertComplete(Ascii(line).Concat(Http).ToArray(), line.Length);
        Assert.Equal(1, header.Version);
        Assert.False(header.UseSocketAddresses);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.168.0.1"), 56324), header.Source);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.168.0.11"), 443), header.Destination);
    }

    [Fact]
    public void Parse_V1Tcp6_GivesAddresses()
    {
        const string line = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 65535 0\r\n";
        var header = AssertComplete(Ascii(line), line.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 65535), header.Source);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("::ffff:10.0.0.1"), 0), header.Destination);
    }

    /// <summary>The specification's worst case, UNKNOWN with two full IPv6 addresses, is exactly 107 bytes.</summary>
    [Fact]
    public void Parse_V1Longest_Fits107BytesAndOneMoreDoesNot()
    {
        const string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        var line = $"PROXY UNKNOWN {full} {full} 65535 65535\r\n";
        Assert.Equal(ProxyHeaderParser.MaxV1Length, line.Length);
        AssertComplete(Ascii(line), line.Length);
        AssertInvalid(Ascii(line.Replace("65535 65535", "65535 655350")));
        var tcp6 = $"PROXY TCP6 {full} {full} 65535 65535\r\n";
        AssertComplete(Ascii(tcp6), tcp6.Length);
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY UNKNOWN anything at all, ignored\r\n")]
    public void Parse_V1Unknown_KeepsSocketAddresses(string line)
    {
        var header = AssertComplete(Ascii(line).Concat(Http).ToArray(), line.Length);
        Assert.True(header.UseSocketAddresses);
        Assert.Null(header.Source);
    }

    [Theory]
    [InlineData("PROXY TCP4 192.168.0.1 192.16...\r\n")] // gunicorn invalid/pp_01
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n")] // invalid/pp_02
    [InlineData("PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n")] // invalid/pp_03
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 65536\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 +5 443\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 7\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n")]
    [InlineData("PROXY TCP4 192.168.000.1 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP4 192.168.0.256 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP4 3232235521 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP4 0x7f.0.0.1 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP6 192.168.0.1 2001:db8::2 56324 443\r\n")]
    [InlineData("PROXY TCP6 2001:db8::1%eth0 2001:db8::2 56324 443\r\n")]
    [InlineData("PROXY TCP6 2001:db8:::1 2001:db8::2 56324 443\r\n")]
    [InlineData("PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 443\r\n")]
    [InlineData("PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY UNKNOWNX\r\n")]
    [InlineData("PROXY \r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1\r192.168.0.11 56324 443\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 4\u00e93\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 4\t3\r\n")]
    [InlineData("PROXY TCP4 192.168.0.1 192.168.0.11 56324 4\u00003\r\n")]
    public void Parse_V1Malformed_IsInvalid(string line) => AssertInvalid(Ascii(line));

    [Fact]
    public void Parse_V1WithoutCrlfWithin107Bytes_IsInvalid()
    {
        var line = "PROXY UNKNOWN " + new string('x', 120) + "\r\n";
        Assert.Contains("107", AssertInvalid(Ascii(line)));
    }

    [Fact]
    public void Parse_V1GarbageByte_IsInvalidBeforeTheLineEnds()
    {
        // No CRLF yet, but a NUL can never be part of a v1 line: decided now, not at the header timeout.
        AssertInvalid(Ascii("PROXY TCP4 1.2.3.4\0"));
    }

    // ---- v2 -------------------------------------------------------------------------------------------------

    [Fact]
    public void Parse_V2ProxyIPv4_GivesAddresses()
    {
        var bytes = V2(0x21, 0x11, Inet4Block("192.168.1.10", "192.168.1.1", 12345, 443)).Concat(Http).ToArray();
        var header = AssertComplete(bytes, 16 + 12);
        Assert.Equal(2, header.Version);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.168.1.10"), 12345), header.Source);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.168.1.1"), 443), header.Destination);
    }

    [Fact]
    public void Parse_V2ProxyIPv6WithTlvs_SkipsTlvs()
    {
        var addresses = IPAddress.Parse("2001:db8::1").GetAddressBytes()
            .Concat(IPAddress.Parse("2001:db8::2").GetAddressBytes()).Concat(Port(54321)).Concat(Port(80));
        // PP2_TYPE_ALPN "h2", PP2_TYPE_AUTHORITY "example.com", PP2_TYPE_NOOP with 3 bytes of padding.
        var tlvs = new byte[] { 0x01, 0, 2, (byte)'h', (byte)'2' }
            .Concat(new byte[] { 0x02, 0, 11 }).Concat(Ascii("example.com"))
            .Concat(new byte[] { 0x04, 0, 3, 0, 0, 0 });
        var payload = addresses.Concat(tlvs).ToArray();
        var header = AssertComplete(V2(0x21, 0x21, payload).Concat(Http).ToArray(), 16 + payload.Length);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 54321), header.Source);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::2"), 80), header.Destination);
    }

    [Fact]
    public void Parse_V2Local_KeepsSocketAddressesAndSkipsItsBlock()
    {
        AssertComplete(V2(0x20, 0x00, Array.Empty<byte>()), 16);
        var withBlock = AssertComplete(V2(0x20, 0x11, Inet4Block("10.0.0.1", "10.0.0.2", 1, 2)), 28);
        Assert.True(withBlock.UseSocketAddresses);
        Assert.Null(withBlock.Source);
    }

    [Fact]
    public void Parse_V2ProxyUnspecOrUnix_KeepsSocketAddresses()
    {
        Assert.True(AssertComplete(V2(0x21, 0x00, Array.Empty<byte>()), 16).UseSocketAddresses);
        var unix = new byte[216];
        Encoding.ASCII.GetBytes("/run/client.sock").CopyTo(unix, 0);
        Assert.True(AssertComplete(V2(0x21, 0x31, unix), 16 + 216).UseSocketAddresses);
    }

    public static IEnumerable<object[]> MalformedV2 => new[]
    {
        new object[] { "version 1 in the binary form", V2(0x11, 0x11, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "version 3", V2(0x31, 0x11, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "command 2", V2(0x22, 0x11, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "command 15", V2(0x2F, 0x11, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "family 4", V2(0x21, 0x41, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "DGRAM", V2(0x21, 0x12, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "transport UNSPEC with INET", V2(0x21, 0x10, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "transport 3", V2(0x21, 0x13, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "INET block too short", V2(0x21, 0x11, new byte[11]) },
        new object[] { "INET6 with an INET block", V2(0x21, 0x21, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)) },
        new object[] { "UNIX block too short", V2(0x21, 0x31, new byte[100]) },
        new object[] { "TLV header cut", V2(0x21, 0x11, WithTlvBytes(1, 0)) },
        new object[] { "TLV value past the end", V2(0x21, 0x11, WithTlvBytes(1, 0, 5, 1)) },
    };

    private static byte[] WithTlvBytes(params byte[] tlvs) =>
        Inet4Block("1.2.3.4", "5.6.7.8", 1, 2).Concat(tlvs).ToArray();

    [Theory]
    [MemberData(nameof(MalformedV2))]
    public void Parse_V2Malformed_IsInvalid(string what, byte[] bytes)
    {
        var error = AssertInvalid(bytes);
        Assert.True(error.StartsWith("v2:"), $"{what}: {error}");
    }

    [Fact]
    public void Parse_V2LengthBeyondBytes_NeedsMore()
    {
        var bytes = V2(0x21, 0x11, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2), declaredLength: 40);
        Assert.Equal(ProxyParseStatus.NeedMore, ProxyHeaderParser.Parse(Seq(bytes), out _, out _, out _));
    }

    // ---- detection and split delivery -------------------------------------------------------------------------

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n")]
    [InlineData("POST / HTTP/1.1\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    [InlineData("PROXY\r\n")]
    [InlineData("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n")]
    [InlineData("\r\n\r\nGET")]
    [InlineData("\u0016\u0003\u0001\u0002\u0000")] // a TLS ClientHello
    public void Parse_NotAProxyHeader_IsNotProxy(string start)
    {
        Assert.Equal(ProxyParseStatus.NotProxy, ProxyHeaderParser.Parse(Seq(Ascii(start)), out _, out _, out _));
        Assert.Equal(ProxyParseStatus.NotProxy, ProxyHeaderParser.Detect(Seq(Ascii(start)), out _));
    }

    [Fact]
    public void Detect_WholePrefixOrSignature_GivesVersion()
    {
        Assert.Equal(ProxyParseStatus.NeedMore, ProxyHeaderParser.Detect(Seq(Ascii("PROXY")), out _));
        Assert.Equal(ProxyParseStatus.Complete, ProxyHeaderParser.Detect(Seq(Ascii("PROXY ")), out var v1));
        Assert.Equal(1, v1);
        Assert.Equal(ProxyParseStatus.NeedMore, ProxyHeaderParser.Detect(Seq(Signature[..11]), out _));
        Assert.Equal(ProxyParseStatus.Complete, ProxyHeaderParser.Detect(Seq(Signature), out var v2));
        Assert.Equal(2, v2);
        Assert.Equal(ProxyParseStatus.NeedMore, ProxyHeaderParser.Detect(ReadOnlySequence<byte>.Empty, out _));
    }

    public static IEnumerable<object[]> WholeHeaders => new[]
    {
        new object[] { "v1 TCP4", Ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n") },
        new object[] { "v1 TCP6", Ascii("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n") },
        new object[] { "v1 UNKNOWN", Ascii("PROXY UNKNOWN\r\n") },
        new object[] { "v2 IPv4", V2(0x21, 0x11, Inet4Block("192.168.1.10", "192.168.1.1", 12345, 443)) },
        new object[] { "v2 IPv4 + TLV", V2(0x21, 0x11, Inet4Block("1.2.3.4", "5.6.7.8", 1, 2)
            .Concat(new byte[] { 0x04, 0, 2, 0, 0 }).ToArray()) },
        new object[] { "v2 LOCAL", V2(0x20, 0x00, Array.Empty<byte>()) },
    };

    /// <summary>Every strict prefix needs more (never Invalid, never NotProxy); the whole header completes, with
    /// the same result whether it arrives in one piece or split across segments at any byte.</summary>
    [Theory]
    [MemberData(nameof(WholeHeaders))]
    public void Parse_ByteByByte_NeedsMoreUntilWholeThenSameResult(string what, byte[] header)
    {
        for (var n = 0; n < header.Length; n++)
        {
            var status = ProxyHeaderParser.Parse(Seq(header[..n]), out _, out _, out var error);
            Assert.True(status == ProxyParseStatus.NeedMore, $"{what}: prefix of {n} bytes gave {status} {error}");
        }
        var whole = header.Concat(Http).ToArray();
        var expected = AssertComplete(whole, header.Length);
        for (var cut = 1; cut < whole.Length; cut++)
        {
            var status = ProxyHeaderParser.Parse(Segments(whole, cut), out var split, out var length, out _);
            Assert.Equal(ProxyParseStatus.Complete, status);
            Assert.Equal(header.Length, length);
            Assert.Equal(expected, split);
        }
    }

    /// <summary>The bytes as a sequence of one-byte segments up to cut, then one segment for the rest.</summary>
    private static ReadOnlySequence<byte> Segments(byte[] bytes, int cut)
    {
        var first = new Segment(bytes.AsMemory(0, 1), 0);
        var last = first;
        for (var i = 1; i < cut; i++) last = last.Append(bytes.AsMemory(i, 1));
        last = last.Append(bytes.AsMemory(cut));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
