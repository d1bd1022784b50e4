using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting.Tests.Server;

/// <summary>What a listener speaks, decided once from the settings and its scheme (ListenerFacts, ListenerScheme).
/// </summary>
public sealed class ListenerFactsTests
{
    private static ServerSettings Settings(params string[] flags) =>
        ServerSettings.Parse(["app:app", .. flags], new Dictionary<string, string?>());

    [Fact]
    public void For_Defaults_CleartextWithH2cAndNoProxyNoSendfile()
    {
        var facts = ListenerFacts.For(Settings(), tls: false);

        Assert.Equal(new ListenerFacts(false, Http2Mode.CleartextPreface, ProxyProtocolMode.Off, false), facts);
    }

    [Theory]
    [InlineData(true, "on", Http2Mode.Alpn)]
    [InlineData(false, "on", Http2Mode.CleartextPreface)]
    [InlineData(true, "off", Http2Mode.Off)]
    [InlineData(false, "off", Http2Mode.Off)]
    public void For_Http2_ByAlpnOnTlsAndByPrefaceOnCleartext(bool tls, string http2, Http2Mode expected)
    {
        var facts = ListenerFacts.For(Settings("--http2", http2), tls);

        Assert.Equal(expected, facts.Http2);
        Assert.Equal(expected == Http2Mode.Off ? Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1
            : Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2, facts.Protocols);
    }

    [Theory]
    [InlineData("off", ProxyProtocolMode.Off)]
    [InlineData("on", ProxyProtocolMode.Required)]
    [InlineData("ON", ProxyProtocolMode.Required)]
    [InlineData("optional", ProxyProtocolMode.Optional)]
    public void For_ProxyProtocol_FromTheSetting(string value, ProxyProtocolMode expected) =>
        Assert.Equal(expected, ListenerFacts.For(Settings("--proxy-protocol", value), tls: false).ProxyProtocol);

    [Fact]
    public void For_Sendfile_OnlyOnCleartextWithStaticFilesAndNotTurnedOff()
    {
        var dir = Path.GetTempPath();
        Assert.True(ListenerFacts.For(Settings("--static", $"/s/={dir}"), tls: false).Sendfile);
        Assert.False(ListenerFacts.For(Settings("--static", $"/s/={dir}"), tls: true).Sendfile);
        Assert.False(ListenerFacts.For(Settings("--static", $"/s/={dir}", "--no-sendfile"), tls: false).Sendfile);
        Assert.False(ListenerFacts.For(Settings(), tls: false).Sendfile);
    }

    [Theory]
    [InlineData("https://127.0.0.1:8443/", true, "127.0.0.1:8443", true)]
    [InlineData("HTTPS://127.0.0.1:8443", true, "127.0.0.1:8443", true)]
    [InlineData("http://127.0.0.1:8000/", true, "127.0.0.1:8000", false)]
    [InlineData("127.0.0.1:8000", true, "127.0.0.1:8000", true)]
    [InlineData("127.0.0.1:8000", false, "127.0.0.1:8000", false)]
    public void OfBind_GunicornsRule(string bind, bool certificate, string address, bool tls)
    {
        var settings = certificate ? Settings("--certfile", "/nonexistent/cert.pem") : Settings();

        Assert.Equal((address, tls), ListenerScheme.OfBind(bind, settings));
    }

    [Fact]
    public void OfBind_HttpsWithoutCertificate_IsAStartupError()
    {
        var error = Assert.Throws<StartupException>(() => ListenerScheme.OfBind("https://0.0.0.0:443", Settings()));
        Assert.Contains("--certfile", error.Message);
    }

    [Theory]
    [InlineData(true, true, true)]
    [InlineData(false, true, false)]
    [InlineData(true, false, false)]
    public void OfInherited_TlsForTcpWithACertificate(bool tcp, bool certificate, bool tls)
    {
        var settings = certificate ? Settings("--certfile", "/nonexistent/cert.pem") : Settings();

        Assert.Equal(tls, ListenerScheme.OfInherited(tcp, settings));
    }

    [Theory]
    [InlineData("127.0.0.1:8000", false)]
    [InlineData("[::1]:8443", true)]
    public void ReusePortAddress_RoundTripsFromSupervisorToWorker(string address, bool tls) =>
        Assert.Equal((address, tls), ListenerScheme.FromSupervisor(ListenerScheme.ForWorker(address, tls)));
}
