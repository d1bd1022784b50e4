using System.Text;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// A protected tree (small and large files, a UTF-8 name, a dotfile, a subdirectory, a symlink out) beside a secret
/// outside it, and an X-Sendfile root; served with tests/apps/file_redirects.py (cleartext with metrics and an access
/// log, and over TLS) and with the example Django project's download view.
/// </summary>
public sealed class FileRedirectFixture : IDisposable
{
    public const string Secret = "OUTSIDE-SECRET-5813";
    public const string Token = "let-me-in";
    public readonly string Dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-accel-{Guid.NewGuid():N}");
    public string Protected => Path.Combine(Dir, "protected");
    public string SendfileRoot => Path.Combine(Dir, "media");
    public readonly byte[] Large = new byte[300_000];
    public readonly TestCertificates Certs = new();
    private readonly Lazy<ServerProcess> _plain, _tls, _django;

    public FileRedirectFixture()
    {
        Directory.CreateDirectory(Path.Combine(Protected, "sub"));
        Directory.CreateDirectory(SendfileRoot);
        new Random(17).NextBytes(Large);
        File.WriteAllBytes(Path.Combine(Protected, "large.bin"), Large);
        File.WriteAllText(Path.Combine(Protected, "report.pdf"), "%PDF-1.4 pretend");
        File.WriteAllText(Path.Combine(Protected, "notes.txt"), "protected notes");
        File.WriteAllText(Path.Combine(Protected, "caf\u00e9 menu.txt"), "utf8 name");
        File.WriteAllText(Path.Combine(Protected, ".htpasswd"), Secret);
        File.WriteAllText(Path.Combine(Protected, "sub", "inner.txt"), "inner");
        File.WriteAllText(Path.Combine(Dir, "secret.txt"), Secret);
        File.CreateSymbolicLink(Path.Combine(Protected, "out.txt"), Path.Combine(Dir, "secret.txt"));
        File.WriteAllText(Path.Combine(SendfileRoot, "photo.txt"), "sendfile body");
        File.CreateSymbolicLink(Path.Combine(SendfileRoot, "leak.txt"), Path.Combine(Dir, "secret.txt"));
        var flags = new[] { "--internal", $"/protected/={Protected}", "--x-sendfile-root", SendfileRoot };
        var app = Path.Combine(ServerProcess.AppsDir, "file_redirects.py");
        _plain = new(() => ServerProcess.Start(flags.Concat(new[]
            { "--metrics-bind", "127.0.0.1:0", "--access-logfile", "-", app })));
        _tls = new(() => ServerProcess.Start(flags.Concat(new[]
            { "--certfile", Certs.ServerCert, "--keyfile", Certs.ServerKey, app })));
        _django = new(() => ServerProcess.Start(new[]
            {
                "--python", Interpreters.SystemPython, "--internal", $"/protected/={Protected}", "--chdir",
                Path.Combine(ServerProcess.ExamplesDir, "django_project"), "mysite.wsgi:application",
            }, new Dictionary<string, string?> { ["DJANGO_DOWNLOAD_TOKEN"] = Token }));
    }

    public ServerProcess Plain => _plain.Value;
    public ServerProcess Tls => _tls.Value;
    public ServerProcess Django => _django.Value;

