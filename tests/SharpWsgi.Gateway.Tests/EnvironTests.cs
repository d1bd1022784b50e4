using SharpWsgi.Gateway.Tests.Infrastructure;

namespace SharpWsgi.Gateway.Tests;

/// <summary>The environ an app receives (EnvironBuilder through RequestRunner), values as Python's ascii().</summary>
[Collection(GatewayCollection.Name)]
public sealed class EnvironTests
{
    /// <summary>Answers with one "KEY=ascii(value)" line per environ key.</summary>
    private const string DumpApp = """
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join('%s=%s' % (k, ascii(v)) for k, v in sorted(environ.items())).encode()]
""";

    private static Dictionary<string, string> EnvironOf(FakeExchange x, WsgiOptions? options = null)
    {
        TestApp.Serve(DumpApp, x, options: options);
        Assert.Equal(ExchangeResult.Completed, x.Result);
        return x.BodyText().Split('\n').Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
    }

    [Fact]
    public void Build_PlainGet_HasTheCgiKeys()
    {
        var env = EnvironOf(new FakeExchange("GET", "/hello?x=1").Header("Host", "example.com:8080"));
        Assert.Equal("'GET'", env["REQUEST_METHOD"]);
        Assert.Equal("''", env["SCRIPT_NAME"]);
        Assert.Equal("'/hello'", env["PATH_INFO"]);
        Assert.Equal("'x=1'", env["QUERY_STRING"]);
        Assert.Equal("'HTTP/1.1'", env["SERVER_PROTOCOL"]);
        Assert.Equal("'192.0.2.7'", env["REMOTE_ADDR"]);
        Assert.Equal("'50123'", env["REMOTE_PORT"]);
        Assert.Equal("'example.com'", env["SERVER_NAME"]);
        Assert.Equal("'8080'", env["SERVER_PORT"]);
        Assert.Equal("'/hello?x=1'", env["RAW_URI"]);
        Assert.Equal("'/hello?x=1'", env["REQUEST_URI"]);
        Assert.Equal("'CGI/1.1'", env["GATEWAY_INTERFACE"]);
        Assert.Equal("'sharpwsgi'", env["SERVER_SOFTWARE"]);
        Assert.Equal("'example.com:8080'", env["HTTP_HOST"]);
    }

    [Fact]
    public void Build_AnyRequest_HasTheWsgiKeys()
    {
        var env = EnvironOf(new FakeExchange(), new WsgiOptions { Threads = 4, Multiprocess = true });
        Assert.Equal("(1, 0)", env["wsgi.version"]);
        Assert.Equal("'http'", env["wsgi.url_scheme"]);
        Assert.Equal("True", env["wsgi.multithread"]);
        Assert.Equal("True", env["wsgi.multiprocess"]);
        Assert.Equal("False", env["wsgi.run_once"]);
        Assert.Equal("True", env["wsgi.input_terminated"]);
        Assert.StartsWith("<sharpwsgi.Input object", env["wsgi.input"]);
        Assert.StartsWith("<sharpwsgi.Errors object", env["wsgi.errors"]);
        Assert.StartsWith("<sharpwsgi.FileWrapperFactory object", env["wsgi.file_wrapper"]);
    }

    [Fact]
    public void Build_SingleThreadHttps_SchemeAndFlagsFollow()
    {
        var x = new FakeExchange { SchemeValue = "https", ProtocolValue = "HTTP/2" }.Header("Host", "example.com");
        var env = EnvironOf(x, new WsgiOptions { Threads = 1 });
        Assert.Equal("'https'", env["wsgi.url_scheme"]);
        Assert.Equal("'HTTP/2'", env["SERVER_PROTOCOL"]);
        Assert.Equal("False", env["wsgi.multithread"]);
        Assert.Equal("False", env["wsgi.multiprocess"]);
        Assert.Equal("'443'", env["SERVER_PORT"]);
    }

    [Fact]
    public void Build_MultiprocessProbeChanges_EnvironFollowsIt()
    {
        var multi = false;
        var options = new WsgiOptions { MultiprocessProbe = () => multi };
        var values = OnPython.Run(() =>
        {
            using var app = new TestApp("""
seen = []
def app(environ, start_response):
    seen.append(environ['wsgi.multiprocess'])
    start_response('200 OK', [])
    return []
""", options);
            app.Run(new FakeExchange());
            multi = true;
            app.Run(new FakeExchange());
            return app.Eval("seen");
        });
        Assert.Equal("[False, True]", values);
    }

    [Fact]
    public void Build_PercentEncodedPath_DecodedAsLatin1IncludingSlash()
    {
        var env = EnvironOf(new FakeExchange("GET", "/caf%C3%A9/a%2Fb%20c?q=%2F%20"));
        Assert.Equal("'/caf\\xc3\\xa9/a/b c'", env["PATH_INFO"]);
        Assert.Equal("'q=%2F%20'", env["QUERY_STRING"]);
        Assert.Equal("'/caf%C3%A9/a%2Fb%20c?q=%2F%20'", env["RAW_URI"]);
    }

    [Fact]
    public void Build_MalformedPercent_KeptLiterally()
    {
        var env = EnvironOf(new FakeExchange("GET", "/a%zzb%4"));
        Assert.Equal("'/a%zzb%4'", env["PATH_INFO"]);
    }

