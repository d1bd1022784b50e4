using SharpWsgi.Hosting.Tests.InMemory;

namespace SharpWsgi.Hosting.Tests.Pipeline;

/// <summary>
/// Requests the server refuses before the app runs: the plain answer (status, then why, naming the setting) and
/// Connection: close, since the stream may not be in step after them.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class RefusalTests(HostingPython python)
{
    private static async Task<RawResponse> RefusedAsync(InMemoryClient client, string request, int status)
    {
        var response = await client.RequestAsync(request);
        Assert.True(status == response.Status, response.ToString());
        Assert.Equal("close", response.Header("Connection"));
        Assert.Equal("text/plain; charset=utf-8", response.Header("Content-Type"));
        Assert.Empty(await client.ReadToEndAsync()); // closed after the answer
        return response;
    }

    [Fact]
    public async Task HeaderFieldTooLong_Gets431NamingTheFieldAndTheLimit()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--limit-request-field_size", "100");
        var client = server.Connect();

        var refused = await RefusedAsync(client, Http1.Get("/hello", "X-Long: " + new string('a', 120)), 431);

        Assert.Equal("431 Request Header Fields Too Large: header field X-Long is 130 bytes " +
            "(--limit-request-field_size 100)\n", refused.Text);
    }

    [Fact]
    public async Task TooManyHeaderFields_Gets431NamingTheCountAndTheLimit()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--limit-request-fields", "5");
        var client = server.Connect();
        var fields = Enumerable.Range(1, 6).Select(i => $"X-Field-{i}: {i}").ToArray();

        var refused = await RefusedAsync(client, Http1.Get("/hello", fields), 431);

        // Host counts too: seven fields.
        Assert.Equal("431 Request Header Fields Too Large: the request has 7 header fields " +
            "(--limit-request-fields 5)\n", refused.Text);
    }

    [Fact]
    public async Task RequestLineTooLong_Gets414()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--limit-request-line", "40");
        var client = server.Connect();

        var refused = await RefusedAsync(client, Http1.Get("/hello?" + new string('q', 40)), 414);

        Assert.StartsWith("414 URI Too Long: the request line is 60 bytes (--limit-request-line 40)", refused.Text);
    }

    [Fact]
    public async Task ControlCharacterInAFieldValue_Gets400NamingIt()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();

        var refused = await RefusedAsync(client, Http1.Get("/hello", "X-Bell: a\u0007b"), 400);

        Assert.Equal("400 Bad Request: header field X-Bell has the control character 0x07 in its value\n",
            refused.Text);
    }

    [Fact]
    public async Task ContentLengthWithASign_Gets400()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway);
        var client = server.Connect();

        var refused = await RefusedAsync(client, Http1.Request("POST", "/echo", "abcde", "Content-Length: +5"), 400);

        Assert.StartsWith("400 Bad Request: ", refused.Text);
        Assert.Contains("Content-Length", refused.Text);
    }

    [Fact]
    public async Task DeclaredBodyOverTheLimit_Gets413BeforeTheAppRuns()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--limit-request-body", "10");
        var client = server.Connect();

        var refused = await RefusedAsync(client, Http1.Request("POST", "/echo", new string('b', 20)), 413);

        Assert.Equal("413 Payload Too Large: request body exceeds --limit-request-body 10 (Content-Length: 20)\n",
            refused.Text);
    }

    [Fact]
    public async Task ChunkedBodyOverTheLimit_Gets413()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--limit-request-body", "10");
        var client = server.Connect();
        var chunked = "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";

        var refused = await RefusedAsync(client,
            Http1.Request("POST", "/echo", chunked, "Transfer-Encoding: chunked"), 413);

        Assert.StartsWith("413 Payload Too Large: ", refused.Text);
    }

    [Fact]
    public async Task BodyWithinTheLimit_ReachesTheApp()
    {
        await using var server = await HostedServer.StartAsync(python.Gateway, "--limit-request-body", "10");
        var client = server.Connect();

        var served = await client.RequestAsync(Http1.Request("POST", "/echo", "0123456789"));

        Assert.Equal("read 10 bytes", served.Text);
    }
}
