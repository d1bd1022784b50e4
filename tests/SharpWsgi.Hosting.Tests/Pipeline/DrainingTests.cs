using SharpWsgi.Hosting.Tests.InMemory;

namespace SharpWsgi.Hosting.Tests.Pipeline;

/// <summary>A worker that drains (recycling, reload, SIGTERM) answers what comes on open keep-alive connections
/// with Connection: close, so its clients go elsewhere for the next request.</summary>
[Collection(HostingCollection.Name)]
public sealed class DrainingTests(HostingPython python)
{
    [Fact]
    public async Task KeepAliveConnection_DrainingStarts_NextResponseClosesIt()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();
        var before = await client.RequestAsync(Http1.Get("/hello"));
        Assert.Null(before.Header("Connection"));

        server.Lifecycle.StartDraining();
        var during = await client.RequestAsync(Http1.Get("/hello"));

        Assert.Equal("hello", during.Text);
        Assert.Equal("close", during.Header("Connection"));
        Assert.Empty(await client.ReadToEndAsync());
    }

    [Fact]
    public async Task Retire_StopsAcceptingAndEndsOnceTheLastClientHasGone()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();
        await client.RequestAsync(Http1.Get("/hello"));

        var retiring = server.Host.RetireAsync(TimeSpan.FromSeconds(30));

        Assert.Null(server.TryConnect()); // the listener is unbound at once
        Assert.False(retiring.IsCompleted, "retired while a client was still connected");
        var last = await client.RequestAsync(Http1.Get("/hello"));
        Assert.Equal("close", last.Header("Connection"));
        Assert.Empty(await client.ReadToEndAsync());
        await retiring.WaitAsync(InMemoryClient.Patience);
    }
}
