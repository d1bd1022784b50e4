using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The access log (--access-logfile, --access-logformat, --log-format json), request IDs and the app's logging, end
/// to end over raw sockets. Lines are waited for (output or file polled with a deadline), never slept for.
/// </summary>
public sealed class AccessLogTests : IDisposable
{
    private static string App => Path.Combine(ServerProcess.AppsDir, "access_log_app.py");
    private readonly string _dir = Directory.CreateTempSubdirectory("sharpwsgi-accesslog-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static RawResponse Get(ServerProcess server, string target, string extraHeaders = "") =>
        RawHttp.Exchange(server.Port,
            $"GET {target} HTTP/1.1\r\nHost: localhost\r\n{extraHeaders}Connection: close\r\n\r\n");

    /// <summary>The first line of the file matching the pattern, polled until the deadline.</summary>
    private static string WaitForLine(string path, Func<string, bool> match, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (File.Exists(path))
                foreach (var line in File.ReadAllLines(path, Encoding.Latin1))
                    if (match(line)) return line;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no matching line in {path}:\n" +
                    (File.Exists(path) ? File.ReadAllText(path) : "(no file)"));
            Thread.Yield();
            Thread.Sleep(20); // polling interval of the deadline loop, not synchronisation
        }
    }

    [Fact]
    public void DefaultFormat_KnownRequest_MatchesGunicornsLine()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path);
        var response = Get(server, "/hello?x=1", "Referer: http://ref.example/\r\nUser-Agent: test-agent/1\r\n");
        Assert.Equal(200, response.Status);
        var line = WaitForLine(path, l => l.Contains("/hello"));
        var regex = new Regex(@"^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] " +
            @"""GET /hello\?x=1 HTTP/1\.1"" 200 (\d+) ""http://ref\.example/"" ""test-agent/1""$");
        var match = regex.Match(line);
        Assert.True(match.Success, line);
        Assert.Equal(response.Body.Length, int.Parse(match.Groups[1].Value));
    }

    [Fact]
    public void CustomFormat_EveryAtom_Rendered()
    {
        var path = Path.Combine(_dir, "access.log");
        const string format = "h=%(h)s l=%(l)s u=%(u)s t=%(t)s r=%(r)s m=%(m)s U=%(U)s q=%(q)s H=%(H)s s=%(s)s " +
            "B=%(B)s b=%(b)s f=%(f)s a=%(a)s T=%(T)s D=%(D)s M=%(M)s L=%(L)s p=%(p)s i=%({x-thing}i)s " +
            "o=%({x-app}o)s e=%({REQUEST_METHOD}e)s zz=%(zz)s pct=100%%";
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--access-logformat", format);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:secret:x"));
        Get(server, "/p%20q?a=b", $"Authorization: Basic {auth}\r\nX-Thing: thing1\r\n");
        var line = WaitForLine(path, l => l.Contains("m=GET"));
        var regex = new Regex(@"^h=127\.0\.0\.1 l=- u=alice t=\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] " +
            @"r=GET /p%20q\?a=b HTTP/1\.1 m=GET U=/p q q=a=b H=HTTP/1\.1 s=200 B=\d+ b=\d+ f=- a=- T=\d+ D=\d+ " +
            @"M=\d+ L=\d+\.\d{6} p=<\d+> i=thing1 o=yes e=GET zz=- pct=100%$");
        Assert.Matches(regex, line);
    }

    [Fact]
    public void AbsoluteFormTarget_PathAndQueryAtoms_AreWhatTheAppSees()
    {
        // U is PATH_INFO and q QUERY_STRING, for an absolute-form target too (U used to log the scheme and host).
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--access-logformat",
            "U=%(U)s q=%(q)s e=%({PATH_INFO}e)s");
        var authority = $"127.0.0.1:{server.Port}"; // Kestrel wants Host to name the target's authority
        Assert.Equal(200, RawHttp.Exchange(server.Port,
            $"GET http://{authority}/a%20b?q=1 HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").Status);
        Assert.Equal("U=/a b q=q=1 e=/a b", WaitForLine(path, l => l.StartsWith("U=")));
    }

    [Fact]
    public void DefaultFormat_HostileBytes_EscapedOnOneLine()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path);
        using (var raw = new RawHttp(server.Port))
        {
            raw.Send(Encoding.Latin1.GetBytes("GET /esc HTTP/1.1\r\nHost: localhost\r\n" +
                "User-Agent: a\"b\xff\\c\r\nReferer: \"r\"\r\nConnection: close\r\n\r\n"));
            Assert.Equal(200, raw.ReadResponse().Status);
        }
        var line = WaitForLine(path, l => l.Contains("/esc"));
        Assert.EndsWith(@" ""\""r\"""" ""a\""b\xff\\c""", line);
    }

    [Fact]
    public void JsonFormat_HostileBytes_ValidJsonForAccessAndErrorLines()
    {
        var path = Path.Combine(_dir, "access.log");
        // The error log stays on stderr: the test harness reads "Listening at" there.
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--log-format", "json");
        // latin-1 bytes (not UTF-8), quotes and a backslash in headers; in the target Kestrel takes them only
        // percent-encoded (raw ones get its own 400 before any app or log sees the request).
        using (var raw = new RawHttp(server.Port))
        {
            raw.Send(Encoding.Latin1.GetBytes("GET /log?q=%22%E9%5C HTTP/1.1\r\nHost: localhost\r\n" +
                "User-Agent: a\"b\xff\\c\r\nReferer: \"r\"\r\nConnection: close\r\n\r\n"));
            Assert.Equal(200, raw.ReadResponse().Status);
        }
        var line = WaitForLine(path, l => l.Contains("/log"));
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        Assert.Equal("GET", root.GetProperty("method").GetString());
        Assert.Equal("/log", root.GetProperty("path").GetString());
        Assert.Equal("q=%22%E9%5C", root.GetProperty("query").GetString());
        Assert.Equal("a\"b\u00ff\\c", root.GetProperty("user_agent").GetString());
        Assert.Equal("\"r\"", root.GetProperty("referer").GetString());
        Assert.Equal(200, root.GetProperty("status").GetInt32());
        Assert.True(root.GetProperty("bytes").GetInt64() > 0);
        Assert.True(root.GetProperty("duration_ms").GetDouble() >= 0);
        Assert.True(root.GetProperty("queue_ms").GetDouble() >= 0);
        Assert.True(root.GetProperty("app_ms").GetDouble() >= 0);
        Assert.Equal("HTTP/1.1", root.GetProperty("protocol").GetString());
        Assert.Equal("127.0.0.1", root.GetProperty("remote").GetString());
        Assert.True(root.GetProperty("pid").GetInt32() > 0);
        var id = root.GetProperty("request_id").GetString();
        Assert.False(string.IsNullOrEmpty(id));
        Assert.True(DateTimeOffset.TryParse(root.GetProperty("time").GetString(), out _));

        // Every error-log line is one JSON object; the app's warning carries the request's ID.
        var warning = server.WaitForOutput(new Regex("app warning here"), TimeSpan.FromSeconds(20));
        using var w = JsonDocument.Parse(warning);
        Assert.Equal("WARNING", w.RootElement.GetProperty("level").GetString());
        Assert.Equal("access_log_app: app warning here", w.RootElement.GetProperty("message").GetString());
        Assert.Equal(id, w.RootElement.GetProperty("request_id").GetString());
        var stream = server.WaitForOutput(new Regex("errors stream here"), TimeSpan.FromSeconds(20));
        using var s = JsonDocument.Parse(stream);
        Assert.Equal(id, s.RootElement.GetProperty("request_id").GetString());
        foreach (var l in server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            JsonDocument.Parse(l).Dispose();
    }

    [Fact]
    public void ServersOwnAnswer_Refused_LoggedWithoutAppTimes()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--log-format", "json",
            "--limit-request-body", "10");
        var response = RawHttp.Exchange(server.Port, "POST /big HTTP/1.1\r\nHost: localhost\r\n" +
            "Content-Length: 100\r\nConnection: close\r\n\r\n" + new string('x', 100));
        Assert.Equal(413, response.Status);
        using var doc = JsonDocument.Parse(WaitForLine(path, l => l.Contains("/big")));
        var root = doc.RootElement;
        Assert.Equal(413, root.GetProperty("status").GetInt32());
        Assert.Equal(response.Body.Length, root.GetProperty("bytes").GetInt64());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("app_ms").ValueKind);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("queue_ms").ValueKind);
    }

    [Fact]
    public void TextErrorLog_AppLogging_CarriesRequestId()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--access-logformat",
            "%({x-request-id}o)s", "--request-id-header");
        var response = Get(server, "/log");
        var id = response.Header("X-Request-ID");
        Assert.False(string.IsNullOrEmpty(id));
        server.WaitForOutput(new Regex(@"\[WARNING\] \[" + Regex.Escape(id!) + @"\] access_log_app: app warning here"),
            TimeSpan.FromSeconds(20));
        WaitForLine(path, l => l == id);
    }

    [Fact]
    public void RequestId_TrustedPeer_Kept()
    {
        using var server = ServerProcess.StartApp(App, "--request-id-header");
        var response = Get(server, "/", "X-Request-ID: from-proxy-123\r\n");
        Assert.Equal("from-proxy-123", response.Header("X-Request-ID"));
        Assert.Equal("id=from-proxy-123", response.BodyText);
    }

    [Fact]
    public void RequestId_UntrustedPeer_Generated()
    {
        using var server = ServerProcess.StartApp(App, "--request-id-header", "--forwarded-allow-ips", "10.9.9.9");
        var response = Get(server, "/", "X-Request-ID: spoofed\r\n");
        var id = response.Header("X-Request-ID");
        Assert.NotNull(id);
        Assert.NotEqual("spoofed", id);
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.Equal("id=" + id, response.BodyText);
        var other = Get(server, "/").Header("X-Request-ID");
        Assert.NotEqual(id, other);
    }

    [Fact]
    public void Dash_WritesToStdout()
    {
        using var server = ServerProcess.StartApp(App, "--access-logfile", "-");
        Get(server, "/to-stdout");
        server.WaitForOutput(new Regex(@"^127\.0\.0\.1 - - \[.*\] ""GET /to-stdout HTTP/1\.1"" 200 "),
            TimeSpan.FromSeconds(20));
    }

    [Fact]
    public void Usr1_AfterRename_ReopensFile()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path);
        Get(server, "/before");
        WaitForLine(path, l => l.Contains("/before"));
        File.Move(path, path + ".1");
        Signals.Send(server.Pid, Signals.SIGUSR1);
        // The reopen is asynchronous: keep asking until a request lands in the new file.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!File.Exists(path) || !File.ReadAllText(path).Contains("/after"))
        {
            Assert.True(DateTime.UtcNow < deadline, "no line in the reopened file");
            Get(server, "/after");
            Thread.Sleep(50); // poll interval of the bounded retry loop: the line in the new file is awaited
        }
        Assert.DoesNotContain("/after", File.ReadAllText(path + ".1").Split('\n').First(l => l.Contains("/before")));
    }

    [Fact]
    public void KestrelsOwnRefusal_MalformedHeader_LoggedWithPeerAndStatus()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path);
        // A header line without a colon: Kestrel answers 400 itself, the application never sees it.
        var response = RawHttp.Exchange(server.Port, "GET /bad HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n");
        Assert.Equal(400, response.Status);
        var line = WaitForLine(path, l => l.Contains(" 400 "));
        var expected = new Regex(
            @"^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:[\d:]{8} [+-]\d{4}\] ""-"" 400 - ""-"" ""-""$");
        Assert.Matches(expected, line);
        // The server keeps serving, and a good request after it is logged as usual.
        Assert.Equal(200, Get(server, "/after-bad").Status);
        WaitForLine(path, l => l.Contains("/after-bad"));
    }

    [Fact]
    public void KestrelsOwnRefusal_Json_SaysWhy()
    {
        var path = Path.Combine(_dir, "access.json");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--log-format", "json");
        var response = RawHttp.Exchange(server.Port, "GET /bad HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n");
        Assert.Equal(400, response.Status);
        using var doc = JsonDocument.Parse(WaitForLine(path, l => l.Contains("\"status\":400")));
        var root = doc.RootElement;
        Assert.Equal("127.0.0.1", root.GetProperty("remote").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("method").ValueKind);
        Assert.False(string.IsNullOrEmpty(root.GetProperty("error").GetString()));
    }

    [Fact]
    public void Skip_ExactPathsAndPrefixes_SuccessfulRequestsLeftOutFailuresLoggedAllCounted()
    {
        var path = Path.Combine(_dir, "access.log");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--access-log-skip", "/healthz",
            "--access-log-skip", "/static/*", "--metrics-bind", "127.0.0.1:0");
        var skipped = new[] { "/healthz", "/healthz?probe=1", "/health%7A", "/static/app.css", "/static/" };
        var logged = new[] { "/healthz/extra", "/staticfile", "/Healthz", "/healthz?status=503", "/last" };
        foreach (var target in skipped.Concat(logged))
            Assert.Equal(target.EndsWith("503") ? 503 : 200, Get(server, target).Status);

        // One worker writes its lines in order: once the last request's line is there, so are the others'.
        WaitForLine(path, l => l.Contains("GET /last "));
        var lines = File.ReadAllLines(path, Encoding.Latin1);
        Assert.Equal(logged.Length, lines.Length);
        foreach (var target in logged) Assert.Contains(lines, l => l.Contains($"\"GET {target} HTTP/1.1\""));
        Assert.Contains(lines, l => l.Contains("\"GET /healthz?status=503 HTTP/1.1\" 503 "));

        // The metrics count every request, logged or not: 9 answered 200, one 503.
        var metricsPort = MetricsTests.MetricsPort(server);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string page;
        // Kestrel counts a request just after the client has its answer: polled, bounded.
        while (!(page = Http.Get(metricsPort, "/metrics").BodyText).Contains("request_duration_seconds_count 10\n"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the metrics never counted 10 requests:\n" + page);
            Thread.Sleep(20); // polling interval of the deadline loop
        }
        Assert.Contains("sharpwsgi_requests_total{method=\"GET\",status=\"2xx\"} 9\n", page);
        Assert.Contains("sharpwsgi_requests_total{method=\"GET\",status=\"5xx\"} 1\n", page);
    }

    [Fact]
    public void Skip_JsonFormat_SamePathsLeftOut()
    {
        var path = Path.Combine(_dir, "access.json");
        using var server = ServerProcess.StartApp(App, "--access-logfile", path, "--log-format", "json",
            "--access-log-skip", "/healthz", "--access-log-skip", "/static/*");
        foreach (var target in new[] { "/healthz", "/static/a.js", "/healthz?status=500", "/kept", "/last" })
            Get(server, target);
        WaitForLine(path, l => l.Contains("\"path\":\"/last\""));
        var entries = File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => (Path: e.GetProperty("path").GetString()!, Status: e.GetProperty("status").GetInt32()))
            .ToList();
        Assert.Equal(new[] { ("/healthz", 500), ("/kept", 200), ("/last", 200) }, entries);
    }

    [Theory]
    [InlineData("healthz", "expected a path starting with /")]
    [InlineData("/a*b", "only a trailing * is a wildcard")]
    public void Skip_BadPattern_OneParagraphAndExitTwo(string pattern, string expected)
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--access-log-skip", pattern, App });
        Assert.Equal(2, code);
        Assert.Contains($"option --access-log-skip: {expected}", output);
        StartupOutput.AssertNoDotNetStackTrace(output);
    }

    [Theory]
    [InlineData("/dev/full")]
    [InlineData("fifo")]
    public void UnwritableTarget_NeverBlocksRequests(string target)
    {
        if (target == "fifo")
        {
            target = Path.Combine(_dir, "nobody-reads");
            using var mk = System.Diagnostics.Process.Start("mkfifo", target);
            mk.WaitForExit();
        }
        using var server = ServerProcess.StartApp(App, "--access-logfile", target);
        for (var i = 0; i < 200; i++) Assert.Equal(200, Get(server, "/x").Status);
        Assert.False(server.HasExited);
    }
}
