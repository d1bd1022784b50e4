using System.Net;
using System.Text;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The probe app wrapped in wsgiref.validate.validator (tests/apps/validated_probe.py), driven through its ordinary
/// (app-side valid) routes. The validator checks the server side too: environ keys and types, wsgi.input return
/// types, wsgi.errors, the iterator protocol and close(). Each request carries an X-Vtag; after it, the test waits
/// (inside the app) until the server closed that request's body and asserts no complaint was recorded.
/// </summary>
public sealed class ValidatorTests : ValidatorTestsBase, IClassFixture<ValidatedProbeServer>
{
    public ValidatorTests(ValidatedProbeServer probe, ITestOutputHelper output) : base(probe, output) { }
}

/// <summary>The validator's tests, run by each fixture that derives from it (one interpreter, or several: see
/// <see cref="InterpreterTests"/>).</summary>
public abstract class ValidatorTestsBase
{
    private const string SmallBody = "line1\nline2\r\n\u0000\u00ffend";
    private readonly ProbeServer _probe;
    private readonly ITestOutputHelper _out;

    protected ValidatorTestsBase(ProbeServer probe, ITestOutputHelper output)
    {
        _probe = probe;
        _out = output;
    }

    /// <summary>Reports the test as skipped, with the reason, when the fixture's interpreter is absent.</summary>
    private void SkipWithoutInterpreter()
    {
        if (_probe is ISkippableFixture { SkipReason: { } reason }) throw new SkipException(reason);
    }

    private int Port => _probe.Port;

    /// <summary>Waits until the tagged requests' bodies were closed and asserts that nothing was complained
    /// about.</summary>
    private void AssertNoComplaints(params string[] tags)
    {
        var r = Http.Get(Port, $"/__validator_complaints?await={string.Join(",", tags)}&timeout=15");
        Assert.Equal(200, r.Status);
        var json = Http.Json(r);
        var complaints = json.GetProperty("complaints").EnumerateArray()
            .Where(c => c.GetProperty("tag").ValueKind == JsonValueKind.Null ||
                tags.Contains(c.GetProperty("tag").GetString()))
            .ToList();
        foreach (var c in complaints) _out.WriteLine(c.ToString());
        Assert.True(complaints.Count == 0, "wsgiref.validate complained:\n" + string.Join("\n", complaints.Select(c =>
            $"[{c.Str("kind")}] tag={c.Str("tag")}: {c.Str("detail")}")));
        Assert.Empty(ProbeData.Strings(json.GetProperty("missing")));
    }

    private async Task<(HttpStatusCode Status, byte[] Body)> Send(HttpMethod method, string target, string tag,
        byte[]? body = null)
    {
        using var req = new HttpRequestMessage(method, target);
        req.Headers.Add("X-Vtag", tag);
        if (body != null) req.Content = new ByteArrayContent(body);
        using var r = await _probe.Client.SendAsync(req);
        return (r.StatusCode, await r.Content.ReadAsByteArrayAsync());
    }

    [SkippableFact]
    public void Validator_AppReadsInputWithoutSize_ComplaintIsRecorded()
    {
        SkipWithoutInterpreter();
        // Self-check of the harness: wsgi.input.read() without a size is an app-side violation wsgiref.validate
        // reports, so the complaint list must show it (and the AssertionError gives a 500).
        var tag = ProbeServer.NewId();
        Assert.Equal(500, RawHttp.Exchange(Port,
            $"POST /input/read HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nX-Vtag: {tag}\r\nContent-Length: 3\r\n" +
            "Connection: close\r\n\r\nabc").Status);
        var json = Http.Json(Http.Get(Port, "/__validator_complaints"));
        var mine = json.GetProperty("complaints").EnumerateArray().Where(c => c.Str("tag") == tag).ToList();
        Assert.Single(mine);
        Assert.Equal("assertion", mine[0].Str("kind"));
        Assert.Contains("wsgiref/validate.py", mine[0].Str("detail"));
        Assert.Contains("AssertionError", mine[0].Str("detail"));
    }

    [SkippableFact]
    public async Task Validator_GetEnviron_NoComplaints()
    {
        SkipWithoutInterpreter();
        var tag = ProbeServer.NewId();
        var (status, _) = await Send(HttpMethod.Get, "/environ/a%2Fb?x=1&y=%20", tag);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertNoComplaints(tag);
    }

