using System.Text;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Byte-exact HTTP/1.x framing of what the probe app returns, over raw sockets: chunked and Content-Length
/// responses, HEAD, 204/304, HTTP/1.0 close-delimited bodies, keep-alive and pipelining, 100-continue, chunked
/// request bodies, Content-Length enforcement, Connection: close, and aborts after the headers were sent.
/// Every read has the RawHttp socket timeout; nothing sleeps.
/// </summary>
public sealed class FramingTests : IClassFixture<ProbeServer>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);
    private readonly ProbeServer _probe;

    public FramingTests(ProbeServer probe) => _probe = probe;

    private int Port => _probe.Port;
    private RawHttp Connect() => new(Port, Timeout);
    private string Get(string target, string extra = "")
        => $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\n{extra}\r\n";
    private string Head(string target, string extra = "")
        => $"HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\n{extra}\r\n";

    /// <summary>Proves the connection is still in step after a response: a further request gets its exact
    /// answer.</summary>
    private void AssertNextRequestAnswered(RawHttp c)
    {
        c.Send(Get("/single", "Connection: close\r\n"));
        var next = c.ReadResponse();
        Assert.Equal("HTTP/1.1 200 OK", next.StatusLine);
        Assert.Equal("hello single", next.BodyText);
    }

    private static string RawText(RawResponse r) => Encoding.Latin1.GetString(r.Raw);

    // ---- response framing -------------------------------------------------------------------------------------

    [Fact]
    public void Chunked_GeneratorOnHttp11_ChunkedFramingWithTerminator()
    {
        using var c = Connect();
        c.Send(Get("/generator?n=3"));
        var r = c.ReadResponse();
        Assert.Equal(200, r.Status);
        Assert.True(r.Chunked, "expected Transfer-Encoding: chunked: " + RawText(r));
        Assert.Equal("chunked", r.Header("Transfer-Encoding"));
        Assert.Null(r.Header("Content-Length"));
        Assert.Equal("chunk-0\nchunk-1\nchunk-2\n", r.BodyText);
        Assert.EndsWith("\r\n0\r\n\r\n", RawText(r));
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void Chunked_EmptyChunksFromApp_NotSentAsZeroChunk()
    {
        using var c = Connect();
        c.Send(Get("/generator_with_empty"));
        var r = c.ReadResponse();
        Assert.Equal("abc", r.BodyText); // an empty chunk written as "0\r\n\r\n" would end the body after "a"
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void SingleElementList_NoContentLength_ServerAddsContentLength()
    {
        using var c = Connect();
        c.Send(Get("/single"));
        var r = c.ReadResponse();
        Assert.False(r.Chunked);
        Assert.Null(r.Header("Transfer-Encoding"));
        Assert.Equal("12", r.Header("Content-Length"));
        Assert.Equal("hello single", r.BodyText);
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void TwoElementList_Http11_Chunked()
    {
        using var c = Connect();
        c.Send(Get("/two_elements"));
        var r = c.ReadResponse();
        Assert.True(r.Chunked, RawText(r));
        Assert.Null(r.Header("Content-Length"));
        Assert.Equal("first,second", r.BodyText);
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void WriteInterleavedWithIterable_Http11_ChunkedInOrder()
    {
        using var c = Connect();
        c.Send(Get("/write_and_iter"));
        var r = c.ReadResponse();
        Assert.True(r.Chunked, RawText(r));
        Assert.Equal("written-iter1-iter2", r.BodyText);
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void EmptyList_Http11_EmptyBodyAndConnectionReusable()
    {
        using var c = Connect();
        c.Send(Get("/empty"));
        var r = c.ReadResponse();
        Assert.Equal(200, r.Status);
        Assert.Empty(r.Body);
        Assert.True(r.Chunked || r.Header("Content-Length") == "0", RawText(r));
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void ContentLengthFromApp_IterableOfChunks_SentAsIsWithoutChunking()
    {
        using var c = Connect();
        c.Send(Get("/content_length/exact"));
        var r = c.ReadResponse();
        Assert.False(r.Chunked, RawText(r));
        Assert.Equal("10", r.Header("Content-Length"));
        Assert.Equal("0123456789", r.BodyText);
        AssertNextRequestAnswered(c);
    }

    // ---- HEAD, 204, 304 ---------------------------------------------------------------------------------------

    [Fact]
    public void Head_SingleElementList_ContentLengthAndNoBodyAppRuns()
    {
        var id = ProbeServer.NewId();
        using var c = Connect();
        c.Send(Head($"/head?id={id}"));
        var r = c.ReadResponse(isHead: true);
        Assert.Equal(200, r.Status);
        Assert.Equal("17", r.Header("Content-Length"));
        AssertNextRequestAnswered(c); // a body byte after the HEAD response would break this parse
        var rec = _probe.Record(id, "call");
        Assert.Equal("HEAD", rec.GetProperty("fields").Str("method"));
    }

    [Fact]
    public void Head_Generator_NoBodyBytes()
    {
        using var c = Connect();
        c.Send(Head("/generator?n=3"));
        var r = c.ReadResponse(isHead: true);
        Assert.Equal(200, r.Status);
        AssertNextRequestAnswered(c);
    }

    [Theory]
    [InlineData("204", "")]
    [InlineData("204", "?body=1")]
    [InlineData("304", "")]
    [InlineData("304", "?body=1")]
    public void Status204Or304_AppBodyIgnored_NoBodyNoChunking(string code, string query)
    {
        using var c = Connect();
        c.Send(Get($"/status/{code}{query}"));
        var r = c.ReadResponse();
        Assert.Equal(int.Parse(code), r.Status);
        Assert.Equal(code, r.Header("X-Probe-Status"));
        Assert.Null(r.Header("Transfer-Encoding"));
        if (code == "204") Assert.Null(r.Header("Content-Length"));
        AssertNextRequestAnswered(c);
    }

    [Theory]
    [InlineData("")]
    [InlineData("?body=1")]
    [InlineData("?body=1&cl=1")]
    public void Status205_BodyDroppedContentLengthZero_ConnectionKept(string query)
    {
        // Before: an app's 205 with a body or a Content-Length got no answer at all (Kestrel refused the response
        // and the connection was dropped, with a .NET stack trace in the error log).
        using var c = Connect();
        c.Send(Get($"/status/205{query}"));
        var r = c.ReadResponse();
        Assert.Equal(205, r.Status);
        Assert.Equal("0", r.Header("Content-Length"));
        Assert.Empty(r.Body);
        AssertNextRequestAnswered(c);
    }

    // ---- HTTP/1.0 ---------------------------------------------------------------------------------------------

    [Fact]
    public void Http10_Generator_CloseDelimitedBody()
    {
        using var c = Connect();
        c.Send("GET /generator?n=3 HTTP/1.0\r\n\r\n");
        var r = c.ReadResponse();
        Assert.Equal(200, r.Status);
        Assert.Null(r.Header("Transfer-Encoding"));
        Assert.Null(r.Header("Content-Length"));
        Assert.False(r.Chunked);
        Assert.Equal("chunk-0\nchunk-1\nchunk-2\n", r.BodyText); // read to EOF: the server closed
    }

    [Fact]
    public void Http10_SingleElementList_ContentLengthThenClosed()
    {
        using var c = Connect();
        c.Send("GET /single HTTP/1.0\r\n\r\n");
        var r = c.ReadResponse();
        Assert.Equal("12", r.Header("Content-Length"));
        Assert.Equal("hello single", r.BodyText);
        Assert.True(c.IsClosedByServer(), "HTTP/1.0 without keep-alive must be closed after the response");
    }

    // ---- keep-alive and pipelining ----------------------------------------------------------------------------

    [Fact]
    public void KeepAlive_TwoSequentialRequests_ServedOnOneConnection()
    {
        using var c = Connect();
        c.Send(Get("/environ?n=1"));
        var first = Http.Environ(c.ReadResponse());
        c.Send(Get("/environ?n=2", "Connection: close\r\n"));
        var second = Http.Environ(c.ReadResponse());
        Assert.Equal("n=1", first.Str("QUERY_STRING"));
        Assert.Equal("n=2", second.Str("QUERY_STRING"));
        Assert.Equal(first.Str("REMOTE_PORT"), second.Str("REMOTE_PORT"));
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void Pipelining_TwoGetsInOneWrite_TwoResponsesInOrder()
    {
        using var c = Connect();
        c.Send(Get("/environ?n=1") + Get("/environ?n=2", "Connection: close\r\n"));
        Assert.Equal("n=1", Http.Environ(c.ReadResponse()).Str("QUERY_STRING"));
        Assert.Equal("n=2", Http.Environ(c.ReadResponse()).Str("QUERY_STRING"));
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void Pipelining_PostWithBodyThenGet_BodyNotMistakenForRequest()
    {
        using var c = Connect();
        const string body = "GET /evil HTTP/1.1\r\n\r\n"; // looks like a request; it is only a body
        c.Send($"POST /input/read_n?n=100 HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\n" +
               $"Content-Length: {body.Length}\r\n\r\n{body}" +
               Get("/environ?n=2"));
        var first = Http.Json(c.ReadResponse());
        Assert.Equal(new[] { body }, ProbeData.Strings(first.GetProperty("chunks")));
        var second = Http.Environ(c.ReadResponse());
        Assert.Equal("/environ", second.Str("PATH_INFO"));
        Assert.Equal("n=2", second.Str("QUERY_STRING"));
    }

    [Fact]
    public void Pipelining_StreamingResponseThenQuickOne_OrderKept()
    {
        using var c = Connect();
        c.Send(Get("/slow_stream?n=50&size=1000&delay_ms=2") + Get("/single"));
        var first = c.ReadResponse();
        Assert.Equal(50000, first.Body.Length);
        Assert.Equal((byte)'A', first.Body[0]);
        Assert.Equal((byte)('A' + 49 % 26), first.Body[^1]);
        Assert.Equal("hello single", c.ReadResponse().BodyText);
    }

    [Fact]
    public void Pipelining_AppIgnoresRequestBody_BodyDiscardedNextRequestServed()
    {
        using var c = Connect();
        var body = new string('z', 100_000);
        c.Send($"POST /single HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nContent-Length: {body.Length}\r\n\r\n{body}" +
            Get("/environ?after=1"));
        Assert.Equal("hello single", c.ReadResponse().BodyText);
        RawResponse second;
        try { second = c.ReadResponse(); }
        catch (EndOfStreamException) { return; } // closing instead of draining is allowed
        Assert.Equal("after=1", Http.Environ(second).Str("QUERY_STRING"));
    }

    // ---- 100-continue and request bodies ----------------------------------------------------------------------

    [Fact]
    public void ExpectContinue_AppReadsBody_Interim100ThenFinalResponse()
    {
        using var c = Connect();
        c.Send($"POST /input/read_n?n=100 HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nContent-Length: 11\r\n" +
            "Expect: 100-continue\r\n\r\n");
        var interim = c.ReadResponse();
        Assert.Equal(100, interim.Status);
        Assert.Equal("HTTP/1.1 100 Continue", interim.StatusLine);
        c.Send("hello world");
        var r = c.ReadResponse();
        Assert.Equal(200, r.Status);
        Assert.Equal(new[] { "hello world" }, ProbeData.Strings(Http.Json(r).GetProperty("chunks")));
        AssertNextRequestAnswered(c);
    }

    [Fact]
    public void ExpectContinue_ChunkedBody_Interim100ThenBodyRead()
    {
        using var c = Connect();
        c.Send($"POST /input/read_n?n=100 HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nTransfer-Encoding: chunked\r\n" +
            "Expect: 100-continue\r\n\r\n");
        Assert.Equal(100, c.ReadResponse().Status);
        c.Send("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        var r = c.ReadResponse();
        Assert.Equal(new[] { "hello world" }, ProbeData.Strings(Http.Json(r).GetProperty("chunks")));
    }

    [Fact]
    public void ExpectContinue_AppNeverReadsBody_ServerReadsAheadWith100First()
    {
        // The server reads a small body before the app runs (--body-buffer-size), so the 100 goes out then,
        // as nginx does in front of an app server.
        using var c = Connect();
        c.Send($"POST /single HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nContent-Length: 11\r\nExpect: 100-continue\r\n" +
            "Connection: close\r\n\r\n");
        Assert.Equal("HTTP/1.1 100 Continue", c.ReadResponse().StatusLine);
        c.Send("hello world");
        var r = c.ReadResponse();
        Assert.Equal("HTTP/1.1 200 OK", r.StatusLine);
        Assert.Equal("hello single", r.BodyText);
    }

    [Fact]
    public void ChunkedRequest_ExtensionsAndTrailers_BodyExact()
    {
        using var c = Connect();
        c.Send($"POST /environ HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nTransfer-Encoding: chunked\r\n" +
               "Connection: close\r\n\r\n" +
               "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
        var json = Http.Json(c.ReadResponse());
        Assert.Equal("hello 0123456789", json.Str("body"));
        Assert.False(json.GetProperty("environ").TryGetProperty("CONTENT_LENGTH", out _));
    }

    // ---- Content-Length enforcement ---------------------------------------------------------------------------

    [Theory]
    [InlineData("/content_length/over")]
    [InlineData("/content_length/over_split")]
    public void ContentLengthOver_BodyTruncatedToDeclaredLengthAndConnectionClosed(string target)
    {
        using var c = Connect();
        c.Send(Get(target)); // keep-alive: the close must come from the server
        var r = c.ReadResponse();
        Assert.Equal("5", r.Header("Content-Length"));
        Assert.Equal("01234", r.BodyText);
        Assert.True(c.IsClosedByServer(), "expected the connection closed with no byte past the declared length");
    }

    [Fact]
    public void ContentLengthUnder_ShortBodyThenConnectionClosed()
    {
        using var c = Connect();
        c.Send(Get("/content_length/under"));
        var raw = Encoding.Latin1.GetString(c.ReadToEnd()); // returns at EOF; a server that waits forever times out
        var split = raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        // The server flushes what the app sent, then resets the connection; a reset that overtakes those bytes in
        // the socket layer leaves the client with nothing, which also says the response is incomplete. What must
        // never happen is a complete-looking response or a connection left open.
        if (raw.Length > 0)
        {
            Assert.True(split > 0, "no response head: " + raw);
            Assert.Matches(new Regex("^Content-Length: 10$", RegexOptions.Multiline | RegexOptions.IgnoreCase),
                raw[..split].Replace("\r", ""));
            Assert.Equal("01234", raw[(split + 4)..]);
        }
        Assert.Equal("hello single", Http.Get(Port, "/single").BodyText);
    }

    // ---- Connection: close ------------------------------------------------------------------------------------

    [Fact]
    public void ConnectionCloseFromApp_KeepAliveRequest_ClosedAfterResponse()
    {
        using var c = Connect();
        c.Send(Get("/connection_close"));
        var r = c.ReadResponse();
        Assert.Equal("closing", r.BodyText);
        Assert.Equal("close", r.Header("Connection"), StringComparer.OrdinalIgnoreCase);
        Assert.True(c.IsClosedByServer());
    }

    [Fact]
    public void ConnectionCloseFromClient_ClosedAfterResponse()
    {
        using var c = Connect();
        c.Send(Get("/generator?n=2", "Connection: close\r\n"));
        Assert.Equal("chunk-0\nchunk-1\n", c.ReadResponse().BodyText);
        Assert.True(c.IsClosedByServer());
    }

    // ---- errors after the headers were sent -------------------------------------------------------------------

    [Fact]
    public void ErrorAfterHeaders_ChunkedBody_AbortedWithoutTerminatingChunk()
    {
        var token = ProbeServer.NewId();
        using var c = Connect();
        c.Send(Get($"/error/after?token={token}"));
        var e = Assert.Throws<EndOfStreamException>(() => c.ReadResponse());
        Assert.DoesNotContain("complete", e.Message);
        _probe.Server.WaitForOutput(Regex.Escape($"RuntimeError: probe-error-after-{token}"));
    }

    [Fact]
    public void ErrorAfterHeaders_ContentLengthBody_ClosedShort()
    {
        var token = ProbeServer.NewId();
        using var c = Connect();
        c.Send(Get($"/error/after_cl?token={token}"));
        var e = Assert.Throws<EndOfStreamException>(() => c.ReadResponse());
        Assert.Contains("after 10 of 100", e.Message);
        _probe.Server.WaitForOutput(Regex.Escape($"RuntimeError: probe-error-after-cl-{token}"));
    }
}
