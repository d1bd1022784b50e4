using SharpWsgi.Hosting.Tests.InMemory;

namespace SharpWsgi.Hosting.Tests.Pipeline;

/// <summary>
/// Responses that may not carry a body (RFC 9110: 204, 205, 304, and any answer to HEAD) leave the app's body
/// unsent, through the real Kestrel, and the connection stays in step for the next request.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class NoBodyResponseTests(HostingPython python)
{
    [Theory]
    [InlineData("/status/205")]
    [InlineData("/status/205?length")]
    public async Task Status205_AppSendsABody_ClientGetsNoneAndTheConnectionGoesOn(string target)
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();

        var reset = await client.RequestAsync(Http1.Get(target));
        Assert.Equal(205, reset.Status);
        Assert.Equal("0", reset.Header("Content-Length")); // RFC 9110 15.3.6: none, or zero
        Assert.Empty(reset.Body);

        var next = await client.RequestAsync(Http1.Get("/hello"));
        Assert.Equal(200, next.Status);
        Assert.Equal("hello", next.Text);
    }

    [Theory]
    [InlineData(204, "")]
    [InlineData(204, "?length")]
    [InlineData(304, "")]
    [InlineData(304, "?length")]
    public async Task Status204And304_AppSendsABody_ClientGetsNoneAndTheConnectionGoesOn(int status, string query)
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();

        var empty = await client.RequestAsync(Http1.Get($"/status/{status}{query}"));
        Assert.Equal(status, empty.Status);
        Assert.Null(empty.Header("Transfer-Encoding"));

        var next = await client.RequestAsync(Http1.Get("/hello"));
        Assert.Equal("hello", next.Text);
    }

    [Theory]
    [InlineData("/hello")]
    [InlineData("/chunks")]
    public async Task Head_AppSendsTheBody_ClientGetsTheHeadOnly(string target)
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();

        var head = await client.RequestAsync(Http1.Request("HEAD", target));
        Assert.Equal(200, head.Status);
        if (target == "/hello") Assert.Equal("5", head.Header("Content-Length"));

        var next = await client.RequestAsync(Http1.Get("/hello"));
        Assert.Equal("hello", next.Text);
    }
}
