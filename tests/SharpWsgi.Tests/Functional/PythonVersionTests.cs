using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// One row per supported interpreter: CPython 3.9–3.13 from $(pyenv root)/versions (the newest patch of each)
/// and Debian's /usr/bin/python3. Each row runs its workers in that interpreter (--python), serves
/// examples/hello.py and echo_environ.py, and checks a GET, a POST body round trip (Content-Length and chunked) and
/// the startup line. A row whose interpreter is absent is reported as skipped, with the reason.
/// </summary>
public sealed class PythonVersionTests
{
    private readonly ITestOutputHelper _out;
    public PythonVersionTests(ITestOutputHelper output) => _out = output;

    public static IEnumerable<object[]> Interpreters =>
        new[] { "3.9", "3.10", "3.11", "3.12", "3.13", "system" }.Select(v => new object[] { v });

    private static string? Resolve(string which, out string reason)
    {
        if (which == "system")
        {
            reason = File.Exists(Infrastructure.Interpreters.SystemPython)
                ? "" : Infrastructure.Interpreters.SystemPython + " is absent";
            return reason == "" ? Infrastructure.Interpreters.SystemPython : null;
        }
        return Infrastructure.Interpreters.FindPyenv(int.Parse(which.Split('.')[1]), out reason);
    }

    [SkippableTheory]
    [MemberData(nameof(Interpreters))]
    public void Serve_WithInterpreter_HelloAndBodyRoundTrip(string which)
    {
        var python = Resolve(which, out var reason);
        if (python == null)
        {
            throw new SkipException($"{reason}");
        }
        var version = Infrastructure.Interpreters.Version(python);
        _out.WriteLine($"{which}: {python} (Python {version})");

        using (var hello = ServerProcess.Start(new[]
            { "--python", python, Path.Combine(ServerProcess.ExamplesDir, "hello.py") }))
        {
            Assert.Matches(new Regex($@"Python {Regex.Escape(version)}\b"), hello.Output);
            var r = Http.Get(hello.Port, "/");
            Assert.Equal(200, r.Status);
            Assert.Equal("Hello world!\n", r.BodyText);
            Assert.Equal("text/plain", r.Header("Content-Type"));
        }

        using var echo = ServerProcess.Start(new[]
            { "--python", python, Path.Combine(ServerProcess.AppsDir, "echo_environ.py") });
        Assert.Matches(new Regex($@"Python {Regex.Escape(version)}\b"), echo.Output);
        var body = new byte[200_000];
        new Random(version.GetHashCode()).NextBytes(body);

        var posted = Http.Post(echo.Port, "/upload?v=" + version, body);
        Assert.Equal(200, posted.Status);
        var json = Http.Json(posted);
        Assert.Equal(body, Convert.FromBase64String(json.GetProperty("body_b64").GetString()!));
        var env = json.GetProperty("environ");
        Assert.Equal("POST", env.Str("REQUEST_METHOD"));
        Assert.Equal("/upload", env.Str("PATH_INFO"));
        Assert.Equal("v=" + version, env.Str("QUERY_STRING"));
        Assert.Equal(body.Length.ToString(), env.Str("CONTENT_LENGTH"));

        var chunked = Http.PostChunked(echo.Port, "/chunked", body, chunkSize: 7_777);
        Assert.Equal(200, chunked.Status);
        Assert.Equal(body, Convert.FromBase64String(Http.Json(chunked).GetProperty("body_b64").GetString()!));
    }

    [SkippableFact]
    public void Interpreters_Report_WhichArePresent()
    {
        foreach (var row in Interpreters)
        {
            var which = (string)row[0];
            var python = Resolve(which, out var reason);
            _out.WriteLine(python == null ? $"{which}: absent ({reason})" : $"{which}: {python}");
        }
        Assert.NotNull(Resolve("system", out _) ?? Enumerable.Range(9, 5)
            .Select(m => Infrastructure.Interpreters.FindPyenv(m, out _)).FirstOrDefault(p => p != null));
    }
}
