using System.Text;
using SharpWsgi.Hosting.Tests.InMemory;
using static SharpWsgi.Testing.ProxyHeaders;

namespace SharpWsgi.Hosting.Tests.Edge;

/// <summary>
/// The PROXY protocol middleware in a listener's chain (--proxy-protocol): a header from an allowed peer sets the
/// client's address before Kestrel reads a byte of HTTP; anything else is closed before a request exists. The peer
/// it judges is the connection's remote end point, which the in-memory transport takes from the test (a unix
/// socket's connection has none, and is always allowed). The parser itself is tested in Http/.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class ProxyProtocolTests(HostingPython python)
{
    private const string Shown = "/environ?REMOTE_ADDR,REMOTE_PORT";

    /// <summary>TCP over IPv4, 203.0.113.7:51000 to 192.0.2.1:443, with an ALPN TLV ("h2") and a NOOP padding TLV.
    /// </summary>
    private static byte[] V2WithTlvs(params byte[] extra) => V2(0x21, 0x11,
        [.. Inet4Block("203.0.113.7", "192.0.2.1", 51000, 443), 0x01, 0x00, 0x02, (byte)'h', (byte)'2',
            0x04, 0x00, 0x03, 0x00, 0x00, 0x00, .. extra]);

    private static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    [Fact]
    public async Task V2HeaderWithTlvs_FromAnAllowedPeer_SetsTheClientAddress()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--proxy-protocol", "on");
        var client = server.Connect(peer: "127.0.0.1");

        client.Send([.. V2WithTlvs(), .. Bytes(Http1.Get(Shown))]);
        var environ = await client.ReadResponseAsync();

        Assert.Equal("REMOTE_ADDR=203.0.113.7\nREMOTE_PORT=51000", environ.Text);
        // The header was read once: the connection's next request keeps the client it named.
        var again = await client.RequestAsync(Http1.Get(Shown));
        Assert.Equal(environ.Text, again.Text);
    }

    [Fact]
    public async Task V1Header_FromAnAllowedPeer_SetsTheClientAddress()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--proxy-protocol", "on");
        var client = server.Connect(peer: "127.0.0.1");

        var environ = await client.RequestAsync("PROXY TCP4 198.51.100.20 192.0.2.1 40400 80\r\n" +
            Http1.Get(Shown));

        Assert.Equal("REMOTE_ADDR=198.51.100.20\nREMOTE_PORT=40400", environ.Text);
    }

    [Fact]
    public async Task MalformedV2Header_ClosesTheConnectionBeforeAnyRequest()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--proxy-protocol", "on");
        var client = server.Connect(peer: "127.0.0.1");

        // A TLV whose declared length runs past the header's end.
        client.Send([.. V2WithTlvs(0x01, 0x00, 0x05, 0x01), .. Bytes(Http1.Get(Shown))]);

        Assert.Empty(await client.ReadToEndAsync());
        Assert.StartsWith("malformed PROXY header: ", client.AbortReason);
        Assert.True(server.Log.Contains("PROXY protocol: closed a connection from 127.0.0.1:40000: malformed"),
            string.Join("\n", server.Log.Lines));
    }

    [Fact]
    public async Task PeerNotAllowed_IsClosedWithoutReadingAByte()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--proxy-protocol", "on");
        var client = server.Connect(peer: "198.51.100.3");

        client.Send([.. V2WithTlvs(), .. Bytes(Http1.Get(Shown))]);

        Assert.Empty(await client.ReadToEndAsync());
        Assert.Equal("peer not in --proxy-allow-from", client.AbortReason);
    }

    [Fact]
    public async Task Required_NoHeader_IsClosed()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--proxy-protocol", "on");
        var client = server.Connect(peer: "127.0.0.1");

        client.Send(Http1.Get(Shown));

        Assert.Empty(await client.ReadToEndAsync());
        Assert.Equal("no PROXY header (--proxy-protocol on)", client.AbortReason);
    }

    [Fact]
    public async Task Optional_NoHeader_KeepsThePeersAddress()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--proxy-protocol", "optional");
        var client = server.Connect(peer: "127.0.0.1", port: 40123);

        var environ = await client.RequestAsync(Http1.Get(Shown));

        Assert.Equal("REMOTE_ADDR=127.0.0.1\nREMOTE_PORT=40123", environ.Text);
    }
}
