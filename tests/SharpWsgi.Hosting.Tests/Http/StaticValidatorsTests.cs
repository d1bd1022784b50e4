using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>What --static decides from a request's headers alone (src/SharpWsgi.Http/Static): the byte range,
/// conditional requests and Accept-Encoding. The files themselves are in Functional/StaticFilesTests.</summary>
public class StaticValidatorsTests
{
    private const string ETag = "\"1f-5f5e100\"";
    private static readonly DateTimeOffset Modified = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
    private static string[] Values(params string[] values) => values;

    [Theory]
    [InlineData("bytes=0-9", 100, ByteRangeResult.Satisfiable, 0, 9)]
    [InlineData("bytes=90-", 100, ByteRangeResult.Satisfiable, 90, 99)]
    [InlineData("bytes=-10", 100, ByteRangeResult.Satisfiable, 90, 99)]
    [InlineData("bytes=-1000", 100, ByteRangeResult.Satisfiable, 0, 99)]
    [InlineData("bytes=50-1000", 100, ByteRangeResult.Satisfiable, 50, 99)]
    [InlineData("BYTES=1-2", 100, ByteRangeResult.Satisfiable, 1, 2)]
    [InlineData("bytes=100-", 100, ByteRangeResult.Unsatisfiable, 0, 0)]
    [InlineData("bytes=-0", 100, ByteRangeResult.Unsatisfiable, 0, 0)]
    [InlineData("bytes=99999999999999999999-", 100, ByteRangeResult.Unsatisfiable, 0, 0)]
    [InlineData("bytes=0-1,5-6", 100, ByteRangeResult.Ignore, 0, 0)] // several ranges: the whole file
    [InlineData("bytes=9-1", 100, ByteRangeResult.Ignore, 0, 0)]
    [InlineData("bytes=a-b", 100, ByteRangeResult.Ignore, 0, 0)]
    [InlineData("bytes=-", 100, ByteRangeResult.Ignore, 0, 0)]
    [InlineData("items=0-1", 100, ByteRangeResult.Ignore, 0, 0)]
    public void ByteRange_Header_GivesTheRangeOrTheWholeFile(string header, long length, ByteRangeResult expected,
        long first, long last)
    {
        var result = ByteRange.Parse(header, length, out var f, out var l);
        Assert.Equal(expected, result);
        if (result == ByteRangeResult.Satisfiable) Assert.Equal((first, last), (f, l));
    }

    [Fact]
    public void NotModified_IfNoneMatchDecidesWhenPresent_WeakComparison()
    {
        var after = Values(Modified.AddDays(1).ToString("R"));
        Assert.True(Validators.NotModified(Values("\"x\", " + ETag), [], ETag, Modified));
        Assert.True(Validators.NotModified(Values("W/" + ETag), [], ETag, Modified));
        Assert.True(Validators.NotModified(Values("*"), [], ETag, Modified));
        // A tag that does not match wins over a date that would.
        Assert.False(Validators.NotModified(Values("\"other\""), after, ETag, Modified));
    }

    [Fact]
    public void NotModified_IfModifiedSinceAlone_ComparesDates()
    {
        Assert.True(Validators.NotModified([], Values(Modified.ToString("R")), ETag, Modified));
        Assert.False(Validators.NotModified([], Values(Modified.AddSeconds(-1).ToString("R")), ETag, Modified));
        Assert.False(Validators.NotModified([], Values("yesterday"), ETag, Modified));
        Assert.False(Validators.NotModified([], [], ETag, Modified));
    }

    [Fact]
    public void IfRange_StrongTagOrExactDate_ElseTheWholeFile()
    {
        Assert.True(Validators.IfRangeHolds([], ETag, Modified));
        Assert.True(Validators.IfRangeHolds(Values(ETag), ETag, Modified));
        Assert.False(Validators.IfRangeHolds(Values("W/" + ETag), ETag, Modified)); // weak tags never match here
        Assert.True(Validators.IfRangeHolds(Values(Modified.ToString("R")), ETag, Modified));
        Assert.False(Validators.IfRangeHolds(Values(Modified.AddSeconds(1).ToString("R")), ETag, Modified));
    }

    [Theory]
    [InlineData("gzip, br", "br", true)]
    [InlineData("gzip;q=0.5, br;q=0", "br", false)]
    [InlineData("*", "gzip", true)]
    [InlineData("*;q=0, gzip", "gzip", true)]
    [InlineData("*;q=0", "br", false)]
    [InlineData("identity", "gzip", false)]
    [InlineData("GZIP;Q=1", "gzip", true)]
    public void AcceptEncoding_CodingAcceptableUnlessAbsentOrQZero(string header, string coding, bool expected) =>
        Assert.Equal(expected, AcceptEncoding.Accepts(Values(header), coding));
}
