using System.Net;

namespace SharpWsgi.Testing;

/// <summary>PROXY protocol v2 headers built byte by byte from the spec (haproxy's proxy-protocol.txt, section 2.2),
/// for the parser's unit tests and the functional tests that send them.</summary>
public static class ProxyHeaders
{
    /// <summary>The 12-byte v2 signature.</summary>
    public static readonly byte[] Signature =
        [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>A v2 header: signature, version/command, family/transport, length, then the payload.</summary>
    public static byte[] V2(byte versionCommand, byte familyTransport, byte[] payload, int? declaredLength = null)
    {
        var length = declaredLength ?? payload.Length;
        return Signature.Concat(new[] { versionCommand, familyTransport, (byte)(length >> 8), (byte)length })
            .Concat(payload).ToArray();
    }

    /// <summary>The address block of TCP over IPv4: source and destination addresses, then their ports.</summary>
    public static byte[] Inet4Block(string source, string destination, int sourcePort, int destPort) =>
        IPAddress.Parse(source).GetAddressBytes().Concat(IPAddress.Parse(destination).GetAddressBytes())
            .Concat(Port(sourcePort)).Concat(Port(destPort)).ToArray();

    /// <summary>A port as the header carries it, big-endian.</summary>
    public static byte[] Port(int port) => [(byte)(port >> 8), (byte)port];
}
