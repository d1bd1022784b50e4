using SharpWsgi.Hosting.Tests.InMemory;

namespace SharpWsgi.Hosting.Tests.Edge;

/// <summary>HTTP/1.1 and prior-knowledge h2c on one cleartext listener (--http2 on), told apart by the first bytes.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class CleartextHttp2Tests(HostingPython python)
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
    /// <summary>An empty SETTINGS frame: length 0, type 4, no flags, stream 0.</summary>
    private static readonly byte[] EmptySettings = [0, 0, 0, 4, 0, 0, 0, 0, 0];

    [Fact]
    public async Task Preface_GetsHttp2_ServerAnswersWithItsSettings()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--http2", "on");
        var client = server.Connect();

        client.Send([.. Preface, .. EmptySettings]);
        var frame = await client.ReadExactlyAsync(9);

        Assert.Equal(4, frame[3]); // SETTINGS: Kestrel speaks HTTP/2 on this connection
        Assert.Equal(0, frame[4] & 1); // its own settings, not an acknowledgement of ours
    }

    [Fact]
    public async Task Http11_OnTheSameListener_IsServedAsBefore()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--http2", "on");
        var client = server.Connect();

        var response = await client.RequestAsync(Http1.Get("/hello"));

        Assert.Equal("hello", response.Text);
    }
}
