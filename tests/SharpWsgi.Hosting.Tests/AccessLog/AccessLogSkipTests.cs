namespace SharpWsgi.Hosting.Tests.AccessLog;

/// <summary>--access-log-skip's rules: exact paths and trailing-* prefixes, on the decoded path without the query;
/// answers of 400 and above are never skipped.</summary>
public sealed class AccessLogSkipTests
{
    private static readonly AccessLogSkip Skip = AccessLogSkip.From(new[] { "/healthz", "/static/*" })!;

    [Theory]
    [InlineData("/healthz", 200, true)]
    [InlineData("/healthz?verbose=1", 204, true)]
    [InlineData("/health%7A", 200, true)]
    [InlineData("/static/", 304, true)]
    [InlineData("/static/css/app.css", 200, true)]
    [InlineData("http://example.com/healthz", 200, true)]
    [InlineData("/healthz", 503, false)]
    [InlineData("/static/missing.css", 404, false)]
    [InlineData("/healthz/", 200, false)]
    [InlineData("/Healthz", 200, false)]
    [InlineData("/static", 200, false)]
    [InlineData("/staticfile", 200, false)]
    [InlineData("/", 200, false)]
    public void Skips_TargetAndStatus_AsDocumented(string target, int status, bool skipped) =>
        Assert.Equal(skipped, Skip.Skips(target, status));

    [Fact]
    public void From_NoSpecs_NoFilter() => Assert.Null(AccessLogSkip.From(Array.Empty<string>()));

    [Theory]
    [InlineData("/healthz", null)]
    [InlineData("/*", null)]
    [InlineData("healthz", "expected a path starting with /")]
    [InlineData("/a*/b", "only a trailing * is a wildcard")]
    public void Validate_Spec_NullOrWhy(string spec, string? problem)
    {
        var found = AccessLogSkip.Validate(spec);
        if (problem == null) Assert.Null(found);
        else Assert.StartsWith(problem, found);
    }
}
