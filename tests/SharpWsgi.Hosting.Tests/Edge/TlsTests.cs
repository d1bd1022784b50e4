using SharpWsgi.Hosting.Tests.InMemory;
using static SharpWsgi.Testing.ProxyHeaders;

namespace SharpWsgi.Hosting.Tests.Edge;

/// <summary>A TLS listener's chain in memory: Kestrel's TLS with the listener's ALPN offer, the request's https
/// variables, and the PROXY header read before the handshake. Certificates, mTLS and suites are the functional
/// TlsTests' (tests/SharpWsgi.Tests).</summary>
[Collection(HostingCollection.Name)]
public sealed class TlsTests(HostingPython python)
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
    private static readonly byte[] EmptySettings = [0, 0, 0, 4, 0, 0, 0, 0, 0];

    [Fact]
    public async Task TlsListener_RequestSeesHttpsAndTheTlsVersion()
    {
        await using var server = await HostedServer.StartTlsAsync(python.Gateway);
        var client = await server.Connect().StartTlsAsync("http/1.1");

        var environ = await client.RequestAsync(Http1.Get("/environ?wsgi.url_scheme,HTTPS,SSL_PROTOCOL"));

        Assert.Matches(@"^wsgi\.url_scheme=https\nHTTPS=on\nSSL_PROTOCOL=TLSv1\.[23]$", environ.Text);
    }

    [Fact]
    public async Task Http2On_AlpnChoosesH2()
    {
        await using var server = await HostedServer.StartTlsAsync(python.Gateway, "--http2", "on");
        var client = await server.Connect().StartTlsAsync("h2", "http/1.1");

        Assert.Equal("h2", client.Alpn);
        client.Send([.. Preface, .. EmptySettings]);
        Assert.Equal(4, (await client.ReadExactlyAsync(9))[3]); // the server's SETTINGS frame
    }

    [Fact]
    public async Task Http2Off_AlpnChoosesHttp11()
    {
        await using var server = await HostedServer.StartTlsAsync(python.Gateway, "--http2", "off");
        var client = await server.Connect().StartTlsAsync("h2", "http/1.1");

        Assert.Equal("http/1.1", client.Alpn);
        Assert.Equal("hello", (await client.RequestAsync(Http1.Get("/hello"))).Text);
    }

    [Fact]
    public async Task ProxyHeaderThenHandshake_TheClientIsTheHeadersAndTheSchemeHttps()
    {
        await using var server = await HostedServer.StartTlsAsync(python.Gateway, "--proxy-protocol", "on");
        var connection = server.Connect(peer: "127.0.0.1");

        connection.Send(V2(0x21, 0x11, Inet4Block("203.0.113.7", "192.0.2.1", 51000, 443)));
        var client = await connection.StartTlsAsync("http/1.1");
        var environ = await client.RequestAsync(Http1.Get("/environ?REMOTE_ADDR,wsgi.url_scheme"));

        Assert.Equal("REMOTE_ADDR=203.0.113.7\nwsgi.url_scheme=https", environ.Text);
    }
}
