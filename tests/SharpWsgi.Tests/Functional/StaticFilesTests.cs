using System.Diagnostics;
using System.Text;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// A static tree with the cases that matter (plain, precompressed siblings, a hashed name, a dotfile, a directory,
/// symlinks out of the tree) next to a secret file outside it, served with echo_environ.py behind: one server with
/// --static-fallthrough on (the default), one with it off.
/// </summary>
public sealed class StaticFilesFixture : IDisposable
{
    public const string Secret = "OUTSIDE-SECRET-4711";
    public const string DotSecret = "DOTFILE-SECRET-4712";
    public readonly string Dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-static-{Guid.NewGuid():N}");
    public string Root => Path.Combine(Dir, "root");
    public readonly byte[] Css =
        Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("body { color: red }\n", 100)));
    public readonly byte[] CssBr = Encoding.ASCII.GetBytes("pretend-brotli");
    public readonly byte[] CssGz = Encoding.ASCII.GetBytes("pretend-gzip-bytes");
    public readonly byte[] Large = new byte[300_000];
    private readonly string _callsFile;
    private readonly Lazy<ServerProcess> _on, _off;

    public StaticFilesFixture()
    {
        Directory.CreateDirectory(Path.Combine(Root, "css"));
        Directory.CreateDirectory(Path.Combine(Root, "sub"));
        File.WriteAllBytes(Path.Combine(Root, "css", "site.css"), Css);
        File.WriteAllBytes(Path.Combine(Root, "css", "site.css.br"), CssBr);
        File.WriteAllBytes(Path.Combine(Root, "css", "site.css.gz"), CssGz);
        File.WriteAllText(Path.Combine(Root, "css", "only.css"), "only");
        File.WriteAllText(Path.Combine(Root, "app.0123456789ab.js"), "hashed()");
        File.WriteAllText(Path.Combine(Root, "a b.txt"), "spaced");
        File.WriteAllText(Path.Combine(Root, ".env"), DotSecret);
        File.WriteAllText(Path.Combine(Root, "sub", "inner.txt"), "inner");
        new Random(7).NextBytes(Large);
        File.WriteAllBytes(Path.Combine(Root, "large.bin"), Large);
        File.WriteAllText(Path.Combine(Dir, "secret.txt"), Secret);
        File.CreateSymbolicLink(Path.Combine(Root, "out.txt"), Path.Combine(Dir, "secret.txt"));
        File.CreateSymbolicLink(Path.Combine(Root, "dotlink.txt"), Path.Combine(Root, ".env"));
        Directory.CreateSymbolicLink(Path.Combine(Root, "outdir"), Dir);
        File.CreateSymbolicLink(Path.Combine(Root, "inlink.txt"), Path.Combine(Root, "sub", "inner.txt"));
        File.WriteAllText(Path.Combine(Root, "css", "leak.css"), "leak");
        File.CreateSymbolicLink(Path.Combine(Root, "css", "leak.css.gz"), Path.Combine(Dir, "secret.txt"));
        File.WriteAllText(Path.Combine(Root, "caf\u00e9.txt"), "utf8 name");
        File.WriteAllText(Path.Combine(Root, "empty.txt"), "");
        _callsFile = Path.Combine(Dir, "calls.log");
        _on = new(() => Start("--static", $"/static/={Root}", "--static-max-age", "120"));
        _off = new(() => Start("--static", $"/static={Root}", "--static-fallthrough", "off"));
    }

    private ServerProcess Start(params string[] args) =>
        ServerProcess.Start(args.Append(Path.Combine(ServerProcess.AppsDir, "echo_environ.py")),
            new Dictionary<string, string?> { ["ECHO_ENVIRON_CALLS"] = _callsFile });

    public ServerProcess On => _on.Value;
    public ServerProcess Off => _off.Value;

    public void Dispose()
    {
        if (_on.IsValueCreated) _on.Value.Dispose();
        if (_off.IsValueCreated) _off.Value.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// --static over real sockets: the headers and statuses of a file server (200, 206, 304, 416, HEAD), precompressed
/// siblings, Cache-Control, traversal attempts that never leak, fallthrough to the app, and the app not being called
/// for a static hit.
/// </summary>
public sealed class StaticFilesTests : IClassFixture<StaticFilesFixture>
{
    private readonly StaticFilesFixture _f;

    public StaticFilesTests(StaticFilesFixture fixture) => _f = fixture;

    private static RawResponse Get(ServerProcess server, string target, string headers = "", string method = "GET")
        => RawHttp.Exchange(server.Port,
            $"{method} {target} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n",
            isHead: method == "HEAD");

    /// <summary>Total app calls so far (echo_environ's /__calls counts every other path).</summary>
    private static int Calls(ServerProcess server)
    {
        var body = Get(server, "/__calls?port=0").BodyText;
        return JsonDocument.Parse(body).RootElement.GetProperty("total").GetInt32();
    }

    private static bool ReachedApp(RawResponse r) => r.Status == 200 && r.BodyText.Contains("\"environ\"");

    [Fact]
    public void Get_File_SendsBytesTypeLengthValidators()
    {
        var r = Get(_f.On, "/static/css/only.css");
        Assert.Equal(200, r.Status);
        Assert.Equal("only", r.BodyText);
        Assert.Equal("text/css; charset=utf-8", r.Header("Content-Type"));
        Assert.Equal("4", r.Header("Content-Length"));
        Assert.Equal("bytes", r.Header("Accept-Ranges"));
        Assert.Matches("^\"[0-9a-f]+-[0-9a-f]+\"$", r.Header("ETag"));
        var modified = File.GetLastWriteTimeUtc(Path.Combine(_f.Root, "css", "only.css"));
        Assert.Equal(modified.ToString("R"), r.Header("Last-Modified"));
        Assert.Null(r.Header("Vary")); // no sibling: one representation
        Assert.Equal("only", Get(_f.On, "/static/css/only.css?v=3").BodyText); // a cache-busting query
    }

    [Fact]
    public void Get_StaticHit_DoesNotCallTheApp()
    {
        var before = Calls(_f.On);
        Assert.Equal(200, Get(_f.On, "/static/css/only.css").Status);
        Assert.Equal(200, Get(_f.On, "/static/large.bin").Status);
        Assert.Equal(before, Calls(_f.On));
        Assert.True(ReachedApp(Get(_f.On, "/elsewhere")));
        Assert.Equal(before + 1, Calls(_f.On));
    }

    [Fact]
    public void Get_LargeFile_SendsEveryByte()
    {
        var r = Get(_f.On, "/static/large.bin");
        Assert.Equal(200, r.Status);
        Assert.Equal("application/octet-stream", r.Header("Content-Type"));
        Assert.Equal(_f.Large, r.Body);
    }

    [Fact]
    public void Head_File_SendsHeadersWithoutBody()
    {
        var r = Get(_f.On, "/static/css/only.css", method: "HEAD");
        Assert.Equal(200, r.Status);
        Assert.Equal("4", r.Header("Content-Length"));
        Assert.NotNull(r.Header("ETag"));
        Assert.Empty(r.Body);
    }

    [Fact]
    public void Get_PercentEncodedName_IsDecoded()
    {
        var r = Get(_f.On, "/static/a%20b.txt");
        Assert.Equal("spaced", r.BodyText);
    }

    [Fact]
    public void Get_IfNoneMatchCurrentEtag_Returns304()
    {
        var etag = Get(_f.On, "/static/css/only.css").Header("ETag")!;
        var r = Get(_f.On, "/static/css/only.css", $"If-None-Match: \"other\", {etag}\r\n");
        Assert.Equal(304, r.Status);
        Assert.Equal(etag, r.Header("ETag"));
        Assert.Empty(r.Body);
        // A weak comparison: W/ on the client's copy still matches.
        Assert.Equal(304, Get(_f.On, "/static/css/only.css", $"If-None-Match: W/{etag}\r\n").Status);
        Assert.Equal(200, Get(_f.On, "/static/css/only.css", "If-None-Match: \"stale\"\r\n").Status);
    }

    [Fact]
    public void Get_IfModifiedSince_Returns304UnlessChanged()
    {
        var lastModified = Get(_f.On, "/static/css/only.css").Header("Last-Modified")!;
        Assert.Equal(304, Get(_f.On, "/static/css/only.css", $"If-Modified-Since: {lastModified}\r\n").Status);
        var earlier = DateTimeOffset.Parse(lastModified).AddHours(-1).ToString("R");
        Assert.Equal(200, Get(_f.On, "/static/css/only.css", $"If-Modified-Since: {earlier}\r\n").Status);
        // If-None-Match decides when both are sent.
        Assert.Equal(200, Get(_f.On, "/static/css/only.css",
            $"If-None-Match: \"stale\"\r\nIf-Modified-Since: {lastModified}\r\n").Status);
    }

    [Fact]
    public void Get_Range_Returns206WithContentRange()
    {
        var r = Get(_f.On, "/static/large.bin", "Range: bytes=100-199\r\n");
        Assert.Equal(206, r.Status);
        Assert.Equal($"bytes 100-199/{_f.Large.Length}", r.Header("Content-Range"));
        Assert.Equal("100", r.Header("Content-Length"));
        Assert.Equal(_f.Large.AsSpan(100, 100).ToArray(), r.Body);

        var suffix = Get(_f.On, "/static/large.bin", "Range: bytes=-10\r\n");
        Assert.Equal(206, suffix.Status);
        Assert.Equal(_f.Large.AsSpan(_f.Large.Length - 10).ToArray(), suffix.Body);

        var open = Get(_f.On, "/static/large.bin", "Range: bytes=299990-\r\n");
        Assert.Equal(206, open.Status);
        Assert.Equal(_f.Large.AsSpan(299_990).ToArray(), open.Body);
    }

    [Fact]
    public void Get_RangeBeyondEnd_Returns416()
    {
        var r = Get(_f.On, "/static/css/only.css", "Range: bytes=10-20\r\n");
        Assert.Equal(416, r.Status);
        Assert.Equal("bytes */4", r.Header("Content-Range"));
        Assert.StartsWith("416 Range Not Satisfiable", r.BodyText);
    }

    [Fact]
    public void Get_SeveralRangesOrMalformedRange_SendsWholeFile()
    {
        Assert.Equal(200, Get(_f.On, "/static/css/only.css", "Range: bytes=0-1,2-3\r\n").Status);
        Assert.Equal(200, Get(_f.On, "/static/css/only.css", "Range: bytes=x-1\r\n").Status);
    }

    [Fact]
    public void Get_IfRange_StaleEtagSendsWholeFileCurrentEtagSendsRange()
    {
        var etag = Get(_f.On, "/static/css/only.css").Header("ETag")!;
        var stale = Get(_f.On, "/static/css/only.css", "Range: bytes=0-1\r\nIf-Range: \"stale\"\r\n");
        Assert.Equal(200, stale.Status);
        Assert.Equal("only", stale.BodyText);
        var current = Get(_f.On, "/static/css/only.css", $"Range: bytes=0-1\r\nIf-Range: {etag}\r\n");
        Assert.Equal(206, current.Status);
        Assert.Equal("on", current.BodyText);
        var lastModified = current.Header("Last-Modified")!;
        Assert.Equal(206, Get(_f.On, "/static/css/only.css",
            $"Range: bytes=0-1\r\nIf-Range: {lastModified}\r\n").Status);
    }

    [Fact]
    public void Get_AcceptEncoding_ChoosesPrecompressedSiblingWithVary()
    {
        var br = Get(_f.On, "/static/css/site.css", "Accept-Encoding: gzip, deflate, br\r\n");
        Assert.Equal("br", br.Header("Content-Encoding"));
        Assert.Equal(_f.CssBr, br.Body);
        Assert.Equal("text/css; charset=utf-8", br.Header("Content-Type"));
        Assert.Equal("Accept-Encoding", br.Header("Vary"));

        var gz = Get(_f.On, "/static/css/site.css", "Accept-Encoding: gzip, br;q=0\r\n");
        Assert.Equal("gzip", gz.Header("Content-Encoding"));
        Assert.Equal(_f.CssGz, gz.Body);
        Assert.NotEqual(br.Header("ETag"), gz.Header("ETag"));

        var identity = Get(_f.On, "/static/css/site.css");
        Assert.Null(identity.Header("Content-Encoding"));
        Assert.Equal(_f.Css, identity.Body);
        Assert.Equal("Accept-Encoding", identity.Header("Vary"));
        Assert.NotEqual(identity.Header("ETag"), gz.Header("ETag"));
    }

    [Fact]
    public void Get_CacheControl_HashedNameImmutableOtherwiseMaxAge()
    {
        Assert.Equal("public, max-age=31536000, immutable",
            Get(_f.On, "/static/app.0123456789ab.js").Header("Cache-Control"));
        Assert.Equal("public, max-age=120", Get(_f.On, "/static/css/only.css").Header("Cache-Control"));
        Assert.Equal("public, max-age=60", Get(_f.Off, "/static/css/only.css").Header("Cache-Control"));
    }

    public static TheoryData<string> Attempts => new()
    {
        "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/%2E%2E%2Fsecret.txt",
        "/static/css/..%2f..%2fsecret.txt", "/static/..%5csecret.txt", "/static/css/%2e%2e/%2e%2e/secret.txt",
        "/static/out.txt", "/static/outdir/secret.txt", "/static/.env", "/static/%2eenv", "/static/dotlink.txt",
        "/static/css/only.css%00.txt", "/static/css//only.css", "/static/./css/only.css", "/static/sub/",
        "/static/sub", "/static/", "/static/missing.css", "/static/caf%ff.txt",
    };

    [Theory]
    [MemberData(nameof(Attempts))]
    public void Get_UnsafeOrMissingPath_FallsThroughToTheAppWithoutLeaking(string target)
    {
        var r = Get(_f.On, target);
        Assert.DoesNotContain(StaticFilesFixture.Secret, r.BodyText);
        Assert.DoesNotContain(StaticFilesFixture.DotSecret, r.BodyText);
        Assert.DoesNotContain("inner.txt", r.BodyText); // no listing
        Assert.True(ReachedApp(r) || r.Status == 400, $"{target}: {r.StatusLine}\n{r.BodyText}");
    }

    [Theory]
    [MemberData(nameof(Attempts))]
    public void Get_UnsafeOrMissingPathWithFallthroughOff_Returns404(string target)
    {
        var r = Get(_f.Off, target);
        Assert.DoesNotContain(StaticFilesFixture.Secret, r.BodyText);
        Assert.DoesNotContain(StaticFilesFixture.DotSecret, r.BodyText);
        Assert.True(r.Status is 404 or 400, $"{target}: {r.StatusLine}\n{r.BodyText}");
        if (r.Status == 404) Assert.StartsWith("404 Not Found", r.BodyText);
    }

    [Fact]
    public void Get_RawBackslash_NeverLeaks()
    {
        var r = Get(_f.Off, "/static/..\\secret.txt");
        Assert.DoesNotContain(StaticFilesFixture.Secret, r.BodyText);
        Assert.True(r.Status is 404 or 400, r.StatusLine);
    }

    [Fact]
    public void Get_SymlinkInsideTheTree_IsServed()
    {
        Assert.Equal("inner", Get(_f.Off, "/static/inlink.txt").BodyText);
    }

    [Fact]
    public void Get_SiblingSymlinkOutOfTheTree_IsNotUsed()
    {
        var r = Get(_f.Off, "/static/css/leak.css", "Accept-Encoding: gzip\r\n");
        Assert.Equal(200, r.Status);
        Assert.Equal("leak", r.BodyText);
        Assert.Null(r.Header("Content-Encoding"));
    }

    [Fact]
    public void Get_Utf8Name_IsDecoded()
    {
        Assert.Equal("utf8 name", Get(_f.Off, "/static/caf%C3%A9.txt").BodyText);
    }

    [Fact]
    public void Get_EmptyFile_ZeroLengthAndRangeUnsatisfiable()
    {
        var r = Get(_f.Off, "/static/empty.txt");
        Assert.Equal(200, r.Status);
        Assert.Equal("0", r.Header("Content-Length"));
        Assert.Equal(416, Get(_f.Off, "/static/empty.txt", "Range: bytes=0-\r\n").Status);
        // A backwards range is malformed: the whole (empty) file.
        Assert.Equal(200, Get(_f.Off, "/static/empty.txt", "Range: bytes=5-2\r\n").Status);
    }

    [Fact]
    public void Post_UnderPrefix_GoesToTheApp()
    {
        var r = RawHttp.Exchange(_f.On.Port,
            "POST /static/css/only.css HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        Assert.True(ReachedApp(r), r.StatusLine);
    }

    [Fact]
    public void KeepAlive_StaticAnswersInARow_StayInStep()
    {
        using var conn = new RawHttp(_f.On.Port);
        var etag = "";
        foreach (var (headers, status) in new[] { ("", 200), ("IF-NONE-MATCH", 304), ("Range: bytes=99-\r\n", 416),
                     ("Range: bytes=0-0\r\n", 206), ("", 200) })
        {
            var extra = headers == "IF-NONE-MATCH" ? $"If-None-Match: {etag}\r\n" : headers;
            conn.Send($"GET /static/css/only.css HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");
            var r = conn.ReadResponse();
            Assert.Equal(status, r.Status);
            etag = r.Header("ETag") ?? etag;
        }
        conn.Send("GET /static/large.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal(_f.Large, conn.ReadResponse().Body);
    }

    [Fact]
    public void Http2_StaticFile_SentWholeAndAsRange()
    {
        var file = Path.Combine(_f.Dir, $"h2-{Guid.NewGuid():N}.bin");
        var before = Calls(_f.On);
        string Curl(params string[] extra)
        {
            var args = new List<string> { "-s", "--http2-prior-knowledge", "-o", file, "-w",
                "%{http_code} %{http_version}" };
            args.AddRange(extra);
            args.Add($"http://127.0.0.1:{_f.On.Port}/static/large.bin");
            return Proc.Run("curl", args, TimeSpan.FromSeconds(30)).Stdout;
        }
        Assert.Equal("200 2", Curl());
        Assert.Equal(_f.Large, File.ReadAllBytes(file));
        Assert.Equal("206 2", Curl("-H", "Range: bytes=1000-1999"));
        Assert.Equal(_f.Large.AsSpan(1000, 1000).ToArray(), File.ReadAllBytes(file));
        Assert.Equal(before, Calls(_f.On));
    }

    [Fact]
    public void Start_MissingStaticDirectory_ExitsWithOneParagraph()
    {
        var (code, output) = ServerProcess.RunToExit(new[]
        {
            "--static", "/static/=/nonexistent/sharpwsgi-static",
            Path.Combine(ServerProcess.AppsDir, "echo_environ.py"),
        }, timeout: TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, code);
        Assert.Contains("--static /static/=/nonexistent/sharpwsgi-static", output);
        Assert.Contains("is not a directory", output);
    }

    [Fact]
    public void Start_MalformedStaticValue_IsAUsageError()
    {
        var (code, output) = ServerProcess.RunToExit(new[]
            { "--static", "/static/", Path.Combine(ServerProcess.AppsDir, "echo_environ.py") },
            timeout: TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, code);
        Assert.Contains("URL_PREFIX=DIR", output);
    }
}

/// <summary>The Django example's collectstatic output served by --static (Debian python3-django).</summary>
public sealed class StaticFilesDjangoTests
{
    [Fact]
    public async Task Django_CollectstaticOutput_ServesAdminCssWithoutTheApp()
    {
        var project = Path.Combine(ServerProcess.ExamplesDir, "django_project");
        var root = Path.Combine(Path.GetTempPath(), $"sharpwsgi-collectstatic-{Guid.NewGuid():N}");
        try
        {
            var psi = new ProcessStartInfo(Interpreters.SystemPython, "manage.py collectstatic --noinput")
            {
                WorkingDirectory = project, RedirectStandardOutput = true, RedirectStandardError = true,
            };
            psi.Environment["DJANGO_STATIC_ROOT"] = root;
            using (var collect = Process.Start(psi)!)
            {
                var errors = collect.StandardError.ReadToEndAsync();
                collect.StandardOutput.ReadToEnd();
                Assert.True(collect.WaitForExit(60_000), "collectstatic did not finish");
                Assert.True(collect.ExitCode == 0, await errors);
            }
            using var server = ServerProcess.Start(new[]
            {
                "--python", Interpreters.SystemPython, "--chdir", project, "--static", $"/static/={root}",
                "mysite.wsgi:application",
            });
            var css = RawHttp.Exchange(server.Port,
                "GET /static/admin/css/base.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            Assert.Equal(200, css.Status);
            Assert.Equal("text/css; charset=utf-8", css.Header("Content-Type"));
            Assert.Equal(File.ReadAllBytes(Path.Combine(root, "admin", "css", "base.css")), css.Body);

            // ManifestStaticFilesStorage's hashed copy is cached for a year.
            var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "staticfiles.json")));
            var hashed = manifest.RootElement.GetProperty("paths").GetProperty("admin/css/base.css").GetString();
            var immutable = RawHttp.Exchange(server.Port,
                $"GET /static/{hashed} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            Assert.Equal(200, immutable.Status);
            Assert.Equal("public, max-age=31536000, immutable", immutable.Header("Cache-Control"));

            // The app still answers everything else, including its own 404 for a missing static file.
            var page = RawHttp.Exchange(server.Port,
                "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            Assert.Contains("Hello from Django", page.BodyText);
            var missing = RawHttp.Exchange(server.Port,
                "GET /static/nope.css HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            Assert.Equal(404, missing.Status);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
