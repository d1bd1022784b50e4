using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// PEP 3333 through tests/apps/probe.py served by the real server (4 Python threads): environ, wsgi.input,
/// start_response, the response rules, close(), wsgi.file_wrapper, errors and wsgi.errors. Ordinary requests go
/// through HttpClient; requests that need exact bytes (repeated headers, latin-1 bytes, HTTP/1.0) through RawHttp.
/// </summary>
public sealed class ProbeAppTests : IClassFixture<ProbeServer>, IClassFixture<MountedProbeServer>
{
    /// <summary>The small body every input test reads: three lines, the last one binary and unterminated.</summary>
    private const string SmallBody = "line1\nline2\r\n\u0000\u00ffend";
    private static readonly string[] SmallBodyLines = { "line1\n", "line2\r\n", "\u0000\u00ffend" };

    private readonly ProbeServer _probe;
    private readonly MountedProbeServer _mounted;
    private readonly ITestOutputHelper _out;

    public ProbeAppTests(ProbeServer probe, MountedProbeServer mounted, ITestOutputHelper output)
    {
        _probe = probe;
        _mounted = mounted;
        _out = output;
    }

    private int Port => _probe.Port;
    private HttpClient Client => _probe.Client;

    private async Task<JsonElement> GetJson(string target, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var r = await Client.GetAsync(target);
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(expected == r.StatusCode,
            $"GET {target}: expected {(int)expected}, got {(int)r.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>One raw request on a fresh connection (Connection: close), response parsed byte-exact.</summary>
    private RawResponse Raw(string method, string target, string headers = "", string? body = null,
        string version = "HTTP/1.1")
    {
        var sb = new StringBuilder($"{method} {target} {version}\r\nHost: 127.0.0.1:{Port}\r\n{headers}");
        if (body != null) sb.Append($"Content-Length: {Encoding.Latin1.GetByteCount(body)}\r\n");
        sb.Append("Connection: close\r\n\r\n");
        if (body != null) sb.Append(body);
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send(sb.ToString());
        return c.ReadResponse(isHead: method == "HEAD");
    }

    private static JsonElement EnvironOf(RawResponse r)
    {
        Assert.True(r.Status == 200, $"expected 200, got {r.StatusLine}: {r.BodyText}");
        return Http.Json(r).GetProperty("environ");
    }

    private static void AssertBytes(ReadOnlyMemory<byte> expected, byte[] actual, string message)
    {
        Assert.True(expected.Length == actual.Length,
            $"{message}: expected {expected.Length} bytes, got {actual.Length}");
        Assert.True(expected.Span.SequenceEqual(actual), message);
    }

    private static void AssertAbsent(JsonElement environ, params string[] keys)
    {
        foreach (var k in keys)
            Assert.False(environ.TryGetProperty(k, out var v), $"environ has {k} = {v} but must not");
    }

    // ---- environ ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Environ_GetWithQuery_CgiVariablesExact()
    {
        var json = await GetJson("/environ/x?a=1&b=%20x");
        var env = json.GetProperty("environ");
        Assert.Equal("GET", env.Str("REQUEST_METHOD"));
        Assert.Equal("", env.Str("SCRIPT_NAME"));
        Assert.Equal("/environ/x", env.Str("PATH_INFO"));
        Assert.Equal("a=1&b=%20x", env.Str("QUERY_STRING"));
        Assert.Equal("127.0.0.1", env.Str("SERVER_NAME"));
        Assert.Equal(Port.ToString(), env.Str("SERVER_PORT"));
        Assert.Equal("HTTP/1.1", env.Str("SERVER_PROTOCOL"));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal($"127.0.0.1:{Port}", env.Str("HTTP_HOST"));
        Assert.Matches("^[0-9]+$", env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void Environ_NoQuery_QueryStringPresentAndEmpty()
    {
        var env = EnvironOf(Raw("GET", "/environ"));
        Assert.Equal("", env.Str("QUERY_STRING"));
        Assert.Equal("/environ", env.Str("PATH_INFO"));
    }

    [Fact]
    public void Environ_BareQuestionMark_QueryStringEmpty()
    {
        var env = EnvironOf(Raw("GET", "/environ?"));
        Assert.Equal("", env.Str("QUERY_STRING"));
        Assert.Equal("/environ", env.Str("PATH_INFO"));
    }

    [Fact]
    public void Environ_PercentEncodedUtf8Path_DecodedBytesAsLatin1()
    {
        var env = EnvironOf(Raw("GET", "/environ/caf%C3%A9%20x%41"));
        Assert.Equal("/environ/caf\u00c3\u00a9 xA", env.Str("PATH_INFO"));
        Assert.Equal("/environ/caf%C3%A9%20x%41", env.Str("RAW_URI"));
    }

    [Fact]
    public void Environ_EncodedSlash_DecodedInPathInfoKeptInRawUriAndRequestUri()
    {
        var env = EnvironOf(Raw("GET", "/environ/a%2Fb%2fc?q=%2F&r=a+b"));
        Assert.Equal("/environ/a/b/c", env.Str("PATH_INFO"));
        Assert.Equal("q=%2F&r=a+b", env.Str("QUERY_STRING"));
        Assert.Equal("/environ/a%2Fb%2fc?q=%2F&r=a+b", env.Str("RAW_URI"));
        Assert.Equal("/environ/a%2Fb%2fc?q=%2F&r=a+b", env.Str("REQUEST_URI"));
    }

    [Fact]
    public void Environ_AbsoluteFormTarget_PathAndQuerySplit()
    {
        var env = EnvironOf(Raw("GET", $"http://127.0.0.1:{Port}/environ/abs?x=1"));
        Assert.Equal("/environ/abs", env.Str("PATH_INFO"));
        Assert.Equal("x=1", env.Str("QUERY_STRING"));
        Assert.Equal("", env.Str("SCRIPT_NAME"));
    }

    [Fact]
    public void Environ_GetWithoutBody_NoContentTypeOrContentLength()
    {
        var env = EnvironOf(Raw("GET", "/environ"));
        AssertAbsent(env, "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH");
    }

    [Fact]
    public void Environ_PostWithBody_ContentTypeAndLengthAndBody()
    {
        var r = Raw("POST", "/environ", "Content-Type: text/plain; charset=utf-8\r\n", "hello world");
        var env = EnvironOf(r);
        Assert.Equal("POST", env.Str("REQUEST_METHOD"));
        Assert.Equal("text/plain; charset=utf-8", env.Str("CONTENT_TYPE"));
        Assert.Equal("11", env.Str("CONTENT_LENGTH"));
        AssertAbsent(env, "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH");
        Assert.Equal("hello world", Http.Json(r).Str("body"));
    }

    [Fact]
    public void Environ_ChunkedPost_NoContentLengthAndBodyRead()
    {
        var body = Encoding.Latin1.GetBytes(SmallBody);
        var r = Http.PostChunked(Port, "/environ", body, chunkSize: 4);
        var env = EnvironOf(r);
        AssertAbsent(env, "CONTENT_LENGTH", "HTTP_CONTENT_LENGTH");
        Assert.Equal("chunked", env.Str("HTTP_TRANSFER_ENCODING")); // every header is passed as HTTP_*
        Assert.Equal("True", env.Str("wsgi.input_terminated"));
        Assert.Equal(SmallBody, Http.Json(r).Str("body"));
        Assert.Equal(body.Length, Http.Json(r).GetProperty("body_len").GetInt32());
    }

    [Fact]
    public void Environ_RemotePort_IsClientSocketPort()
    {
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send($"GET /environ HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nConnection: close\r\n\r\n");
        var env = EnvironOf(c.ReadResponse());
        var local = (IPEndPoint)c.Socket.LocalEndPoint!;
        Assert.Equal(local.Port.ToString(), env.Str("REMOTE_PORT"));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
    }

    [Fact]
    public void Environ_RepeatedHeaders_JoinedWithCommaSpace()
    {
        var env = EnvironOf(Raw("GET", "/environ",
            "X-Multi: a\r\nX-Custom-Header: v\r\nX-Multi: b\r\nX-Multi: c d\r\n"));
        Assert.Equal("a, b, c d", env.Str("HTTP_X_MULTI"));
        Assert.Equal("v", env.Str("HTTP_X_CUSTOM_HEADER"));
    }

    [Fact]
    public void Environ_RepeatedCookieHeaders_JoinedWithSemicolonSpace()
    {
        var env = EnvironOf(Raw("GET", "/environ", "Cookie: a=1\r\nCookie: b=2\r\nCookie: c=3; d=4\r\n"));
        Assert.Equal("a=1; b=2; c=3; d=4", env.Str("HTTP_COOKIE"));
    }

    [Fact]
    public void Environ_UnderscoreHeaderAlone_Dropped()
    {
        var env = EnvironOf(Raw("GET", "/environ", "X_Auth_User: evil\r\n"));
        AssertAbsent(env, "HTTP_X_AUTH_USER", "HTTP_X_Auth_User");
        Assert.DoesNotContain(env.EnumerateObject(),
            p => p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() == "evil");
    }

    [Fact]
    public void Environ_UnderscoreHeaderBesideDashedOne_OnlyDashedValueKept()
    {
        var env = EnvironOf(Raw("GET", "/environ", "X_Auth_User: evil\r\nX-Auth-User: good\r\nX_Auth_User: evil2\r\n"));
        Assert.Equal("good", env.Str("HTTP_X_AUTH_USER"));
    }

    [Fact]
    public void Environ_NonAsciiHeaderBytes_DecodedAsLatin1()
    {
        // 0xE9 alone, and the UTF-8 bytes C3 A9: PEP 3333 says header values are the bytes decoded as latin-1.
        var env = EnvironOf(Raw("GET", "/environ", "X-Latin: caf\u00e9\r\nX-Utf8: caf\u00c3\u00a9\r\n"));
        Assert.Equal("caf\u00e9", env.Str("HTTP_X_LATIN"));
        Assert.Equal("caf\u00c3\u00a9", env.Str("HTTP_X_UTF8"));
    }

    [Fact]
    public async Task Environ_WsgiKeys_ExactValuesAndTypes()
    {
        var json = await GetJson("/environ");
        var env = json.GetProperty("environ");
        var types = json.GetProperty("types");
        var checks = json.GetProperty("checks");
        Assert.Equal("(1, 0)", env.Str("wsgi.version"));
        Assert.Equal("tuple", types.Str("wsgi.version"));
        Assert.Equal("http", env.Str("wsgi.url_scheme"));
        Assert.Equal("str", types.Str("wsgi.url_scheme"));
        Assert.Equal("False", env.Str("wsgi.run_once"));
        Assert.Equal("True", env.Str("wsgi.input_terminated"));
        Assert.Equal("True", env.Str("wsgi.multithread")); // --threads 4
        Assert.Equal("False", env.Str("wsgi.multiprocess")); // one worker process
        foreach (var k in new[] { "wsgi.run_once", "wsgi.input_terminated", "wsgi.multithread", "wsgi.multiprocess" })
            Assert.Equal("bool", types.Str(k));
        Assert.True(checks.GetProperty("file_wrapper_callable").GetBoolean());
        Assert.True(checks.GetProperty("environ_is_dict").GetBoolean());
        Assert.Equal(new[] { "read", "readline", "readlines", "__iter__" },
            ProbeData.Strings(checks.GetProperty("input_methods")));
        Assert.Equal(new[] { "write", "writelines", "flush" }, ProbeData.Strings(checks.GetProperty("errors_methods")));
        Assert.Empty(ProbeData.Strings(checks.GetProperty("non_str_cgi_keys")));
        foreach (var k in new[] { "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                     "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST", "wsgi.input",
                     "wsgi.errors", "wsgi.file_wrapper" })
            Assert.True(env.TryGetProperty(k, out _), $"environ lacks {k}");
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    [InlineData("PATCH")]
    [InlineData("OPTIONS")]
    [InlineData("PURGE")]
    public void Environ_Method_RequestMethodExact(string method)
    {
        var env = EnvironOf(Raw(method, "/environ", body: method is "GET" or "OPTIONS" ? null : ""));
        Assert.Equal(method, env.Str("REQUEST_METHOD"));
    }

    [Fact]
    public void Environ_Http10Request_ServerProtocolHttp10()
    {
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send("GET /environ?v=10 HTTP/1.0\r\n\r\n");
        var env = EnvironOf(c.ReadResponse());
        Assert.Equal("HTTP/1.0", env.Str("SERVER_PROTOCOL"));
        Assert.Equal("v=10", env.Str("QUERY_STRING"));
        Assert.Equal("GET", env.Str("REQUEST_METHOD"));
    }

    [Theory]
    [InlineData("/mount/environ/x?y=1", "/environ/x", "y=1")]
    [InlineData("/mount/environ/a%2Fb", "/environ/a/b", "")]
    [InlineData("/mount/", "/", "")]
    [InlineData("/mount", "", "")]
    public void Environ_RootPath_ScriptNameIsPrefixPathInfoIsRest(string target, string pathInfo, string query)
    {
        var port = _mounted.Port;
        var env = EnvironOf(RawHttp.Exchange(port,
            $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"));
        Assert.Equal("/mount", env.Str("SCRIPT_NAME"));
        Assert.Equal(pathInfo, env.Str("PATH_INFO"));
        Assert.Equal(query, env.Str("QUERY_STRING"));
    }

    // ---- wsgi.input -------------------------------------------------------------------------------------------

    public static IEnumerable<object[]> InputModes()
    {
        var all = new[] { SmallBody };
        var cases = new (string Target, string[] Chunks)[]
        {
            ("/input/read", all),
            ("/input/read_n?n=5", new[] { "line1", "\nline", "2\r\n\u0000\u00ff", "end" }),
            ("/input/read_n?n=100", all),
            ("/input/read_minus1", all),
            ("/input/read_none", all),
            ("/input/read_zero", new[] { "", SmallBody }),
            ("/input/readline", SmallBodyLines),
            ("/input/readline_n?n=4", new[] { "line", "1\n", "line", "2\r\n", "\u0000\u00ffen", "d" }),
            ("/input/readlines", SmallBodyLines),
            ("/input/iter", SmallBodyLines),
            ("/input/mixed", new[] { "line1\n", "lin", "e2\r\n", "\u0000\u00ffend" }),
        };
        foreach (var chunked in new[] { false, true })
            foreach (var (target, chunks) in cases)
                yield return new object[] { target, chunked, chunks };
    }

    [Theory]
    [MemberData(nameof(InputModes))]
    public void Input_ReadMethod_ReturnsExactBytesThenEmpty(string target, bool chunked, string[] expected)
    {
        // Keep-alive on purpose: a read that blocked past the end of the body would hang here until the timeout.
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        var body = Encoding.Latin1.GetBytes(SmallBody);
        var head = $"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\n";
        if (!chunked)
        {
            c.Send(head + $"Content-Length: {body.Length}\r\n\r\n");
            c.Send(body);
        }
        else
        {
            var sb = new StringBuilder(head + "Transfer-Encoding: chunked\r\n\r\n");
            for (int i = 0; i < SmallBody.Length; i += 3) // chunk boundaries fall inside lines
            {
                var part = SmallBody.Substring(i, Math.Min(3, SmallBody.Length - i));
                sb.Append($"{part.Length:x}\r\n{part}\r\n");
            }
            sb.Append("0\r\n\r\n");
            c.Send(sb.ToString());
        }
        var r = c.ReadResponse();
        Assert.True(r.Status == 200, $"{r.StatusLine}: {r.BodyText}");
        var json = Http.Json(r);
        Assert.Equal(expected, ProbeData.Strings(json.GetProperty("chunks")));
        Assert.Equal(new[] { "bytes" }, ProbeData.Strings(json.GetProperty("types")));
        Assert.Equal(new[] { "", "" }, ProbeData.Strings(json.GetProperty("after")));

        // The connection is still in step: a second request on it is answered.
        c.Send($"GET /single HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nConnection: close\r\n\r\n");
        Assert.Equal("hello single", c.ReadResponse().BodyText);
    }

    [Fact]
    public void Input_NoBody_EveryReadReturnsEmptyAtOnce()
    {
        foreach (var mode in new[] { "read", "read_n?n=5", "readline", "readlines", "iter" })
        {
            var json = Http.Json(Raw("GET", "/input/" + mode));
            var chunks = ProbeData.Strings(json.GetProperty("chunks"));
            Assert.True(chunks.All(s => s == ""), $"{mode}: expected nothing, got [{string.Join(",", chunks)}]");
            Assert.Equal(new[] { "", "" }, ProbeData.Strings(json.GetProperty("after")));
        }
    }

    [Fact]
    public void Input_ReadlinesHint_ReturnsWholeLinesCoveringHintRestUnread()
    {
        var json = Http.Json(Raw("POST", "/input/readlines_hint?hint=7", body: SmallBody));
        var lines = ProbeData.Strings(json.GetProperty("lines"));
        var rest = json.Str("rest");
        // hint 7 needs "line1\n" (6) and "line2\r\n"; a server may ignore the hint and return every line.
        Assert.True(lines.Length >= 2, $"readlines(7) returned [{string.Join(",", lines)}]");
        Assert.Equal(SmallBodyLines.Take(lines.Length), lines);
        Assert.Equal(SmallBody, string.Concat(lines) + rest);
        Assert.Equal(new[] { "", "" }, ProbeData.Strings(json.GetProperty("after")));
    }

    [Fact]
    public void Input_LargeChunkedBody_ReadNReturnsFullBlocksAndExactBytes()
    {
        var body = new byte[1_000_003];
        new Random(42).NextBytes(body);
        var r = Http.PostChunked(Port, "/input/read_n?n=65536", body, chunkSize: 7001);
        Assert.True(r.Status == 200, r.StatusLine + r.BodyText);
        var json = Http.Json(r);
        Assert.Equal(body.Length, json.GetProperty("total").GetInt32());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), json.Str("sha256"));
        var lengths = json.GetProperty("lengths").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.All(lengths[..^1], n => Assert.Equal(65536, n)); // read(n) returns n bytes until the end
        Assert.Equal(body.Length % 65536, lengths[^1]);
    }

    [Fact]
    public void Input_LargeContentLengthBody_IterationYieldsEveryLine()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < 40000; i++) sb.Append($"line-{i:D6}\n");
        var body = Encoding.ASCII.GetBytes(sb.ToString());
        var r = Http.Post(Port, "/input/iter", body);
        var json = Http.Json(r);
        var lengths = json.GetProperty("lengths").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(40000, lengths.Length);
        Assert.All(lengths, n => Assert.Equal(12, n));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), json.Str("sha256"));
    }

    // ---- start_response ---------------------------------------------------------------------------------------

    public static IEnumerable<object[]> BadStartResponseCases() => new[]
    {
        "status_bytes", "status_int", "status_no_reason", "status_non_numeric", "status_short_code", "status_long_code",
        "status_crlf", "status_lf", "status_nul", "status_non_latin1", "headers_not_list", "header_not_tuple",
        "header_tuple_len3", "header_name_bytes", "header_value_bytes", "header_value_int", "header_value_cr",
        "header_value_lf", "header_value_crlf_injection", "header_value_nul", "header_value_non_latin1",
        "header_name_crlf", "header_name_non_latin1", "header_name_colon", "header_name_space", "header_name_empty",
    }.Select(c => new object[] { c });

    [Theory]
    [MemberData(nameof(BadStartResponseCases))]
    public void StartResponse_InvalidStatusOrHeaders_RaisesPythonExceptionInApp(string @case)
    {
        var r = Raw("GET", "/start_response/" + @case);
        Assert.True(r.Status == 200, $"{r.StatusLine}: {r.BodyText}");
        var json = Http.Json(r);
        _out.WriteLine(json.ToString());
        Assert.True(json.GetProperty("raised").GetBoolean(),
            $"start_response accepted the invalid arguments of case {@case}");
        Assert.False(string.IsNullOrEmpty(json.Str("type")));
        Assert.Null(r.Header("X-Injected"));
        Assert.Null(r.Header("X-A"));
    }

    [Theory]
    [InlineData("second_call")]
    [InlineData("second_call_exc_info_none")]
    public void StartResponse_SecondCallWithoutExcInfo_Raises(string @case)
    {
        var json = Http.Json(Raw("GET", "/start_response/" + @case));
        Assert.True(json.GetProperty("raised").GetBoolean(),
            "a second start_response call without exc_info was accepted");
    }

    [Fact]
    public async Task StartResponse_ExcInfoBeforeHeadersSent_ReplacesStatusAndHeaders()
    {
        using var r = await Client.GetAsync("/start_response/exc_info_replace");
        Assert.Equal(HttpStatusCode.InternalServerError, r.StatusCode);
        Assert.Equal("2", r.Headers.TryGetValues("X-Second", out var v) ? v.Single() : null);
        Assert.False(r.Headers.Contains("X-First"), "the first call's headers were sent");
        Assert.Equal("replaced", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StartResponse_ExcInfoAsKeyword_ReplacesStatusAndHeaders()
    {
        using var r = await Client.GetAsync("/start_response/exc_info_keyword");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Equal("2", r.Headers.TryGetValues("X-Second", out var v) ? v.Single() : null);
        Assert.False(r.Headers.Contains("X-First"));
        Assert.Equal("replaced by keyword", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StartResponse_ExcInfoAfterHeadersSent_ReraisesTheOriginalException()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/start_response/exc_info_after_headers?id={id}");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("partial;end", await r.Content.ReadAsStringAsync());
        var rec = _probe.Record(id, "done");
        Assert.Equal(new[] { "reraised_same", "done" }, ProbeData.Strings(rec.GetProperty("events")));
    }

    [Fact]
    public async Task StartResponse_Call_ReturnsCallableWrite()
    {
        var json = await GetJson("/start_response/write_callable");
        Assert.True(json.GetProperty("callable").GetBoolean());
    }

    [Fact]
    public void StartResponseWrite_NonBytesArgument_RaisesInApp()
    {
        var json = Http.Json(Raw("GET", "/write_non_bytes"));
        Assert.True(json.GetProperty("raised").GetBoolean(), "write('a str') was accepted");
    }

    [Theory]
    [InlineData("custom_reason", "HTTP/1.1 200 Probe Reason Phrase", "reason")]
    [InlineData("custom_code", "HTTP/1.1 299 Probe Custom", "custom")]
    public void StartResponse_StatusString_SentVerbatim(string @case, string statusLine, string body)
    {
        var r = Raw("GET", "/start_response/" + @case);
        Assert.Equal(statusLine, r.StatusLine);
        Assert.Equal(body, r.BodyText);
    }

    // ---- response shapes --------------------------------------------------------------------------------------

    [Fact]
    public async Task Response_GeneratorCallsStartResponseLazily_HeadersFromFirstNext()
    {
        using var r = await Client.GetAsync("/lazy");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("yes", r.Headers.GetValues("X-Lazy").Single());
        Assert.Equal("lazy-body", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Response_OnlyEmptyChunksYielded_HeadersNotSentSoExcInfoReplacesThem()
    {
        using var r = await Client.GetAsync("/lazy_empty_first");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Equal("second", r.Headers.GetValues("X-Phase").Single());
        Assert.Equal("second", await r.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/write", "one,two")]
    [InlineData("/write_and_iter", "written-iter1-iter2")]
    [InlineData("/generator?n=3", "chunk-0\nchunk-1\nchunk-2\n")]
    [InlineData("/two_elements", "first,second")]
    [InlineData("/single", "hello single")]
    [InlineData("/empty", "")]
    [InlineData("/generator_with_empty", "abc")]
    [InlineData("/content_length/exact", "0123456789")]
    public async Task Response_BodyShape_BodyExactInOrder(string target, string expected)
    {
        using var r = await Client.GetAsync(target);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(expected, await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public void Response_RepeatedHeadersFromApp_SeparateLinesInOrderAppDateAndServerKept()
    {
        var r = Raw("GET", "/repeated_headers");
        Assert.Equal("repeated", r.BodyText);
        Assert.Equal(new[] { "a=1; Path=/", "b=2" }, r.HeaderValues("Set-Cookie").ToArray());
        Assert.Equal(new[] { "one", "two" }, r.HeaderValues("X-Rep").ToArray());
        Assert.Equal(new[] { "probe-server" }, r.HeaderValues("Server").ToArray());
        Assert.Equal(new[] { "Thu, 01 Jan 1970 00:00:00 GMT" }, r.HeaderValues("Date").ToArray());
    }

    [Fact]
    public async Task Response_ManyChunksStreamed_AllBytesInOrder()
    {
        using var r = await Client.GetAsync("/slow_stream?n=200&size=1000&delay_ms=1");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var body = await r.Content.ReadAsByteArrayAsync();
        var expected = Enumerable.Range(0, 200).SelectMany(i => Enumerable.Repeat((byte)(65 + i % 26), 1000)).ToArray();
        Assert.Equal(expected.Length, body.Length);
        Assert.True(expected.AsSpan().SequenceEqual(body), "streamed body differs");
    }

    [Theory]
    [InlineData("Transfer-Encoding", "chunked")]
    [InlineData("transfer-encoding", "chunked")]
    [InlineData("Upgrade", "websocket")]
    [InlineData("Keep-Alive", "timeout=5")]
    [InlineData("TE", "trailers")]
    [InlineData("Trailer", "X-Checksum")]
    [InlineData("Proxy-Authenticate", "Basic")]
    [InlineData("Proxy-Connection", "keep-alive")]
    public async Task Response_HopByHopHeaderFromApp_Returns500(string name, string value)
    {
        using var r = await Client.GetAsync(
            $"/hop_by_hop?name={Uri.EscapeDataString(name)}&value={Uri.EscapeDataString(value)}");
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.InternalServerError,
            $"{name}: {value} -> {(int)r.StatusCode} {body}");
        Assert.DoesNotContain("accepted", body);
        // and the server goes on serving
        using var next = await Client.GetAsync("/single");
        Assert.Equal("hello single", await next.Content.ReadAsStringAsync());
    }

    // ---- close() ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Close_NormalCompletion_CalledExactlyOnce()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/close_tracking?id={id}&mode=normal");
        Assert.Equal("part1;part2;part3;", await r.Content.ReadAsStringAsync());
        var rec = _probe.WaitClosed(id);
        Assert.Equal(new[] { "call", "close" }, ProbeData.Strings(rec.GetProperty("events")));
    }

    [Theory]
    [InlineData("raise_first")]
    [InlineData("no_start_response")]
    [InlineData("non_bytes")]
    public void Close_ErrorBeforeAnyBody_500AndCalledExactlyOnce(string mode)
    {
        var id = ProbeServer.NewId();
        var r = Raw("GET", $"/close_tracking?id={id}&mode={mode}");
        Assert.Equal(500, r.Status);
        var rec = _probe.WaitClosed(id);
        Assert.Equal(new[] { "call", "close" }, ProbeData.Strings(rec.GetProperty("events")));
    }

    [Fact]
    public void Close_ExceptionDuringIteration_ConnectionAbortedAndCalledExactlyOnce()
    {
        var id = ProbeServer.NewId();
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send($"GET /close_tracking?id={id}&mode=raise HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\n\r\n");
        Assert.Throws<EndOfStreamException>(() => c.ReadResponse());
        var rec = _probe.WaitClosed(id);
        Assert.Equal(new[] { "call", "close" }, ProbeData.Strings(rec.GetProperty("events")));
        _probe.Server.WaitForOutput("probe: close_tracking raise");
    }

    [Fact]
    public void Close_ClientDisconnectsMidBody_CalledExactlyOnceAndIterationStops()
    {
        var id = ProbeServer.NewId();
        const int total = 2000; // 2000 x 64 KiB = 125 MiB: far more than the socket buffers can hold
        using (var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            s.ReceiveTimeout = 15000;
            s.Connect("127.0.0.1", Port);
            s.Send(Encoding.ASCII.GetBytes($"GET /close_tracking?id={id}&mode=endless&total={total} HTTP/1.1\r\n" +
                $"Host: 127.0.0.1:{Port}\r\n\r\n"));
            var buf = new byte[65536];
            long received = 0;
            while (received < 512 * 1024)
            {
                var n = s.Receive(buf);
                Assert.True(n > 0, $"server closed after {received} bytes");
                received += n;
            }
            s.LingerState = new LingerOption(true, 0); // close with RST: the client is gone
        }
        var rec = _probe.WaitClosed(id, timeoutSeconds: 30);
        Assert.Equal(new[] { "call", "close" }, ProbeData.Strings(rec.GetProperty("events")));
        var produced = rec.GetProperty("fields").GetProperty("produced").GetInt32();
        Assert.True(produced < total, $"the server pulled all {total} chunks although the client disconnected");
    }

    [Fact]
    public void Close_HeadRequest_AppRunsAndCloseCalledExactlyOnce()
    {
        var id = ProbeServer.NewId();
        var r = Raw("HEAD", $"/close_tracking?id={id}&mode=normal");
        Assert.Equal(200, r.Status);
        var rec = _probe.WaitClosed(id);
        Assert.Equal(new[] { "call", "close" }, ProbeData.Strings(rec.GetProperty("events")));
        Assert.Equal("HEAD", rec.GetProperty("fields").Str("method"));
    }

    // ---- errors and wsgi.errors -------------------------------------------------------------------------------

    [Fact]
    public void Error_ExceptionBeforeHeaders_500ShortBodyTracebackLoggedServerServesOn()
    {
        var token = ProbeServer.NewId();
        var r = Raw("GET", $"/error/before?token={token}");
        Assert.Equal(500, r.Status);
        Assert.True(r.Body.Length < 1024, $"500 body is {r.Body.Length} bytes");
        Assert.DoesNotContain("Traceback", r.BodyText);
        Assert.DoesNotContain(token, r.BodyText);
        _probe.Server.WaitForOutput(Regex.Escape($"RuntimeError: probe-error-before-{token}"));
        Assert.Contains("Traceback (most recent call last)", _probe.Server.Output);
        Assert.Equal("hello single", Raw("GET", "/single").BodyText);
    }

    [Fact]
    public void Error_ExceptionAfterStartResponseBeforeBody_500WithoutAppHeaders()
    {
        var token = ProbeServer.NewId();
        var r = Raw("GET", $"/error/before_after_start?token={token}");
        Assert.Equal(500, r.Status);
        Assert.Null(r.Header("X-Should-Not-Appear"));
        _probe.Server.WaitForOutput(Regex.Escape($"RuntimeError: probe-error-before-after-start-{token}"));
    }

    [Fact]
    public void ErrorsStream_WriteAndWritelines_ReachTheLog()
    {
        var token = ProbeServer.NewId();
        Assert.Equal("logged", Raw("GET", $"/errors_stream?token={token}").BodyText);
        _probe.Server.WaitForOutput(Regex.Escape($"probe-errors-write-{token}"));
        _probe.Server.WaitForOutput(Regex.Escape($"probe-errors-writelines-{token}"));
    }

    // ---- wsgi.file_wrapper ------------------------------------------------------------------------------------

    [Fact]
    public async Task FileWrapper_RealFileWithContentLength_SendsWholeFileAndClosesItOnce()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/file_wrapper/real?id={id}");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(ProbeData.FileSize, r.Content.Headers.ContentLength);
        var got = await r.Content.ReadAsByteArrayAsync();
        AssertBytes(ProbeData.File.AsMemory(), got, "file body differs");
        var rec = _probe.WaitClosed(id);
        Assert.Equal(new[] { "close" }, ProbeData.Strings(rec.GetProperty("events")));
    }

    [Fact]
    public async Task FileWrapper_RealFileWithoutContentLength_SendsWholeFile()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/file_wrapper/real?id={id}&nocl=1");
        var got = await r.Content.ReadAsByteArrayAsync();
        AssertBytes(ProbeData.File.AsMemory(), got, "file body differs");
        Assert.Equal(new[] { "close" }, ProbeData.Strings(_probe.WaitClosed(id).GetProperty("events")));
    }

    [Fact]
    public async Task FileWrapper_RealFileSeeked_SendsFromCurrentPosition()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/file_wrapper/real?id={id}&seek=1000");
        var body = await r.Content.ReadAsByteArrayAsync();
        Assert.Equal(ProbeData.FileSize - 1000, body.Length);
        Assert.True(ProbeData.File.AsSpan(1000).SequenceEqual(body), "body is not the file from offset 1000");
    }

    [Fact]
    public void FileWrapper_ContentLengthShorterThanFile_SendsOnlyDeclaredBytes()
    {
        var id = ProbeServer.NewId();
        using var c = new RawHttp(Port, TimeSpan.FromSeconds(15));
        c.Send($"GET /file_wrapper/real?id={id}&cl=1000&seek=7 HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\n\r\n");
        var r = c.ReadResponse();
        Assert.Equal("1000", r.Header("Content-Length"));
        Assert.True(ProbeData.File.AsSpan(7, 1000).SequenceEqual(r.Body), "body is not bytes 7..1007 of the file");
        // No byte past the declared length may follow: the connection is either closed or answers the next request.
        try
        {
            c.Send($"GET /single HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nConnection: close\r\n\r\n");
            var next = c.ReadResponse();
            Assert.Equal("HTTP/1.1 200 OK", next.StatusLine);
            Assert.Equal("hello single", next.BodyText);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException) { /* closed after the response: fine */ }
        Assert.Equal(new[] { "close" }, ProbeData.Strings(_probe.WaitClosed(id).GetProperty("events")));
    }

    [Fact]
    public async Task FileWrapper_NonFileObject_IteratedWithBlockSizeAndClosedOnce()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/file_wrapper/bytesio?id={id}&blksize=4096");
        var got = await r.Content.ReadAsByteArrayAsync();
        AssertBytes(ProbeData.File.AsMemory(0, 50000), got, "body differs");
        var events = ProbeData.Strings(_probe.WaitClosed(id).GetProperty("events"));
        var reads = events.Where(e => e.StartsWith("read:")).ToArray();
        Assert.True(reads.Length >= 13,
            $"expected >= 13 reads of 4096 for 50000 bytes, got [{string.Join(",", events)}]");
        Assert.All(reads, e => Assert.Equal("read:4096", e));
        Assert.Equal(1, events.Count(e => e == "close"));
        Assert.Equal("close", events[^1]);
    }

    [Fact]
    public async Task FileWrapper_IteratedByTheApp_YieldsTheFile()
    {
        var id = ProbeServer.NewId();
        using var r = await Client.GetAsync($"/file_wrapper/iterate_real?id={id}&blksize=10000");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var got = await r.Content.ReadAsByteArrayAsync();
        AssertBytes(ProbeData.File.AsMemory(), got, "body differs");
        Assert.Equal(new[] { "close" }, ProbeData.Strings(_probe.WaitClosed(id).GetProperty("events")));
    }

    // ---- recursion (its own server: a stack overflow would kill the process) ---------------------------------

    [Fact]
    public void Recursion_LimitRaisedTo10000_DeepRecursionRaisesRecursionErrorAndServerLives()
    {
        using var server = ServerProcess.Start(new[]
            { "--threads", "2", Path.Combine(ServerProcess.AppsDir, "probe.py") });
        foreach (var (mode, minDepth) in new[] { ("python", 9000), ("c", 1000) })
        {
            RawResponse r;
            try { r = Http.Get(server.Port, $"/recursion?mode={mode}"); }
            catch (Exception e) when (e is EndOfStreamException or IOException)
            {
                throw new Xunit.Sdk.XunitException(
                    $"mode {mode}: the connection died ({e.Message}); server output:\n{server.Output}");
            }
            Assert.True(r.Status == 200, $"mode {mode}: {r.StatusLine} {r.BodyText}");
            var json = Http.Json(r);
            _out.WriteLine(json.ToString());
            Assert.Equal("RecursionError", json.Str("raised"));
            Assert.True(json.GetProperty("depth").GetInt32() > minDepth,
                $"mode {mode}: depth {json.GetProperty("depth")}");
        }
        Assert.Equal("hello single", Http.Get(server.Port, "/single").BodyText);
        Assert.False(server.HasExited);
    }
}