    [Fact]
    public void Build_NoQuery_QueryStringEmptyAndFragmentDropped()
    {
        var env = EnvironOf(new FakeExchange("GET", "/page#frag"));
        Assert.Equal("'/page'", env["PATH_INFO"]);
        Assert.Equal("''", env["QUERY_STRING"]);
    }

    [Fact]
    public void Build_AbsoluteFormTarget_PathAndQueryFromIt()
    {
        var env = EnvironOf(new FakeExchange("GET", "http://example.com/x/y?z=1"));
        Assert.Equal("'/x/y'", env["PATH_INFO"]);
        Assert.Equal("'z=1'", env["QUERY_STRING"]);
    }

    [Fact]
    public void Build_NoBodyHeaders_NoContentTypeOrLength()
    {
        var env = EnvironOf(new FakeExchange("GET", "/"));
        Assert.False(env.ContainsKey("CONTENT_TYPE"));
        Assert.False(env.ContainsKey("CONTENT_LENGTH"));
        Assert.False(env.ContainsKey("HTTP_CONTENT_TYPE"));
    }

    [Fact]
    public void Build_BodyHeaders_ContentTypeAndLengthWithoutHttpPrefix()
    {
        var x = new FakeExchange("POST", "/").Header("Content-Type", "text/plain; charset=utf-8")
            .Header("Content-Length", "5").Body("hello");
        var env = EnvironOf(x);
        Assert.Equal("'text/plain; charset=utf-8'", env["CONTENT_TYPE"]);
        Assert.Equal("'5'", env["CONTENT_LENGTH"]);
        Assert.False(env.ContainsKey("HTTP_CONTENT_TYPE"));
        Assert.False(env.ContainsKey("HTTP_CONTENT_LENGTH"));
    }

    [Fact]
    public void Build_RequestHeaders_BecomeHttpKeysAndUnderscoreNamesAreDropped()
    {
        var x = new FakeExchange().Header("X-Auth-User", "alice").Header("X_Auth_User", "mallory")
            .Header("accept-LANGUAGE", "en").Header("Cookie", "a=1; b=2").Header(":authority", "ignored")
            .Header("X-Latin", "caf\u00e9");
        var env = EnvironOf(x);
        Assert.Equal("'alice'", env["HTTP_X_AUTH_USER"]);
        Assert.Equal("'en'", env["HTTP_ACCEPT_LANGUAGE"]);
        Assert.Equal("'a=1; b=2'", env["HTTP_COOKIE"]);
        Assert.Equal("'caf\\xe9'", env["HTTP_X_LATIN"]);
        Assert.DoesNotContain(env.Keys, k => k.Contains("authority", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("Dropped request header with underscore: X_Auth_User", TestApp.Log.Matching("X_Auth_User"));
    }

    [Theory]
    [InlineData("example.com", "'example.com'", "'80'")]
    [InlineData("example.com:81", "'example.com'", "'81'")]
    [InlineData("[::1]:9000", "'[::1]'", "'9000'")]
    [InlineData("[::1]", "'[::1]'", "'80'")]
    public void Build_HostHeader_GivesServerNameAndPort(string host, string name, string port)
    {
        var env = EnvironOf(new FakeExchange().Header("Host", host));
        Assert.Equal(name, env["SERVER_NAME"]);
        Assert.Equal(port, env["SERVER_PORT"]);
    }

    [Fact]
    public void Build_NoHostHeader_ServerNameAndPortFromTheLocalAddress()
    {
        var env = EnvironOf(new FakeExchange { ProtocolValue = "HTTP/1.0" });
        Assert.Equal("'127.0.0.1'", env["SERVER_NAME"]);
        Assert.Equal("'8000'", env["SERVER_PORT"]);
        Assert.False(env.ContainsKey("HTTP_HOST"));
    }

    [Theory]
    [InlineData("/app/x/y", "'/app'", "'/x/y'")]
    [InlineData("/app", "'/app'", "''")]
    [InlineData("/application", "'/app'", "'/application'")]
    [InlineData("/other", "'/app'", "'/other'")]
    public void Build_RootPath_ScriptNameAndPathInfoSplit(string target, string scriptName, string pathInfo)
    {
        var env = EnvironOf(new FakeExchange("GET", target), new WsgiOptions { RootPath = "/app/" });
        Assert.Equal(scriptName, env["SCRIPT_NAME"]);
        Assert.Equal(pathInfo, env["PATH_INFO"]);
    }

    [Fact]
    public void Build_EachRequest_GetsAFreshEnvironCopy()
    {
        var shown = OnPython.Run(() =>
        {
            using var app = new TestApp("""
seen = []
def app(environ, start_response):
    seen.append(environ.get('mine'))
    environ['mine'] = 'set by the first request'
    environ['SCRIPT_NAME'] = 'changed'
    start_response('200 OK', [])
    return [environ['SCRIPT_NAME'].encode()]
""");
            app.Run(new FakeExchange());
            var second = new FakeExchange();
            app.Run(second);
            return app.Eval("seen") + " " + second.BodyText();
        });
        Assert.Equal("[None, None] changed", shown);
    }
}
