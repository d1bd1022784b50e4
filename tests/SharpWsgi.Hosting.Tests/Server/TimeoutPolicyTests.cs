using SharpWsgi.Configuration;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Server;

/// <summary>The timeout settings as Kestrel and the edge take them, floors included (TimeoutPolicy).</summary>
public sealed class TimeoutPolicyTests
{
    private static TimeoutPolicy Policy(params string[] flags) =>
        new(ServerSettings.Parse(["app:app", .. flags], new Dictionary<string, string?>()));

    [Fact]
    public void Defaults_AreTheSettingsInSeconds()
    {
        var policy = Policy();

        Assert.Equal(TimeSpan.FromSeconds(30), policy.RequestHead);
        Assert.Equal(TimeSpan.FromSeconds(30), policy.TlsHandshake);
        Assert.Equal(TimeSpan.FromSeconds(5), policy.KeepAlive);
        Assert.Equal(TimeSpan.FromSeconds(5), policy.RateGrace);
        Assert.Equal(TimeSpan.FromSeconds(30), policy.BodyIdle);
        Assert.Equal(240, policy.MinDownloadRate!.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(5), policy.MinDownloadRate.GracePeriod);
        Assert.Equal(new DeliveryLimits(30, 240, 5), policy.Delivery);
    }

    [Fact]
    public void TinyHeadAndZeroKeepAlive_BecomeOneMillisecond_KestrelWantsAPositiveSpan()
    {
        var policy = Policy("--header-timeout", "0.0001", "--keep-alive", "0");

        Assert.Equal(TimeSpan.FromMilliseconds(1), policy.RequestHead);
        Assert.Equal(TimeSpan.FromMilliseconds(1), policy.KeepAlive);
    }

    [Fact]
    public void ZeroHeaderTimeout_Refused_ASlowlorisWouldHoldConnectionsForever()
    {
        var e = Assert.Throws<UsageException>(() => Policy("--header-timeout", "0"));
        Assert.Contains("above 0", e.Message);
    }

    [Fact]
    public void ShortHeaderTimeout_LeavesTheTlsHandshakeASecond()
    {
        var policy = Policy("--header-timeout", "0.25");

        Assert.Equal(TimeSpan.FromSeconds(0.25), policy.RequestHead);
        Assert.Equal(TimeSpan.FromSeconds(1), policy.TlsHandshake);
    }

    [Fact]
    public void RateGraceOfASecondOrLess_IsJustOverASecond_AsKestrelsDataRatesNeed()
    {
        var policy = Policy("--min-rate-grace", "1", "--min-upload-rate", "100");

        Assert.Equal(TimeSpan.FromSeconds(1.001), policy.RateGrace);
        Assert.Equal(TimeSpan.FromSeconds(1.001), policy.MinUploadRate!.GracePeriod);
    }

    [Fact]
    public void RatesOff_NoKestrelDataRates()
    {
        var policy = Policy("--min-upload-rate", "0", "--min-download-rate", "0");

        Assert.Null(policy.MinUploadRate);
        Assert.Null(policy.MinDownloadRate);
    }

    [Fact]
    public void SendTimeoutZero_NoBodyIdleLimit()
    {
        var policy = Policy("--send-timeout", "0");

        Assert.Equal(TimeSpan.Zero, policy.BodyIdle);
        Assert.Equal(0, policy.Delivery.SendTimeout);
    }
}
