using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>The one definition of field syntax (src/SharpWsgi.Http/Syntax/HeaderSyntax.cs) used for the app's
/// header names, Forwarded tokens, request and response values, and request IDs.</summary>
public class HeaderSyntaxTests
{
    [Theory]
    [InlineData("Content-Type", true)]
    [InlineData("x-custom_header.v2~!#$%&'*+^`|", true)]
    [InlineData("", false)]
    [InlineData("Bad Name", false)]
    [InlineData("Bad:Name", false)]
    [InlineData("Bad\"Name", false)]
    [InlineData("Caf\u00e9", false)]
    public void IsToken_Tchar(string name, bool expected) => Assert.Equal(expected, HeaderSyntax.IsToken(name));

    [Fact]
    public void IndexOfControl_EveryCtlButHtab_AndDel()
    {
        for (var c = 0; c < 0x20; c++)
            Assert.Equal(c == '\t' ? -1 : 1, HeaderSyntax.IndexOfControl("a" + (char)c + "b"));
        Assert.Equal(1, HeaderSyntax.IndexOfControl("a\u007fb"));
        Assert.Equal(-1, HeaderSyntax.IndexOfControl("plain value, with \u00e9 obs-text"));
    }

    [Theory]
    [InlineData("abc-123_XYZ", true)]
    [InlineData("has space", false)]
    [InlineData("tab\t", false)]
    [InlineData("caf\u00e9", false)]
    [InlineData("", true)]
    public void IsVisibleAscii(string value, bool expected) =>
        Assert.Equal(expected, HeaderSyntax.IsVisibleAscii(value));
}
