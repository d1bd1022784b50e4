using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace SharpWsgi.Http;

/// <summary>What the first bytes of a connection say about a PROXY header.</summary>
public enum ProxyParseStatus
{
    /// <summary>The bytes cannot start a PROXY header: the connection speaks TLS or HTTP straight away.</summary>
    NotProxy,
    /// <summary>A prefix of a header (or of its signature): more bytes are needed to decide.</summary>
    NeedMore,
    /// <summary>A PROXY header that breaks the specification; the connection must be closed.</summary>
    Invalid,
    /// <summary>A whole, valid header.</summary>
    Complete,
}

/// <summary>
/// A parsed PROXY header. <see cref="UseSocketAddresses"/> is true for v2 LOCAL (a proxy's own health check), v1
/// UNKNOWN and address families without IP addresses (AF_UNIX, AF_UNSPEC): the connection's own addresses stay.
/// </summary>
public readonly record struct ProxyHeader(int Version, bool UseSocketAddresses, IPEndPoint? Source,
    IPEndPoint? Destination)
{
    public static ProxyHeader SocketAddresses(int version) => new(version, true, null, null);
}

/// <summary>
/// The PROXY protocol header, version 1 (text) and 2 (binary), as HAProxy's specification defines them. Pure
/// functions over the bytes received so far: no I/O, so split delivery is the caller's loop and every form can be
/// unit-tested. Only BCL types, so the test project compiles this file in directly.
/// </summary>
public static class ProxyHeaderParser
{
    /// <summary>The longest v1 line, "PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF.</summary>
    public const int MaxV1Length = 107;
    public const int V2FixedLength = 16;

    public static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;
    public static ReadOnlySpan<byte> V2Signature => "\r\n\r\n\0\r\nQUIT\n"u8;

    private const int Inet4Block = 12, Inet6Block = 36, UnixBlock = 216;

    /// <summary>
    /// From the first bytes only: NotProxy, NeedMore (a prefix of "PROXY " or of the v2 signature), or Complete
    /// with the version once the prefix or signature is whole. Nothing else of the header is looked at.
    /// </summary>
    public static ProxyParseStatus Detect(ReadOnlySequence<byte> buffer, out int version)
    {
        Span<byte> head = stackalloc byte[12];
        var length = (int)Math.Min(buffer.Length, head.Length);
        buffer.Slice(0, length).CopyTo(head);
        version = 0;
        if (length == 0) return ProxyParseStatus.NeedMore;
        var v1 = Math.Min(length, V1Prefix.Length);
        if (head[..v1].SequenceEqual(V1Prefix[..v1]))
        {
            if (v1 < V1Prefix.Length) return ProxyParseStatus.NeedMore;
            version = 1;
            return ProxyParseStatus.Complete;
        }
        if (head[..length].SequenceEqual(V2Signature[..length]))
        {
            if (length < V2Signature.Length) return ProxyParseStatus.NeedMore;
            version = 2;
            return ProxyParseStatus.Complete;
        }
        return ProxyParseStatus.NotProxy;
    }

    /// <summary>
    /// Parses a header at the start of <paramref name="buffer"/>. On Complete, <paramref name="length"/> is the
    /// exact number of header bytes (what follows belongs to TLS or HTTP); on Invalid, <paramref name="error"/>
    /// says why in a few words.
    /// </summary>
    public static ProxyParseStatus Parse(ReadOnlySequence<byte> buffer, out ProxyHeader header, out int length,
        out string? error)
    {
        header = default;
        length = 0;
        error = null;
        var detected = Detect(buffer, out var version);
        if (detected != ProxyParseStatus.Complete) return detected;
        return version == 1
            ? ParseV1(buffer, out header, out length, out error)
            : ParseV2(buffer, out header, out length, out error);
    }

