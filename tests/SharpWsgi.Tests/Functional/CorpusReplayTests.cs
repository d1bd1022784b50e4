using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>The echo_environ app served once for every corpus row.</summary>
public sealed class EchoServerFixture : IDisposable
{
    // Calls are logged to a file, so the per-connection count is right however many worker processes serve.
    private readonly string _callsFile =
        Path.Combine(Path.GetTempPath(), $"sharpwsgi-echo-calls-{Guid.NewGuid():N}.log");
    private readonly Lazy<ServerProcess> _server;

    public EchoServerFixture()
        => _server = new(() => ServerProcess.Start(new[] { Path.Combine(ServerProcess.AppsDir, "echo_environ.py") },
            new Dictionary<string, string?> { ["ECHO_ENVIRON_CALLS"] = _callsFile }));

    public ServerProcess Server => _server.Value;

    public void Dispose()
    {
        if (_server.IsValueCreated) _server.Value.Dispose();
        File.Delete(_callsFile);
    }
}

/// <summary>
/// Replays every case of ../shared/corpus/gunicorn-requests over a raw socket against echo_environ.py.
/// Valid cases must reach the app with the fixture's method, target, version, headers and body; invalid ones
/// must get a 4xx without reaching the app. Where Kestrel's policy legitimately differs, the case is listed in
/// tests/requests/kestrel-differences.md and its documented behaviour is asserted instead. Cases written for a
/// non-default gunicorn setting (gunicorn_config) are replayed and reported as skipped with what SharpWsgi answered
/// (the corpus NOTICE: info, not pass/fail); the PROXY protocol ones are asserted by ProxyProtocolCorpusTests.
/// Calls are counted by the app per client port, so each row checks exactly its own connection's calls.
/// </summary>
public sealed class CorpusReplayTests : IClassFixture<EchoServerFixture>
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);
    private readonly EchoServerFixture _fixture;
    private readonly ITestOutputHelper _out;

    public CorpusReplayTests(EchoServerFixture fixture, ITestOutputHelper output) { _fixture = fixture; _out = output; }

    private int Port => _fixture.Server.Port;

    /// <summary>Every case; without the corpus one placeholder row, which reports the skip and why.</summary>
    public static IEnumerable<object[]> Cases => RequestCorpus.Present
        ? RequestCorpus.Cases.Select(c => new object[] { c.Name })
        : new[] { new object[] { "(corpus missing)" } };

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Replay_CorpusCase_MatchesFixtureOrDocumentedDifference(string name)
    {
        RequestCorpus.RequirePresent();
        var c = RequestCorpus.Get(name);
        _out.WriteLine($"{c.Name}: expect {c.Expect}{(c.GunicornError != null ? " (" + c.GunicornError + ")" : "")}; " +
            $"raw: {Preview(c.Raw)}");
        // Written for a non-default gunicorn setting: the corpus NOTICE calls these info, not pass/fail.
        if (c.ConfigDependent)
        {
            var assertedElsewhere = c.GunicornConfig.Contains("\"proxy_protocol\"", StringComparison.Ordinal)
                ? " (asserted by ProxyProtocolCorpusTests)" : "";
            var config = Regex.Replace(c.GunicornConfig, @"\s+", " ");
            throw new SkipException($"info only, not pass/fail: written for gunicorn_config {config}" +
                $"{assertedElsewhere}; SharpWsgi answered {ReplayForInfo(c)}");
        }
        if (!KestrelDifferences.Entries.TryGetValue(c.Name, out var diff))
        {
            if (c.Valid) AssertAccepted(c.Raw, c.Requests, new Dictionary<string, string?>());
            else if (LimitAnswer(c) is var (status, flag)) AssertLimitRefused(c.Raw, status, flag);
            else AssertRejected(c.Raw, null);
            return;
        }
        _out.WriteLine($"documented Kestrel difference: {diff.Kind}; {diff.Reason}");
        switch (diff.Kind)
        {
            case "missing-host":
                AssertHostRejectedThenRepaired(c, diff, insert: true);
                break;
            case "invalid-host":
                AssertHostRejectedThenRepaired(c, diff, insert: false);
                break;
            case "non-ascii-target":
                AssertRejected(c.Raw, diff.Status ?? 400);
                AssertNonAsciiTargetEncoded(c, diff);
                break;
            case "truncated-body":
                AssertTruncatedBodyPadded(c, diff);
                break;
            case "reject":
                AssertRejected(c.Raw, diff.Status);
                break;
            case "accept":
                AssertAcceptedInvalid(c, diff);
                break;
            case "body-error":
                AssertBodyError(c, diff);
                break;
            case "incomplete":
                AssertIncomplete(c, diff);
                break;
            default:
                throw new InvalidOperationException(diff.Kind);
        }
    }

    [SkippableFact]
    public void DifferencesFile_EveryEntry_NamesANonConfigCorpusCase()
    {
        RequestCorpus.RequirePresent();
        var names = RequestCorpus.Cases.ToDictionary(c => c.Name);
        Assert.NotEmpty(KestrelDifferences.Entries);
        foreach (var (name, diff) in KestrelDifferences.Entries)
        {
            Assert.True(names.TryGetValue(name, out var c),
                $"{KestrelDifferences.File} lists {name}, which is not in the corpus");
            Assert.False(c!.ConfigDependent,
                $"{name} depends on gunicorn_config {c.GunicornConfig}: it is info-only and needs no entry");
            Assert.False(string.IsNullOrWhiteSpace(diff.Reason), $"{name} has no documented reason");
            if (diff.Kind is "missing-host" or "invalid-host" or "non-ascii-target" or "truncated-body")
                Assert.True(c.Valid, $"{name}: {diff.Kind} only makes sense for a valid case");
            if (diff.Kind is "accept" or "body-error" or "incomplete")
                Assert.False(c.Valid, $"{name}: {diff.Kind} only makes sense for an invalid case");
        }
    }

    [SkippableFact]
    public void Corpus_Present_HasValidAndInvalidCases()
    {
        RequestCorpus.RequirePresent();
        Assert.True(File.Exists(Path.Combine(RequestCorpus.Directory, "index.json")),
            "corpus missing at " + RequestCorpus.Directory);
        Assert.Contains(RequestCorpus.Cases, c => c.Valid);
        Assert.Contains(RequestCorpus.Cases, c => !c.Valid);
    }

    // ---- valid requests -------------------------------------------------------------------------------------

    /// <summary>Sends raw bytes; each expected request must come back as a 200 echo with the expected
    /// environ.</summary>
    private enum HostRepair { None, Inserted, Replaced }

    private void AssertAccepted(byte[] raw, IReadOnlyList<CorpusRequest> requests,
        Dictionary<string, string?> overrides, HostRepair hostRepair = HostRepair.None, byte[]? bodyOverride = null)
    {
        using var conn = Open(ReadTimeout);
        conn.Send(raw);
        for (int i = 0; i < requests.Count; i++)
        {
            var resp = conn.ReadResponse();
            Assert.True(resp.Status == 200, $"request {i + 1} ({requests[i].Method} {requests[i].Target}): " +
                $"expected 200 from the app, got {resp.StatusLine}: {resp.BodyText}");
            CheckEnviron(requests[i], Http.Json(resp), overrides, hostRepair,
                i == requests.Count - 1 ? bodyOverride : null);
        }
        var unused = overrides.Where(o => o.Value != null && !requests.Any(r => HeaderKeys(r).Contains(o.Key) ||
            o.Key is "PATH_INFO" or "QUERY_STRING" or "RAW_URI" or "REQUEST_METHOD" or "SERVER_PROTOCOL" or
                "SCRIPT_NAME")).Select(o => o.Key).ToList();
        Assert.True(unused.Count == 0, $"documented overrides for keys no request has: {string.Join(", ", unused)}");
        if (ImpliesClose(requests[^1]))
            Assert.True(conn.IsClosedByServer(),
                "the last request asks for the connection to close, but the server kept it open");
        Assert.Equal(requests.Count, Calls(conn));
    }

    private static IEnumerable<string> HeaderKeys(CorpusRequest r)
        => r.Headers.Select(h => h.Name.ToUpperInvariant().Replace('-', '_'))
            .Select(k => k is "CONTENT_TYPE" or "CONTENT_LENGTH" ? k : "HTTP_" + k);

    private static bool ImpliesClose(CorpusRequest r)
    {
        var connection = r.Value("CONNECTION")?.ToLowerInvariant() ?? "";
        if (connection.Contains("close")) return true;
        return r.Version[0] == 1 && r.Version[1] == 0 && !connection.Contains("keep-alive");
    }

    private void CheckEnviron(CorpusRequest r, JsonElement echo, Dictionary<string, string?> overrides,
        HostRepair hostRepair, byte[]? bodyOverride)
    {
        var env = echo.GetProperty("environ");
        var expected = new Dictionary<string, string?>
        {
            ["REQUEST_METHOD"] = r.Method,
            ["SERVER_PROTOCOL"] = r.Protocol,
            ["SCRIPT_NAME"] = "",
            ["PATH_INFO"] = KestrelDifferences.Latin1PercentDecode(r.Path),
            ["QUERY_STRING"] = r.Query,
            ["RAW_URI"] = r.Target,
        };
        // Headers: HTTP_* (repeats joined with ", ", Cookie with "; "), CONTENT_TYPE/CONTENT_LENGTH without the
        // prefix; names with "_" are dropped by the server (so they cannot spoof a "-" header).
        var headers = new List<(string, string)>(r.Headers);
        if (hostRepair == HostRepair.Inserted && r.Version[1] == 1 && !r.Has("HOST"))
            headers.Add(("HOST", "localhost"));
        if (hostRepair == HostRepair.Replaced && r.Has("HOST"))
            headers = headers.Select(h => h.Item1.Equals("HOST", StringComparison.OrdinalIgnoreCase)
                ? (h.Item1, "localhost") : h).ToList();
        var expectedHeaders = new Dictionary<string, List<string>>();
        foreach (var (name, value) in headers)
        {
            if (name.Contains('_')) continue;
            var key = name.ToUpperInvariant().Replace('-', '_');
            if (key is not ("CONTENT_TYPE" or "CONTENT_LENGTH")) key = "HTTP_" + key;
            if (!expectedHeaders.TryGetValue(key, out var list)) expectedHeaders[key] = list = new List<string>();
            list.Add(value);
        }
        foreach (var (key, values) in expectedHeaders)
            expected[key] = string.Join(key == "HTTP_COOKIE" ? "; " : ", ", values);
        // Documented overrides replace the fixture's value where the request has that key; -KEY removes it.
        foreach (var (k, v) in overrides)
            if (v == null || expected.ContainsKey(k)) expected[k] = v;

        var actualHeaderKeys = env.EnumerateObject().Select(p => p.Name)
            .Where(k => k.StartsWith("HTTP_") || k is "CONTENT_TYPE" or "CONTENT_LENGTH")
            .OrderBy(k => k, StringComparer.Ordinal).ToList();
        var expectedHeaderKeys = expected.Where(kv => kv.Value != null &&
                (kv.Key.StartsWith("HTTP_") || kv.Key is "CONTENT_TYPE" or "CONTENT_LENGTH"))
            .Select(kv => kv.Key).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var problems = new List<string>();
        if (!actualHeaderKeys.SequenceEqual(expectedHeaderKeys))
            problems.Add($"header keys: expected [{string.Join(", ", expectedHeaderKeys)}] " +
                $"got [{string.Join(", ", actualHeaderKeys)}]");
        foreach (var (key, value) in expected)
        {
            var actual = env.Str(key);
            if (value == null)
            {
                if (env.TryGetProperty(key, out _)) problems.Add($"{key}: expected absent, got {Show(actual)}");
            }
            else if (actual != value)
                problems.Add($"{key}: expected {Show(value)}, got {Show(actual)}");
        }
        var body = Convert.FromBase64String(echo.GetProperty("body_b64").GetString()!);
        var expectedBody = bodyOverride ?? r.Body;
        if (!body.AsSpan().SequenceEqual(expectedBody))
            problems.Add(
                $"body: expected {expectedBody.Length} bytes {Show(Encoding.Latin1.GetString(expectedBody))}, " +
                $"got {body.Length} bytes {Show(Encoding.Latin1.GetString(body))}");
        Assert.True(problems.Count == 0, $"{r.Method} {r.Target}:\n  " + string.Join("\n  ", problems));
    }

    // ---- documented differences -------------------------------------------------------------------------------

    /// <summary>
    /// Kestrel answers 400 to an HTTP/1.1 request without a valid Host (RFC 9112 §3.2 requires it). Asserted on
    /// the raw bytes (requests before the offending one still succeed); then the case is replayed with
    /// `Host: localhost` inserted (or replacing the bad value) and must meet every other expectation of the fixture.
    /// </summary>
    private void AssertHostRejectedThenRepaired(CorpusCase c, KestrelDifference diff, bool insert)
    {
        using (var conn = Open(ReadTimeout))
        {
            conn.Send(c.Raw);
            int served = 0;
            foreach (var r in c.Requests)
            {
                var resp = conn.ReadResponse();
                var lacksHost = r.Version[1] == 1 && (insert ? !r.Has("HOST") : r.Has("HOST"));
                if (lacksHost)
                {
                    Assert.True(resp.Status == 400,
                        $"{r.Method} {r.Target} without a valid Host: expected 400, got {resp.StatusLine}");
                    break;
                }
                Assert.True(resp.Status == 200,
                    $"{r.Method} {r.Target}: expected 200, got {resp.StatusLine}: {resp.BodyText}");
                served++;
            }
            Assert.Equal(served, Calls(conn));
        }

        var repaired = insert ? InsertHost(c) : ReplaceHost(c.Raw);
        _out.WriteLine("repaired: " + Preview(repaired));
        AssertAccepted(repaired, c.Requests, diff.Environ, insert ? HostRepair.Inserted : HostRepair.Replaced);
    }

    private static byte[] InsertHost(CorpusCase c)
    {
        var raw = Encoding.Latin1.GetString(c.Raw);
        int pos = 0;
        foreach (var r in c.Requests)
        {
            var line = $"{r.Method} {r.Target} {r.Protocol}\r\n";
            var i = raw.IndexOf(line, pos, StringComparison.Ordinal);
            Assert.True(i >= 0, $"request line {line.TrimEnd()} not found in the raw bytes");
            pos = i + line.Length;
            if (r.Version[1] == 1 && !r.Has("HOST"))
            {
                raw = raw.Insert(pos, "Host: localhost\r\n");
                pos += "Host: localhost\r\n".Length;
            }
        }
        return Encoding.Latin1.GetBytes(raw);
    }

    private static byte[] ReplaceHost(byte[] rawBytes)
    {
        var raw = Encoding.Latin1.GetString(rawBytes);
        var replaced = System.Text.RegularExpressions.Regex.Replace(raw, @"(?im)^Host:[^\r\n]*\r\n",
            "Host: localhost\r\n");
        Assert.NotEqual(raw, replaced);
        return Encoding.Latin1.GetBytes(replaced);
    }

    /// <summary>Raw non-ASCII bytes in the target are rejected; percent-encoded, the same bytes must reach
    /// PATH_INFO decoded as latin-1 (what the fixture expects), with RAW_URI keeping the encoded form.</summary>
    private void AssertNonAsciiTargetEncoded(CorpusCase c, KestrelDifference diff)
    {
        var r = Assert.Single(c.Requests);
        var encodedTarget = new StringBuilder();
        foreach (var b in Encoding.Latin1.GetBytes(r.Target))
            encodedTarget.Append(b >= 0x80 ? $"%{b:X2}" : ((char)b).ToString());
        var raw = Encoding.Latin1.GetString(c.Raw);
        var line = $"{r.Method} {r.Target} {r.Protocol}\r\n";
        Assert.StartsWith(line, raw);
        var encoded = Encoding.Latin1.GetBytes($"{r.Method} {encodedTarget} {r.Protocol}\r\n" + raw[line.Length..]);
        _out.WriteLine("percent-encoded: " + Preview(encoded));
        var overrides = new Dictionary<string, string?>(diff.Environ) { ["RAW_URI"] = encodedTarget.ToString() };
        AssertAccepted(encoded, c.Requests, overrides);
    }

    /// <summary>The fixture's body is shorter than its Content-Length (gunicorn's test reads only what is there);
    /// a real server waits for the rest, so the body is padded to Content-Length and must arrive whole.</summary>
    private void AssertTruncatedBodyPadded(CorpusCase c, KestrelDifference diff)
    {
        var r = Assert.Single(c.Requests);
        var declared = int.Parse(r.Value("CONTENT-LENGTH")!);
        Assert.True(declared > r.Body.Length,
            $"Content-Length {declared} is not larger than the fixture body ({r.Body.Length})");
        var padding = Enumerable.Repeat((byte)'x', declared - r.Body.Length).ToArray();
        var raw = c.Raw.Concat(padding).ToArray();
        AssertAccepted(raw, c.Requests, diff.Environ, bodyOverride: r.Body.Concat(padding).ToArray());
    }

    private void AssertRejected(byte[] raw, int? status)
    {
        using var conn = Open(ReadTimeout);
        conn.Send(raw);
        RawResponse resp;
        try { resp = conn.ReadResponse(); }
        catch (EndOfStreamException e)
        {
            throw new Xunit.Sdk.XunitException(
                "expected a 4xx response, but the server closed the connection: " + e.Message);
        }
        if (status != null)
            Assert.True(resp.Status == status, $"expected {status}, got {resp.StatusLine}: {resp.BodyText}");
        else
            Assert.True(resp.Status is >= 400 and < 500,
                $"expected a 4xx rejection, got {resp.StatusLine}: {resp.BodyText}");
        Assert.True(Calls(conn) == 0, "a rejected request reached the app");
    }

    /// <summary>
    /// gunicorn's limit errors meet the same limits of ours (default values): 414 or 431 with the flag named in the
    /// plain text. A head Kestrel refuses while reading it (an HTTP/1.1 one without Host, an HTTP/1.0 PUT without a
    /// length) gets Kestrel's 400 before any limit of ours is checked: those keep the plain 4xx expectation.
    /// </summary>
    private static (int Status, string Flag)? LimitAnswer(CorpusCase c)
    {
        var head = Encoding.Latin1.GetString(c.Raw);
        var firstLine = head.Split("\r\n")[0];
        if (firstLine.EndsWith(" HTTP/1.1") && !head.Contains("\r\nHost:", StringComparison.OrdinalIgnoreCase))
            return null;
        // So is an HTTP/1.0 POST or PUT without a body length (Kestrel's 400 while it reads the head).
        if (firstLine.EndsWith(" HTTP/1.0") && (firstLine.StartsWith("POST ") || firstLine.StartsWith("PUT ")) &&
            !head.Contains("\r\nContent-Length:", StringComparison.OrdinalIgnoreCase))
            return null;
        return c.GunicornError switch
        {
            "LimitRequestLine" => (414, "--limit-request-line 4094"),
            "LimitRequestHeaders" => (431, "--limit-request-field"),
            _ => null,
        };
    }

    private void AssertLimitRefused(byte[] raw, int status, string flag)
    {
        using var conn = Open(ReadTimeout);
        conn.Send(raw);
        var resp = conn.ReadResponse();
        Assert.True(resp.Status == status, $"expected {status}, got {resp.StatusLine}: {resp.BodyText}");
        Assert.Contains(flag, resp.BodyText);
        Assert.True(conn.IsClosedByServer(), "the connection stayed open after a limit answer");
        Assert.True(Calls(conn) == 0, "a refused request reached the app");
    }

    /// <summary>Kestrel accepts what gunicorn rejects: one 200 echo, with the documented environ and body.</summary>
    private void AssertAcceptedInvalid(CorpusCase c, KestrelDifference diff)
    {
        using var conn = Open(ReadTimeout);
        conn.Send(c.Raw);
        var resp = conn.ReadResponse();
        Assert.True(resp.Status == 200, $"documented as accepted; got {resp.StatusLine}: {resp.BodyText}");
        var echo = Http.Json(resp);
        var env = echo.GetProperty("environ");
        var problems = new List<string>();
        foreach (var (key, value) in diff.Environ)
        {
            var actual = env.Str(key);
            if (value == null ? env.TryGetProperty(key, out _) : actual != value)
                problems.Add($"{key}: expected {(value == null ? "absent" : Show(value))}, got {Show(actual)}");
        }
        if (diff.Body != null)
        {
            var body = Encoding.Latin1.GetString(Convert.FromBase64String(echo.GetProperty("body_b64").GetString()!));
            if (body != diff.Body) problems.Add($"body: expected {Show(diff.Body)}, got {Show(body)}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        if (diff.Close)
            Assert.True(conn.IsClosedByServer(), "documented: the server closes the connection after this request");
        Assert.Equal(1, Calls(conn));
    }

    /// <summary>The head is valid; the body framing error is only found while the app reads wsgi.input
    /// (bodies are streamed). The client must get a 4xx (never the app's 200), and the app runs at most once.</summary>
    private void AssertBodyError(CorpusCase c, KestrelDifference diff)
    {
        using var conn = Open(ReadTimeout);
        conn.Send(c.Raw);
        RawResponse resp;
        try { resp = conn.ReadResponse(); }
        catch (EndOfStreamException e)
        {
            throw new Xunit.Sdk.XunitException(
                "expected a 4xx response for the malformed body, but the connection closed: " + e.Message);
        }
        var expected = diff.Status;
        if (expected != null)
            Assert.True(resp.Status == expected, $"expected {expected}, got {resp.StatusLine}: {resp.BodyText}");
        else
            Assert.True(resp.Status is >= 400 and < 500,
                $"expected a 4xx for the malformed body, got {resp.StatusLine}: {resp.BodyText}");
        Assert.InRange(Calls(conn), 0, diff.MaxCalls ?? 1);
    }

    /// <summary>The fixture ends in the middle of a request, so the server waits for more bytes. The client then
    /// half-closes: the server must close the connection without a 2xx, and the app runs at most calls&lt;=N
    /// times.</summary>
    private void AssertIncomplete(CorpusCase c, KestrelDifference diff)
    {
        using var conn = Open(ReadTimeout);
        conn.Send(c.Raw);
        conn.Socket.Shutdown(SocketShutdown.Send);
        var rest = Encoding.Latin1.GetString(conn.ReadToEnd());
        _out.WriteLine("after half-close the server sent: " + Show(rest));
        Assert.False(System.Text.RegularExpressions.Regex.IsMatch(rest, @"^HTTP/1\.\d 2\d\d",
            System.Text.RegularExpressions.RegexOptions.Multiline),
            "an incomplete request got a 2xx response: " + rest);
        if (rest.StartsWith("HTTP/"))
            Assert.Matches(@"^HTTP/1\.\d 4\d\d", rest);
        Assert.InRange(Calls(conn), 0, diff.MaxCalls ?? 0);
    }

    // ---- config-dependent cases: info only ----------------------------------------------------------------------

    /// <summary>Replays the case and describes SharpWsgi's answer (also written to the test output).</summary>
    private string ReplayForInfo(CorpusCase c)
    {
        _out.WriteLine($"info only: written for gunicorn_config {c.GunicornConfig}");
        string answer;
        try
        {
            using var conn = Open(TimeSpan.FromSeconds(5));
            conn.Send(c.Raw);
            var resp = conn.ReadResponse();
            var calls = Calls(conn);
            answer = $"{resp.StatusLine}; app calls on this connection: {calls}";
            if (resp.Status == 200)
            {
                var env = Http.Environ(resp);
                answer += $"; {env.Str("REQUEST_METHOD")} PATH_INFO={Show(env.Str("PATH_INFO"))} " +
                    $"QUERY_STRING={Show(env.Str("QUERY_STRING"))}";
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or SocketException or JsonException)
        {
            answer = $"no complete response ({e.GetType().Name}: {e.Message})";
        }
        _out.WriteLine($"SharpWsgi: {answer}");
        return answer;
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private readonly Dictionary<RawHttp, int> _baselines = new();

    /// <summary>Connects, and notes how many calls the app has already seen from this client port: a port can be
    /// reused by a later connection once the server closed an earlier one.</summary>
    private RawHttp Open(TimeSpan timeout)
    {
        var conn = new RawHttp(Port, timeout);
        _baselines[conn] = CallsFromPort(conn);
        return conn;
    }

    /// <summary>Calls the app saw from this connection (asked on a separate connection).</summary>
    private int Calls(RawHttp conn) => CallsFromPort(conn) - _baselines[conn];

    private int CallsFromPort(RawHttp conn)
    {
        var localPort = ((System.Net.IPEndPoint)conn.Socket.LocalEndPoint!).Port;
        var resp = Http.Get(Port, $"/__calls?port={localPort}");
        Assert.Equal(200, resp.Status);
        return Http.Json(resp).GetProperty("calls").GetInt32();
    }

    private static string Preview(byte[] raw)
    {
        var s = Show(Encoding.Latin1.GetString(raw));
        return s.Length > 300 ? s[..300] + $"... ({raw.Length} bytes)" : s;
    }

    private static string Show(string? s)
    {
        if (s == null) return "(absent)";
        var sb = new StringBuilder("\"");
        foreach (var ch in s)
        {
            if (ch == '\r') sb.Append("\\r");
            else if (ch == '\n') sb.Append("\\n");
            else if (ch == '\t') sb.Append("\\t");
            else if (ch < 0x20 || ch >= 0x7f) sb.Append($"\\x{(int)ch:x2}");
            else sb.Append(ch);
        }
        return sb.Append('"').ToString();
    }
}
