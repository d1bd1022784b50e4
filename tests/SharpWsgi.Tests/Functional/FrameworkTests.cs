using System.Net;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Flask (tests/apps/flask_site.py) and Django (examples/django_project) served end to end through the real
/// server, with Debian's /usr/bin/python3 (python3-flask, python3-django; test.sh installs them): a page,
/// a form POST with a CSRF token round trip carried by cookies, a redirect and a 404.
/// </summary>
public sealed class FrameworkTests : IClassFixture<FrameworkTests.Servers>
{
    public sealed class Servers : IDisposable
    {
        private readonly Lazy<ServerProcess> _flask = new(() => ServerProcess.Start(new[]
            { "--python", Interpreters.SystemPython, Path.Combine(ServerProcess.AppsDir, "flask_site.py") }));

        private readonly Lazy<ServerProcess> _flaskPrefixed = new(() => ServerProcess.Start(new[]
            { "--python", Interpreters.SystemPython, "--root-path", "/site",
                Path.Combine(ServerProcess.AppsDir, "flask_site.py") }));

        private readonly Lazy<ServerProcess> _django = new(() => ServerProcess.Start(new[]
            { "--python", Interpreters.SystemPython, "--chdir",
                Path.Combine(ServerProcess.ExamplesDir, "django_project"), "mysite.wsgi:application" }));

        public ServerProcess Flask => _flask.Value;
        public ServerProcess FlaskPrefixed => _flaskPrefixed.Value;
        public ServerProcess Django => _django.Value;

        public void Dispose()
        {
            foreach (var s in new[] { _flask, _flaskPrefixed, _django })
                if (s.IsValueCreated) s.Value.Dispose();
        }
    }

    private readonly Servers _servers;

    public FrameworkTests(Servers servers) => _servers = servers;

