namespace SharpWsgi.Hosting.Tests.Process;

/// <summary>SHARPWSGI_UPGRADE_FDS items: what an old supervisor writes, a new one reads back; anything else is
/// refused.</summary>
public sealed class HandedDownSocketTests
{
    [Theory]
    [InlineData(3, false, false, false, "3")]
    [InlineData(4, true, false, false, "4:t")]
    [InlineData(5, false, true, false, "5:u")]
    [InlineData(17, true, false, true, "17:tr")]
    public void FormatThenParse_RoundTrips(int fd, bool tls, bool unlink, bool holder, string text)
    {
        var socket = new HandedDownSocket(fd, tls, unlink, holder);
        Assert.Equal(text, socket.ToString());
        Assert.Equal(socket, HandedDownSocket.Parse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("x")]
    [InlineData("-1")]
    [InlineData("3:q")]
    [InlineData("3;t")]
    public void Parse_Malformed_Null(string text) => Assert.Null(HandedDownSocket.Parse(text));
}