    [SkippableFact]
    public async Task Validator_PostEnvironWithBody_NoComplaints()
    {
        SkipWithoutInterpreter();
        var tag = ProbeServer.NewId();
        var (status, body) = await Send(HttpMethod.Post, "/environ", tag, Encoding.ASCII.GetBytes("hello world"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("hello world", JsonDocument.Parse(body).RootElement.Str("body"));
        AssertNoComplaints(tag);
    }

    [SkippableTheory]
    [InlineData("/input/read_n?n=5", false)]
    [InlineData("/input/read_n?n=5", true)]
    [InlineData("/input/read_minus1", false)]
    [InlineData("/input/read_minus1", true)]
    [InlineData("/input/read_none", false)]
    [InlineData("/input/read_zero", false)]
    [InlineData("/input/readline", false)]
    [InlineData("/input/readline", true)]
    [InlineData("/input/readline_n?n=4", false)]
    [InlineData("/input/readlines", false)]
    [InlineData("/input/readlines", true)]
    [InlineData("/input/readlines_hint?hint=7", false)]
    [InlineData("/input/iter", false)]
    [InlineData("/input/iter", true)]
    [InlineData("/input/mixed", false)]
    public void Validator_InputMethods_NoComplaints(string target, bool chunked)
    {
        SkipWithoutInterpreter();
        var tag = ProbeServer.NewId();
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        var head = $"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nX-Vtag: {tag}\r\nConnection: close\r\n";
        c.Send(chunked
            ? head + $"Transfer-Encoding: chunked\r\n\r\n7\r\n{SmallBody[..7]}\r\n" +
                $"{SmallBody.Length - 7:x}\r\n{SmallBody[7..]}\r\n0\r\n\r\n"
            : head + $"Content-Length: {SmallBody.Length}\r\n\r\n{SmallBody}");
        var r = c.ReadResponse();
        Assert.True(r.Status == 200, $"{r.StatusLine}: {r.BodyText}");
        AssertNoComplaints(tag);
    }

    [SkippableTheory]
    [InlineData("/lazy", 200)]
    [InlineData("/lazy_empty_first", 503)]
    [InlineData("/generator?n=4", 200)]
    [InlineData("/generator_with_empty", 200)]
    [InlineData("/single", 200)]
    [InlineData("/two_elements", 200)]
    [InlineData("/empty", 200)]
    [InlineData("/write", 200)]
    [InlineData("/write_and_iter", 200)]
    [InlineData("/content_length/exact", 200)]
    [InlineData("/start_response/exc_info_replace", 500)]
    [InlineData("/start_response/custom_reason", 200)]
    [InlineData("/status/204", 204)]
    [InlineData("/status/304", 304)]
    [InlineData("/close_tracking?mode=normal", 200)]
    [InlineData("/file_wrapper/real", 200)]
    [InlineData("/file_wrapper/real?nocl=1", 200)]
    [InlineData("/file_wrapper/bytesio", 200)]
    [InlineData("/errors_stream?token=validator", 200)]
    [InlineData("/slow_stream?n=20&size=100", 200)]
    [InlineData("/repeated_headers", 200)]
    public async Task Validator_ResponseShapes_NoComplaints(string target, int expectedStatus)
    {
        SkipWithoutInterpreter();
        var tag = ProbeServer.NewId();
        var (status, _) = await Send(HttpMethod.Get, target, tag);
        Assert.Equal(expectedStatus, (int)status);
        AssertNoComplaints(tag);
    }

    [SkippableTheory]
    [InlineData("/head")]
    [InlineData("/generator?n=3")]
    [InlineData("/close_tracking?mode=normal")]
    public async Task Validator_HeadRequest_NoComplaints(string target)
    {
        SkipWithoutInterpreter();
        var tag = ProbeServer.NewId();
        var (status, body) = await Send(HttpMethod.Head, target, tag);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Empty(body);
        AssertNoComplaints(tag);
    }

    [SkippableFact]
    public void Validator_Http10Request_NoComplaints()
    {
        SkipWithoutInterpreter();
        var tag = ProbeServer.NewId();
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send($"GET /generator?n=2 HTTP/1.0\r\nX-Vtag: {tag}\r\n\r\n");
        Assert.Equal("chunk-0\nchunk-1\n", c.ReadResponse().BodyText);
        AssertNoComplaints(tag);
    }

    [SkippableFact]
    public void Validator_PipelinedKeepAliveRequests_NoComplaints()
    {
        SkipWithoutInterpreter();
        var tags = new[] { ProbeServer.NewId(), ProbeServer.NewId(), ProbeServer.NewId() };
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send(string.Concat(tags.Select((t, i) =>
            $"GET /environ?i={i} HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nX-Vtag: {t}\r\n" +
            "Cookie: a=1\r\nCookie: b=2\r\n\r\n")));
        for (int i = 0; i < tags.Length; i++)
            Assert.Equal($"i={i}", Http.Environ(c.ReadResponse()).Str("QUERY_STRING"));
        AssertNoComplaints(tags);
    }
}