    private static HttpClient Client(ServerProcess server, CookieContainer? cookies = null)
    {
        var handler = new HttpClientHandler
        {
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = cookies ?? new CookieContainer(),
        };
        return new HttpClient(handler) { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    private static string Location(HttpResponseMessage r) => r.Headers.Location?.OriginalString ?? "(none)";

    // ---- Flask ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task Flask_GetIndex_ReturnsHtmlPage()
    {
        using var client = Client(_servers.Flask);
        var r = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("text/html", r.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Hello from Flask", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Flask_GetJsonRoute_ReturnsJsonWithQueryArgs()
    {
        using var client = Client(_servers.Flask);
        var r = await client.GetAsync("/api/info?x=1&y=%C3%A9");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        var json = System.Text.Json.JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("/api/info", json.GetProperty("path").GetString());
        Assert.Equal("1", json.GetProperty("args").GetProperty("x").GetString());
        Assert.Equal("é", json.GetProperty("args").GetProperty("y").GetString());
    }

    [Fact]
    public async Task Flask_PostFormWithCsrfToken_RedirectsAndShowsName()
    {
        var cookies = new CookieContainer();
        using var client = Client(_servers.Flask, cookies);
        var form = await client.GetAsync("/form");
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        var token = Regex.Match(await form.Content.ReadAsStringAsync(),
            "name=\"csrf_token\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(token);
        Assert.NotEmpty(cookies.GetCookies(_servers.Flask.BaseUri)); // the session cookie holding the token

        var post = await client.PostAsync("/form", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["csrf_token"] = token, ["name"] = "Zoë Smith" }));
        Assert.Equal(HttpStatusCode.SeeOther, post.StatusCode);
        var location = Location(post);
        Assert.Contains("/thanks?name=Zo", location);

        var thanks = await client.GetAsync(location);
        Assert.Equal(HttpStatusCode.OK, thanks.StatusCode);
        Assert.Contains("Thanks, Zoë Smith!", await thanks.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Flask_PostFormWithoutOrWithWrongCsrfToken_Returns400()
    {
        var cookies = new CookieContainer();
        using var client = Client(_servers.Flask, cookies);
        var none = await client.PostAsync("/form",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "x" }));
        Assert.Equal(HttpStatusCode.BadRequest, none.StatusCode);
        Assert.Contains("CSRF", await none.Content.ReadAsStringAsync());

        await client.GetAsync("/form"); // session now holds a token
        var wrong = await client.PostAsync("/form", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["csrf_token"] = "forged", ["name"] = "x" }));
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
    }

    [Fact]
    public async Task Flask_GetOldUrl_RedirectsToIndex()
    {
        using var client = Client(_servers.Flask);
        var r = await client.GetAsync("/old");
        Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.EndsWith("/", Location(r));
        var followed = await client.GetAsync(Location(r));
        Assert.Equal(HttpStatusCode.OK, followed.StatusCode);
    }

    [Fact]
    public async Task Flask_GetUnknownPath_Returns404()
    {
        using var client = Client(_servers.Flask);
        var r = await client.GetAsync("/no/such/page");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Contains("Not Found", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Flask_RootPath_UrlsAndRedirectsCarryThePrefix()
    {
        var cookies = new CookieContainer();
        using var client = Client(_servers.FlaskPrefixed, cookies);
        var info = await client.GetAsync("/site/api/info");
        Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        var json = System.Text.Json.JsonDocument.Parse(await info.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("/site", json.GetProperty("script_root").GetString());
        Assert.Equal("/api/info", json.GetProperty("path").GetString());

        var form = await client.GetAsync("/site/form");
        var html = await form.Content.ReadAsStringAsync();
        Assert.Contains("action=\"/site/form\"", html);
        var token = Regex.Match(html, "name=\"csrf_token\" value=\"([^\"]+)\"").Groups[1].Value;
        var post = await client.PostAsync("/site/form", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["csrf_token"] = token, ["name"] = "Ann" }));
        Assert.Equal(HttpStatusCode.SeeOther, post.StatusCode);
        Assert.Contains("/site/thanks?name=Ann", Location(post));
    }

    // ---- Django ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task Django_GetIndex_ReturnsHtmlPage()
    {
        using var client = Client(_servers.Django);
        var r = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("text/html", r.Content.Headers.ContentType?.MediaType);
        var html = await r.Content.ReadAsStringAsync();
        Assert.Contains("Hello from Django", html);
        Assert.Contains("href=\"/form/\"", html);
    }

    [Fact]
    public async Task Django_PostFormWithCsrfToken_RedirectsAndShowsName()
    {
        var cookies = new CookieContainer();
        using var client = Client(_servers.Django, cookies);
        var form = await client.GetAsync("/form/");
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        var token = Regex.Match(await form.Content.ReadAsStringAsync(),
            "name=\"csrfmiddlewaretoken\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(token);
        Assert.NotNull(cookies.GetCookies(_servers.Django.BaseUri)["csrftoken"]);

        var post = await client.PostAsync("/form/", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["csrfmiddlewaretoken"] = token, ["name"] = "Zoë Smith" }));
        Assert.Equal(HttpStatusCode.Found, post.StatusCode);
        var location = Location(post);
        Assert.StartsWith("/thanks/?name=Zo", location);

        var thanks = await client.GetAsync(location);
        Assert.Equal(HttpStatusCode.OK, thanks.StatusCode);
        Assert.Contains("Thanks, Zoë Smith!", await thanks.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Django_PostFormWithoutCsrfToken_Returns403()
    {
        using var client = Client(_servers.Django);
        var r = await client.PostAsync("/form/",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "x" }));
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.Contains("CSRF", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Django_GetOldUrl_RedirectsToIndex()
    {
        using var client = Client(_servers.Django);
        var r = await client.GetAsync("/old/");
        Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.Equal("/", Location(r));
    }

    [Fact]
    public async Task Django_GetUnknownPath_Returns404()
    {
        using var client = Client(_servers.Django);
        var r = await client.GetAsync("/no/such/page/");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Contains("Not Found", await r.Content.ReadAsStringAsync());
    }
}
