using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>
/// What --compress decides from a response head and the request's Accept-Encoding alone (src/SharpWsgi.Http:
/// CompressionRule, CompressibleTypes, AcceptEncoding.Preferred), and the header edits it relies on (Vary lists,
/// weak ETags). The compressed bytes themselves are in Compression/CompressedBodyTests and Functional/.
/// </summary>
public class CompressionRuleTests
{
    private const long MinimumSize = 1024;
    private static readonly string[] BrAndGzip = ["gzip, deflate, br"];

    private static CompressionCandidate Html(int status = 200, long length = 5000, bool bodyAllowed = true,
        bool live = false, string? type = "text/html; charset=utf-8", string? encoding = null,
        string? cacheControl = null, bool contentRange = false, string protocol = "HTTP/1.1") =>
        new(protocol, status, bodyAllowed, live, length, type, encoding, cacheControl, contentRange);

    [Fact]
    public void Decide_HtmlAboveMinimum_CompressedWithVary() =>
        Assert.Equal(new CompressionChoice(true, "br"), CompressionRule.Decide(Html(), BrAndGzip, MinimumSize));

    [Fact]
    public void Decide_UnknownLength_Compressed() =>
        Assert.Equal("br", CompressionRule.Decide(Html(length: -1), BrAndGzip, MinimumSize).Coding);

    [Fact]
    public void Decide_BelowMinimum_LeftAsIs() =>
        Assert.Equal(CompressionChoice.Leave, CompressionRule.Decide(Html(length: 1023), BrAndGzip, MinimumSize));

    [Theory]
    [InlineData(206)]
    [InlineData(204)]
    [InlineData(205)]
    [InlineData(304)]
    [InlineData(101)]
    public void Decide_RangeOrBodilessStatus_LeftAsIsWithoutVary(int status) =>
        Assert.Equal(CompressionChoice.Leave, CompressionRule.Decide(Html(status), BrAndGzip, MinimumSize));

    [Theory]
    [InlineData(201)]
    [InlineData(404)]
    [InlineData(422)]
    [InlineData(500)]
    public void Decide_OtherStatusesWithABody_Compressed(int status) =>
        Assert.Equal("br", CompressionRule.Decide(Html(status), BrAndGzip, MinimumSize).Coding);

    [Fact]
    public void Decide_AlreadyEncodedOrContentRange_LeftAsIs()
    {
        Assert.Equal(CompressionChoice.Leave, CompressionRule.Decide(Html(encoding: "gzip"), BrAndGzip, MinimumSize));
        Assert.Equal(CompressionChoice.Leave,
            CompressionRule.Decide(Html(contentRange: true), BrAndGzip, MinimumSize));
    }

    [Fact]
    public void Decide_LiveStreamOrNoTransform_LeftAsIs()
    {
        Assert.Equal(CompressionChoice.Leave, CompressionRule.Decide(Html(live: true), BrAndGzip, MinimumSize));
        Assert.Equal(CompressionChoice.Leave,
            CompressionRule.Decide(Html(cacheControl: "private, No-Transform"), BrAndGzip, MinimumSize));
        Assert.Equal("br", CompressionRule.Decide(Html(cacheControl: "private, max-age=60"), BrAndGzip, MinimumSize)
            .Coding);
    }

    [Fact]
    public void Decide_HeadOrHttp10_VaryButNotCompressed()
    {
        Assert.Equal(new CompressionChoice(true, null),
            CompressionRule.Decide(Html(bodyAllowed: false), BrAndGzip, MinimumSize));
        Assert.Equal(new CompressionChoice(true, null),
            CompressionRule.Decide(Html(protocol: "HTTP/1.0"), BrAndGzip, MinimumSize));
    }

    [Fact]
    public void Decide_ClientAcceptsNeither_VaryButNotCompressed()
    {
        Assert.Equal(new CompressionChoice(true, null), CompressionRule.Decide(Html(), [], MinimumSize));
        Assert.Equal(new CompressionChoice(true, null), CompressionRule.Decide(Html(), ["identity"], MinimumSize));
    }

    [Theory]
    [InlineData("text/html", true)]
    [InlineData("text/css; charset=utf-8", true)]
    [InlineData("TEXT/PLAIN", true)]
    [InlineData("application/json", true)]
    [InlineData("application/problem+json", true)]
    [InlineData("application/atom+xml", true)]
    [InlineData("image/svg+xml", true)]
    [InlineData("application/javascript", true)]
    [InlineData("application/wasm", true)]
    [InlineData("text/event-stream", false)]
    [InlineData("image/png", false)]
    [InlineData("font/woff2", false)]
    [InlineData("application/zip", false)]
    [InlineData("application/octet-stream", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void CompressibleTypes_TextAndStructuredTextOnly(string? type, bool expected) =>
        Assert.Equal(expected, CompressibleTypes.Contains(type));

    [Theory]
    [InlineData("gzip, deflate, br", "br")]
    [InlineData("br;q=0.8, gzip", "gzip")]
    [InlineData("gzip;q=0.8, br;q=0.8", "br")] // a tie: br
    [InlineData("gzip", "gzip")]
    [InlineData("br", "br")]
    [InlineData("*", "br")]
    [InlineData("*;q=0.5, gzip", "gzip")]
    [InlineData("gzip;q=0, br;q=0", null)]
    [InlineData("deflate", null)]
    [InlineData("br;q=garbage, gzip", "gzip")]
    public void Preferred_HighestQualityBrOnATie(string header, string? expected) =>
        Assert.Equal(expected, AcceptEncoding.Preferred([header]));

    [Fact]
    public void Preferred_OnlyAmongCodingsOnOffer()
    {
        Assert.Equal("gzip", AcceptEncoding.Preferred(["br, gzip"], brotli: false));
        Assert.Null(AcceptEncoding.Preferred(["br"], brotli: false));
    }

    [Theory]
    [InlineData(null, "Accept-Encoding")]
    [InlineData("", "Accept-Encoding")]
    [InlineData("Cookie", "Cookie, Accept-Encoding")]
    [InlineData("cookie, accept-encoding", "cookie, accept-encoding")]
    [InlineData("*", "*")]
    public void AddToList_AddsVaryTokenOnce(string? vary, string expected) =>
        Assert.Equal(expected, HeaderSyntax.AddToList(vary, "Accept-Encoding"));

    [Fact]
    public void Weaken_StrongTagBecomesWeakWeakStays()
    {
        Assert.Equal("W/\"abc\"", Validators.Weaken("\"abc\""));
        Assert.Equal("W/\"abc\"", Validators.Weaken("W/\"abc\""));
    }
}
