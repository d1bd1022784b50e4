using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>The one request-target parser (environ, static files and the access log all use it).</summary>
public sealed class RequestTargetTests
{
    [Theory]
    [InlineData("/a/b?x=1&y", "/a/b", "x=1&y")]
    [InlineData("/a/b", "/a/b", "")]
    [InlineData("/a?", "/a", "")]
    [InlineData("/a?b?c", "/a", "b?c")]
    [InlineData("/a#frag", "/a", "")]
    [InlineData("/a?q#frag", "/a", "q")]
    [InlineData("http://host:8080/p%20q?x=1", "/p%20q", "x=1")]
    [InlineData("http://host", "/", "")]
    [InlineData("http://host?x=1", "/", "x=1")]
    [InlineData("https://host/?x", "/", "x")]
    [InlineData("host.example:443", "", "")]
    [InlineData("*", "*", "")]
    [InlineData("", "", "")]
    public void Split_EveryForm_PathAndQueryAsCgiReadsThem(string target, string path, string query)
    {
        RequestTarget.Split(target, out var p, out var q);
        Assert.Equal(path, p);
        Assert.Equal(query, q);
        Assert.Equal(path, RequestTarget.RawPath(target).ToString());
        Assert.Equal(query, RequestTarget.Query(target).ToString());
    }

    [Fact]
    public void Split_OriginFormWithoutQuery_ReturnsTheTargetItself()
    {
        var target = "/no/query/here";
        RequestTarget.Split(target, out var path, out _);
        Assert.Same(target, path);
    }

    [Theory]
    [InlineData("/a%20b", "/a b")]
    [InlineData("/a%2Fb", "/a/b")]
    [InlineData("/%E2%82%AC", "/\u00e2\u0082\u00ac")] // bytes as latin-1 code points (PEP 3333)
    [InlineData("/100%", "/100%")]
    [InlineData("/%zz%4", "/%zz%4")]
    [InlineData("/%4a%4A", "/JJ")]
    public void PercentDecode_BytesAsLatin1_MalformedEscapesKept(string raw, string decoded) =>
        Assert.Equal(decoded, RequestTarget.PercentDecode(raw));
}