    public void Dispose()
    {
        foreach (var server in new[] { _plain, _tls, _django })
            if (server.IsValueCreated) server.Value.Dispose();
        Certs.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// X-Accel-Redirect (--internal) and X-Sendfile (--x-sendfile-root) over real sockets: the app's body is replaced by
/// the file, sent as --static sends (validators and 304, one range, sendfile on cleartext HTTP/1.1, copied over TLS
/// and HTTP/2), with the app's other headers kept and the X-Accel-* ones gone; the status is the file's whatever the
/// app said (nginx); traversal, symlinks out and dotfiles get 404 and never leak; an --internal location is 404 from
/// outside; a real Django view authorises downloads.
/// </summary>
public sealed class FileRedirectTests : IClassFixture<FileRedirectFixture>
{
    private readonly FileRedirectFixture _f;

    public FileRedirectTests(FileRedirectFixture fixture) => _f = fixture;

    private static RawResponse Get(ServerProcess server, string target, string headers = "", string method = "GET")
        => RawHttp.Exchange(server.Port,
            $"{method} {target} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n",
            isHead: method == "HEAD");

    /// <summary>The test app, naming loc in its X-Accel-Redirect (or the header given) and sending a body that
    /// must never show.</summary>
    private static string Named(string loc, string query = "") =>
        $"/file?loc={Uri.EscapeDataString(loc)}{query}";

    private static void AssertNotTheApps(RawResponse r)
    {
        Assert.DoesNotContain("the app body", r.BodyText);
        Assert.DoesNotContain(FileRedirectFixture.Secret, r.BodyText);
        Assert.Empty(r.Headers.Where(h => h.Name.StartsWith("X-Accel-", StringComparison.OrdinalIgnoreCase) ||
            h.Name.Equals("X-Sendfile", StringComparison.OrdinalIgnoreCase)));
    }

    [Fact]
    public void Get_AccelRedirect_SendsTheFileWithTheAppsOtherHeaders()
    {
        var r = Get(_f.Plain, Named("/protected/report.pdf", "&type=none"));
        Assert.Equal(200, r.Status);
        Assert.Equal("%PDF-1.4 pretend", r.BodyText);
        Assert.Equal("application/pdf", r.Header("Content-Type")); // the app set none: by extension
        Assert.Equal("16", r.Header("Content-Length"));
        Assert.Equal("attachment; filename=\"report.pdf\"", r.Header("Content-Disposition"));
        Assert.Equal("private, max-age=30", r.Header("Cache-Control"));
        Assert.Equal("downloaded=1; Path=/", r.Header("Set-Cookie"));
        Assert.Equal("bytes", r.Header("Accept-Ranges"));
        Assert.Matches("^\"[0-9a-f]+-[0-9a-f]+\"$", r.Header("ETag")); // the file's, not the app's "app-etag"
        var modified = File.GetLastWriteTimeUtc(Path.Combine(_f.Protected, "report.pdf"));
        Assert.Equal(modified.ToString("R"), r.Header("Last-Modified"));
        AssertNotTheApps(r);
    }

    [Fact]
    public void Get_AppSetContentType_AppsTypeWins()
    {
        var r = Get(_f.Plain, Named("/protected/notes.txt", "&type=application/x-custom"));
        Assert.Equal("application/x-custom", r.Header("Content-Type"));
        Assert.Equal("protected notes", r.BodyText);
    }

    [Fact]
    public void Get_AppStatusAndContentLength_TheFilesInstead()
    {
        // nginx sends the file's status; an app written for mod_xsendfile says the file's length with no body.
        var r = Get(_f.Plain, Named("/protected/notes.txt", "&status=404%20Not%20Found&length=999999"));
        Assert.Equal(200, r.Status);
        Assert.Equal("HTTP/1.1 200 OK", r.StatusLine);
        Assert.Equal("15", r.Header("Content-Length"));
        Assert.Equal("protected notes", r.BodyText);
    }

    [Fact]
    public void Get_LargeFile_ByteExactBySendfileAndCountedInTheAccessLog()
    {
        var before = SendfileFixture.SendfileBytes(_f.Plain);
        var r = Get(_f.Plain, Named("/protected/large.bin"));
        Assert.Equal(200, r.Status);
        Assert.Equal(_f.Large, r.Body);
        Assert.Equal(before + _f.Large.Length, SendfileFixture.SendfileBytesAtLeast(_f.Plain,
            before + _f.Large.Length));
        // gunicorn's format: ... "GET /file?loc=... HTTP/1.1" 200 300000 ...: the file's bytes, not the app's.
        _f.Plain.WaitForOutput(new Regex(@"""GET /file\?loc=%2Fprotected%2Flarge\.bin HTTP/1\.1"" 200 300000 "),
            TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Get_Range_Returns206OfTheFile()
    {
        var r = Get(_f.Plain, Named("/protected/large.bin"), "Range: bytes=1000-1999\r\n");
        Assert.Equal(206, r.Status);
        Assert.Equal($"bytes 1000-1999/{_f.Large.Length}", r.Header("Content-Range"));
        Assert.Equal(_f.Large.AsSpan(1000, 1000).ToArray(), r.Body);
        Assert.Equal("attachment; filename=\"report.pdf\"", r.Header("Content-Disposition"));

        var beyond = Get(_f.Plain, Named("/protected/notes.txt"), "Range: bytes=100-\r\n");
        Assert.Equal(416, beyond.Status);
        Assert.Equal("bytes */15", beyond.Header("Content-Range"));
    }

    [Fact]
    public void Get_IfNoneMatchOrIfModifiedSince_Returns304WithoutBodyOrType()
    {
        var first = Get(_f.Plain, Named("/protected/notes.txt"));
        var etag = first.Header("ETag")!;
        var r = Get(_f.Plain, Named("/protected/notes.txt"), $"If-None-Match: {etag}\r\n");
        Assert.Equal(304, r.Status);
        Assert.Equal(etag, r.Header("ETag"));
        Assert.Null(r.Header("Content-Type"));
        Assert.Null(r.Header("Content-Length"));
        Assert.Empty(r.Body);
        Assert.Equal(304, Get(_f.Plain, Named("/protected/notes.txt"),
            $"If-Modified-Since: {first.Header("Last-Modified")}\r\n").Status);
    }

    [Fact]
    public void HeadAndPost_HeadGetsTheHeadPostGetsTheFile()
    {
        var head = Get(_f.Plain, Named("/protected/notes.txt"), method: "HEAD");
        Assert.Equal(200, head.Status);
        Assert.Equal("15", head.Header("Content-Length"));
        Assert.Empty(head.Body);
        // nginx turns the redirected request into a GET: a form POST can answer with a download.
        var post = Get(_f.Plain, Named("/protected/notes.txt"), "Content-Length: 0\r\n", method: "POST");
        Assert.Equal(200, post.Status);
        Assert.Equal("protected notes", post.BodyText);
    }

    [Fact]
    public void Get_PercentEncodedUtf8Name_IsDecoded()
    {
        var r = Get(_f.Plain, Named("/protected/caf%C3%A9%20menu.txt"));
        Assert.Equal(200, r.Status);
        Assert.Equal("utf8 name", r.BodyText);
        Assert.Equal("inner", Get(_f.Plain, Named("/protected/sub/inner.txt?v=2")).BodyText); // a query dropped
    }

    [Theory]
    [InlineData("/protected/../../etc/passwd", "refused")]
    [InlineData("/protected/../secret.txt", "refused")]
    [InlineData("/protected/%2e%2e/secret.txt", "refused")]
    [InlineData("/protected/sub/..%2f..%2fsecret.txt", "refused")]
    [InlineData("/protected/sub//inner.txt", "refused")]
    [InlineData("/protected/.htpasswd", "refused")]
    [InlineData("/protected/out.txt", "leads out of")]
    [InlineData("/protected/sub", "no such file")]
    [InlineData("/protected/missing.pdf", "no such file")]
    [InlineData("/elsewhere/secret.txt", "not under any --internal prefix")]
    public void Get_UnsafeOrMissingLocation_404AndWhyInTheLog(string location, string why)
    {
        var r = Get(_f.Plain, Named(location));
        Assert.Equal(404, r.Status);
        Assert.Equal("404 Not Found: no such file\n", r.BodyText);
        AssertNotTheApps(r);
        var logged = _f.Plain.WaitForOutput(
            new Regex($@"X-Accel-Redirect: {Regex.Escape(location)} is answered 404: .*{Regex.Escape(why)}"),
            TimeSpan.FromSeconds(10));
        Assert.Contains(why == "no such file" ? "[INFO]" : "[WARNING]", logged);
    }

    [Theory]
    [InlineData("/protected/notes.txt")]
    [InlineData("/protected/")]
    [InlineData("/protected")]
    [InlineData("/prot%65cted/notes.txt")]
    [InlineData("/protected/missing.txt")]
    public void Get_InternalLocationFromOutside_404WithoutTheApp(string target)
    {
        var r = Get(_f.Plain, target);
        Assert.Equal(404, r.Status);
        Assert.Equal("404 Not Found: no such file\n", r.BodyText);
        Assert.DoesNotContain("protected notes", r.BodyText);
        Assert.Equal("app:/protectedness", Get(_f.Plain, "/protectedness").BodyText); // only the prefix is internal
    }

    [Fact]
    public void Get_XSendfileUnderRoot_SendsTheFile()
    {
        var path = Path.Combine(_f.SendfileRoot, "photo.txt");
        var r = Get(_f.Plain, Named(path, "&header=X-Sendfile&type=none"));
        Assert.Equal(200, r.Status);
        Assert.Equal("sendfile body", r.BodyText);
        Assert.Equal("text/plain; charset=utf-8", r.Header("Content-Type"));
        Assert.Equal("attachment; filename=\"report.pdf\"", r.Header("Content-Disposition"));
        AssertNotTheApps(r);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("{root}/../secret.txt")]
    [InlineData("{root}/leak.txt")]
    [InlineData("{protected}/notes.txt")]
    [InlineData("media/photo.txt")]
    public void Get_XSendfileOutsideRoot_404(string path)
    {
        path = path.Replace("{root}", _f.SendfileRoot).Replace("{protected}", _f.Protected);
        var r = Get(_f.Plain, Named(path, "&header=X-Sendfile"));
        Assert.Equal(404, r.Status);
        AssertNotTheApps(r);
        Assert.DoesNotContain("root:", r.BodyText);
    }

    [Fact]
    public void Get_AppRaisesAfterNamingTheFile_500NotTheFile()
    {
        var r = Get(_f.Plain, Named("/protected/notes.txt", "&raise=1"));
        Assert.Equal(500, r.Status);
        Assert.DoesNotContain("protected notes", r.BodyText);
    }

    [Fact]
    public void KeepAlive_RedirectsAndAppAnswersOnOneConnection_StayInStep()
    {
        using var conn = new RawHttp(_f.Plain.Port);
        string Request(string target, string extra = "") =>
            $"GET {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n";
        conn.Send(Request(Named("/protected/large.bin")) + Request("/plain") +
            Request(Named("/protected/missing.txt")) + Request(Named("/protected/notes.txt")));
        Assert.Equal(_f.Large, conn.ReadResponse().Body);
        Assert.Equal("app:/plain", conn.ReadResponse().BodyText);
        Assert.Equal(404, conn.ReadResponse().Status);
        Assert.Equal("protected notes", conn.ReadResponse().BodyText);
    }

    [Fact]
    public void Http2Cleartext_AccelRedirect_FileCopiedThroughKestrel()
    {
        var file = Path.Combine(_f.Dir, $"h2-{Guid.NewGuid():N}.bin");
        var result = Proc.Run("curl", new[] { "-s", "--http2-prior-knowledge", "-o", file, "-D", file + ".head",
            "-w", "%{http_code} %{http_version}", $"http://127.0.0.1:{_f.Plain.Port}{Named("/protected/large.bin")}" },
            TimeSpan.FromSeconds(30));
        Assert.Equal("200 2", result.Stdout);
        Assert.Equal(_f.Large, File.ReadAllBytes(file));
        Assert.Contains("content-disposition: attachment", File.ReadAllText(file + ".head"));
    }

    [Fact]
    public void Tls_AccelRedirect_FileAndRangeCopied()
    {
        var file = Path.Combine(_f.Dir, $"tls-{Guid.NewGuid():N}.bin");
        string Curl(string output, params string[] extra) => Proc.Run("curl", new[] { "-sS", "--http1.1",
            "--cacert", _f.Certs.CaCert, "-o", output, "-w", "%{http_code}",
            $"https://localhost:{_f.Tls.Port}{Named("/protected/large.bin")}" }.Concat(extra),
            TimeSpan.FromSeconds(30)).Stdout;
        Assert.Equal("200", Curl(file));
        Assert.Equal("206", Curl(file + ".range", "-H", "Range: bytes=299000-"));
        Assert.Equal(_f.Large, File.ReadAllBytes(file));
        Assert.Equal(_f.Large.AsSpan(299_000).ToArray(), File.ReadAllBytes(file + ".range"));
    }

    // ---- settings that cannot work: one paragraph and a non-zero exit before any worker --------------------------

    [Theory]
    [InlineData(2, "--internal", "/protected/", "expected URL_PREFIX=DIR")]
    [InlineData(2, "--internal", "/pro%74ected/=/tmp", "must be a plain path")]
    [InlineData(2, "--x-sendfile-root", "relative/dir", "expected an absolute directory path")]
    [InlineData(1, "--internal", "/protected/=/nonexistent/sharpwsgi-accel", "is not a directory")]
    [InlineData(1, "--x-sendfile-root", "/nonexistent/sharpwsgi-accel", "is not a directory")]
    [InlineData(2, "--compress-min-size", "1 KB", "expected a size in bytes")]
    public void Start_BadFileOrCompressionSetting_RefusedWithWhy(int exitCode, string flag, string value, string why)
    {
        var (code, output) = ServerProcess.RunToExit(new[]
            { flag, value, Path.Combine(ServerProcess.AppsDir, "file_redirects.py") },
            timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(exitCode, code);
        Assert.Contains(why, output);
        Assert.DoesNotContain("Booting worker", output);
    }

    [Fact]
    public void Start_InternalPrefixInsideAStaticOne_RefusedAsAUsageError()
    {
        var (code, output) = ServerProcess.RunToExit(new[]
        {
            "--static", $"/files/={_f.SendfileRoot}", "--internal", $"/files/private/={_f.Protected}",
            Path.Combine(ServerProcess.AppsDir, "file_redirects.py"),
        }, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(2, code);
        Assert.Contains("overlaps --static", output);
    }

    // ---- Django: the app authorises, the server sends ----------------------------------------------------------

    [Fact]
    public void Django_AuthorisedDownload_ServerSendsTheFileWithDjangosHeaders()
    {
        var r = Get(_f.Django, $"/download/report.pdf?token={FileRedirectFixture.Token}");
        Assert.Equal(200, r.Status);
        Assert.Equal("%PDF-1.4 pretend", r.BodyText);
        Assert.Equal("application/pdf", r.Header("Content-Type")); // Django's guess, as django-sendfile2's
        Assert.Equal("attachment; filename*=UTF-8''report.pdf", r.Header("Content-Disposition"));
        Assert.Equal("DENY", r.Header("X-Frame-Options")); // Django's middleware's header kept
        AssertNotTheApps(r);
    }

    [Fact]
    public void Django_WithoutPermission_DjangosOwn403()
    {
        var r = Get(_f.Django, "/download/report.pdf?token=wrong");
        Assert.Equal(403, r.Status);
        Assert.Equal("no download for you\n", r.BodyText);
    }

    [Fact]
    public void Django_Utf8NameRangeAnd304_AsForAnyFile()
    {
        var name = "/download/caf%C3%A9%20menu.txt?token=" + FileRedirectFixture.Token;
        var whole = Get(_f.Django, name);
        Assert.Equal("utf8 name", whole.BodyText);
        Assert.Equal("text/plain", whole.Header("Content-Type"));
        var range = Get(_f.Django, name, "Range: bytes=5-\r\n");
        Assert.Equal(206, range.Status);
        Assert.Equal("name", range.BodyText);
        Assert.Equal(304, Get(_f.Django, name, $"If-None-Match: {whole.Header("ETag")}\r\n").Status);
        Assert.Equal(_f.Large, Get(_f.Django, "/download/large.bin?token=" + FileRedirectFixture.Token).Body);
    }

    [Fact]
    public void Django_TraversalThroughTheView_404NeverTheSecret()
    {
        // Django decodes the path and the view quotes it into X-Accel-Redirect: /protected/../secret.txt.
        var r = Get(_f.Django, "/download/..%2Fsecret.txt?token=" + FileRedirectFixture.Token);
        Assert.Equal(404, r.Status);
        AssertNotTheApps(r);
        Assert.Equal(404, Get(_f.Django, "/protected/report.pdf").Status);
        Assert.Equal(404, Get(_f.Django, "/download/.htpasswd?token=" + FileRedirectFixture.Token).Status);
    }
}