    private static ProxyParseStatus ParseV1(ReadOnlySequence<byte> buffer, out ProxyHeader header, out int length,
        out string? error)
    {
        header = default;
        length = 0;
        error = null;
        Span<byte> bytes = stackalloc byte[MaxV1Length];
        var available = (int)Math.Min(buffer.Length, MaxV1Length);
        buffer.Slice(0, available).CopyTo(bytes);
        var lf = -1;
        for (var i = V1Prefix.Length; i < available; i++)
        {
            var b = bytes[i];
            if (b == (byte)'\n') { lf = i; break; }
            // Reject garbage as soon as it shows, rather than waiting out the header timeout.
            if (b != (byte)'\r' && b is < 0x20 or > 0x7E) return Fail("v1: a control or non-ASCII byte", out error);
            if (i > 0 && bytes[i - 1] == (byte)'\r') return Fail("v1: CR not followed by LF", out error);
        }
        if (lf < 0)
            return available >= MaxV1Length
                ? Fail($"v1: no CRLF within {MaxV1Length} bytes", out error)
                : ProxyParseStatus.NeedMore;
        if (bytes[lf - 1] != (byte)'\r') return Fail("v1: line ends in a bare LF", out error);
        length = lf + 1;
        var line = bytes[V1Prefix.Length..(lf - 1)];

        if (line.SequenceEqual("UNKNOWN"u8) || line.StartsWith("UNKNOWN "u8))
        {
            // The specification says to ignore whatever follows UNKNOWN and keep the connection's addresses.
            header = ProxyHeader.SocketAddresses(1);
            return ProxyParseStatus.Complete;
        }
        AddressFamily family;
        if (line.StartsWith("TCP4 "u8)) family = AddressFamily.InterNetwork;
        else if (line.StartsWith("TCP6 "u8)) family = AddressFamily.InterNetworkV6;
        else return Fail("v1: protocol is not TCP4, TCP6 or UNKNOWN", out error);

        Span<Range> fields = stackalloc Range[4];
        var rest = line[5..];
        if (!SplitExactly(rest, (byte)' ', fields)) return Fail("v1: expected addresses and ports", out error);
        if (!TryParseAddress(rest[fields[0]], family, out var source) ||
            !TryParseAddress(rest[fields[1]], family, out var destination))
            return Fail($"v1: not a {(family == AddressFamily.InterNetwork ? "TCP4" : "TCP6")} address", out error);
        if (!TryParsePort(rest[fields[2]], out var sourcePort) || !TryParsePort(rest[fields[3]], out var destPort))
            return Fail("v1: port is not a decimal number 0-65535", out error);
        header = new ProxyHeader(1, false, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destPort));
        return ProxyParseStatus.Complete;
    }

    private static ProxyParseStatus ParseV2(ReadOnlySequence<byte> buffer, out ProxyHeader header, out int length,
        out string? error)
    {
        header = default;
        length = 0;
        error = null;
        if (buffer.Length < V2FixedLength) return ProxyParseStatus.NeedMore;
        Span<byte> fixedPart = stackalloc byte[V2FixedLength];
        buffer.Slice(0, V2FixedLength).CopyTo(fixedPart);
        var versionCommand = fixedPart[12];
        var familyTransport = fixedPart[13];
        var payloadLength = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
        if (versionCommand >> 4 != 2) return Fail("v2: version is not 2", out error);
        var command = versionCommand & 0xF;
        if (command > 1) return Fail("v2: command is neither LOCAL nor PROXY", out error);
        if (buffer.Length < V2FixedLength + payloadLength) return ProxyParseStatus.NeedMore;
        length = V2FixedLength + payloadLength;

        if (command == 0)
        {
            // LOCAL: the proxy speaks for itself (health checks); the address block, if any, is to be ignored.
            header = ProxyHeader.SocketAddresses(2);
            return ProxyParseStatus.Complete;
        }
        var family = familyTransport >> 4;
        var transport = familyTransport & 0xF;
        if (family == 0)
        {
            // PROXY with AF_UNSPEC: the sender could not tell the addresses; the connection's own stand.
            header = ProxyHeader.SocketAddresses(2);
            return ProxyParseStatus.Complete;
        }
        if (family > 3) return Fail("v2: unknown address family", out error);
        if (transport != 1) return Fail("v2: transport is not STREAM", out error);
        var block = family switch { 1 => Inet4Block, 2 => Inet6Block, _ => UnixBlock };
        if (payloadLength < block) return Fail("v2: address block shorter than its family needs", out error);

        var payload = buffer.Slice(V2FixedLength, payloadLength);
        if (!TlvsWellFormed(payload.Slice(block))) return Fail("v2: malformed TLV", out error);
        if (family == 3)
        {
            header = ProxyHeader.SocketAddresses(2); // unix socket paths are no IP address for REMOTE_ADDR
            return ProxyParseStatus.Complete;
        }
        Span<byte> addresses = stackalloc byte[Inet6Block];
        payload.Slice(0, block).CopyTo(addresses);
        var size = family == 1 ? 4 : 16;
        var source = new IPAddress(addresses[..size]);
        var destination = new IPAddress(addresses[size..(2 * size)]);
        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(addresses[(2 * size)..]);
        var destPort = BinaryPrimitives.ReadUInt16BigEndian(addresses[(2 * size + 2)..]);
        header = new ProxyHeader(2, false, new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destPort));
        return ProxyParseStatus.Complete;
    }

    /// <summary>TLVs are skipped, but their framing must add up: type, 16-bit length, value, to the end.</summary>
    private static bool TlvsWellFormed(ReadOnlySequence<byte> tlvs)
    {
        Span<byte> head = stackalloc byte[3];
        while (tlvs.Length > 0)
        {
            if (tlvs.Length < 3) return false;
            tlvs.Slice(0, 3).CopyTo(head);
            var valueLength = BinaryPrimitives.ReadUInt16BigEndian(head[1..]);
            if (tlvs.Length < 3 + valueLength) return false;
            tlvs = tlvs.Slice(3 + valueLength);
        }
        return true;
    }

    /// <summary>Dotted-quad IPv4 only (no leading zeros, no short forms) or textual IPv6 without a zone.</summary>
    private static bool TryParseAddress(ReadOnlySpan<byte> text, AddressFamily family, out IPAddress address)
    {
        address = IPAddress.None;
        if (family == AddressFamily.InterNetwork)
        {
            Span<byte> octets = stackalloc byte[4];
            Span<Range> parts = stackalloc Range[4];
            if (!SplitExactly(text, (byte)'.', parts)) return false;
            for (var i = 0; i < 4; i++)
            {
                if (!TryParseDecimal(text[parts[i]], 3, out var value) || value > 255) return false;
                octets[i] = (byte)value;
            }
            address = new IPAddress(octets);
            return true;
        }
        if (text.Length is < 2 or > 45 || !text.Contains((byte)':')) return false;
        foreach (var b in text)
            if (!(char.IsAsciiHexDigit((char)b) || b is (byte)':' or (byte)'.')) return false;
        if (!IPAddress.TryParse(text, out var parsed) ||
            parsed.AddressFamily != AddressFamily.InterNetworkV6)
            return false;
        address = parsed;
        return true;
    }

    /// <summary>True when text has exactly fields.Length parts between separators (empty parts included).</summary>
    private static bool SplitExactly(ReadOnlySpan<byte> text, byte separator, Span<Range> fields)
    {
        var start = 0;
        for (var i = 0; i < fields.Length - 1; i++)
        {
            var next = text[start..].IndexOf(separator);
            if (next < 0) return false;
            fields[i] = start..(start + next);
            start += next + 1;
        }
        if (text[start..].Contains(separator)) return false;
        fields[^1] = start..text.Length;
        return true;
    }

    private static bool TryParsePort(ReadOnlySpan<byte> text, out int port) =>
        TryParseDecimal(text, 5, out port) && port <= 65535;

    /// <summary>1 to maxDigits ASCII digits, no sign, no leading zero (except "0" itself).</summary>
    private static bool TryParseDecimal(ReadOnlySpan<byte> text, int maxDigits, out int value)
    {
        value = 0;
        if (text.Length == 0 || text.Length > maxDigits || (text[0] == (byte)'0' && text.Length > 1)) return false;
        foreach (var b in text)
        {
            if (b is < (byte)'0' or > (byte)'9') return false;
            value = value * 10 + (b - '0');
        }
        return true;
    }

    private static ProxyParseStatus Fail(string reason, out string? error)
    {
        error = reason;
        return ProxyParseStatus.Invalid;
    }
}
