using SharpWsgi.Hosting.Tests.InMemory;

namespace SharpWsgi.Hosting.Tests.Server;

/// <summary>The worker's handle on its server: stop accepting while open connections go on.</summary>
[Collection(HostingCollection.Name)]
public sealed class ServerHostTests(HostingPython python)
{
    [Fact]
    public async Task StopAccepting_NewClientsAreRefused_OpenConnectionsAreServed()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();
        await client.RequestAsync(Http1.Get("/hello"));

        await server.Host.StopAcceptingAsync();

        Assert.Null(server.TryConnect());
        var served = await client.RequestAsync(Http1.Get("/hello"));
        Assert.Equal("hello", served.Text);
    }

    [Fact]
    public async Task PauseThenResume_AConnectionMadeMeanwhileIsServed()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        server.Host.PauseAccepting();
        var client = server.Connect(); // waits in the listener's queue, as in a socket's backlog
        Assert.True(client.Send(Http1.Get("/hello")));

        server.Host.ResumeAccepting();

        Assert.Equal("hello", (await client.ReadResponseAsync()).Text);
    }
}
