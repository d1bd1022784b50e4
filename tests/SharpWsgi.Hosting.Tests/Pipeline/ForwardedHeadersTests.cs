using SharpWsgi.Hosting.Tests.InMemory;

namespace SharpWsgi.Hosting.Tests.Pipeline;

/// <summary>X-Forwarded-For and the secure-scheme headers, applied for a trusted peer only (--forwarded-allow-ips),
/// as the app's environ shows them. The rules themselves are tested in Http/ForwardedHeadersTests.</summary>
[Collection(HostingCollection.Name)]
public sealed class ForwardedHeadersTests(HostingPython python)
{
    private const string Shown = "/environ?REMOTE_ADDR,wsgi.url_scheme,HTTPS,sharpwsgi.proxy_addr";
    private static readonly string[] FromProxy = ["X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https"];

    [Fact]
    public async Task TrustedPeer_ItsHeadersSetTheClientAndScheme()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect(peer: "127.0.0.1");

        var environ = await client.RequestAsync(Http1.Get(Shown, FromProxy));

        Assert.Equal("REMOTE_ADDR=203.0.113.9\nwsgi.url_scheme=https\nHTTPS=on\nsharpwsgi.proxy_addr=127.0.0.1",
            environ.Text);
    }

    [Fact]
    public async Task PeerInAConfiguredRange_IsTrusted()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway,
            "--forwarded-allow-ips", "192.0.2.0/24");
        var client = server.Connect(peer: "192.0.2.44");

        var environ = await client.RequestAsync(Http1.Get(Shown, FromProxy));

        Assert.StartsWith("REMOTE_ADDR=203.0.113.9\nwsgi.url_scheme=https\n", environ.Text);
    }

    [Fact]
    public async Task UntrustedPeer_ItsHeadersAreNotUsed()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect(peer: "198.51.100.3");

        var environ = await client.RequestAsync(Http1.Get(Shown, FromProxy));

        Assert.Equal("REMOTE_ADDR=198.51.100.3\nwsgi.url_scheme=http\nHTTPS=None\nsharpwsgi.proxy_addr=None",
            environ.Text);
    }
}
