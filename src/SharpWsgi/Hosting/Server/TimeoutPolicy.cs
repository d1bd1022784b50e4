using Microsoft.AspNetCore.Server.Kestrel.Core;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>
/// The timeout settings (seconds, 0 or more as the registry checks them) turned once into what Kestrel and the edge
/// take. Every floor is here, each with its reason; nothing else converts these settings.
/// </summary>
public sealed class TimeoutPolicy
{
    /// <summary>Kestrel refuses a zero keep-alive or head timeout (it wants a positive span), so "0 seconds" is one
    /// millisecond: as good as none, as the setting asked.</summary>
    internal static readonly TimeSpan Shortest = TimeSpan.FromMilliseconds(1);

    /// <summary>Kestrel checks data rates on its one-second heartbeat and refuses a grace period not above it.
    /// The CLI refuses --min-rate-grace 1 or less while a rate is on (Program.CheckSettings); the floor keeps
    /// Kestrel from throwing on a value that reaches here another way.</summary>
    internal static readonly TimeSpan ShortestRateGrace = TimeSpan.FromSeconds(1.001);

    /// <summary>A TLS handshake is two round trips and a key exchange: a sub-second --header-timeout is meant for
    /// the request head, not for failing TLS clients on a slow link.</summary>
    internal static readonly TimeSpan ShortestTlsHandshake = TimeSpan.FromSeconds(1);

    public TimeoutPolicy(ServerSettings settings)
    {
        RequestHead = AtLeast(settings.HeaderTimeout, Shortest);
        TlsHandshake = AtLeast(settings.HeaderTimeout, ShortestTlsHandshake);
        KeepAlive = AtLeast(settings.KeepAliveSeconds, Shortest);
        RateGrace = AtLeast(settings.MinRateGrace, ShortestRateGrace);
        MinUploadRate = settings.MinUploadRate > 0 ? new MinDataRate(settings.MinUploadRate, RateGrace) : null;
        MinDownloadRate = settings.MinDownloadRate > 0 ? new MinDataRate(settings.MinDownloadRate, RateGrace) : null;
        BodyIdle = AtLeast(settings.SendTimeout, TimeSpan.Zero);
        // The watchdog keeps seconds and reads 0 as "off" for each rule itself (DeliveryLimits.Enforced).
        Delivery = new DeliveryLimits(settings.SendTimeout, settings.MinDownloadRate, settings.MinRateGrace);
    }

    /// <summary>--header-timeout for the request head (Kestrel's RequestHeadersTimeout), for a PROXY header, and for
    /// the first bytes h2c sniffing waits for.</summary>
    public TimeSpan RequestHead { get; }

    /// <summary>--header-timeout for the TLS handshake (Kestrel's HandshakeTimeout), at least a second.</summary>
    public TimeSpan TlsHandshake { get; }

    /// <summary>--keep-alive: how long an idle connection waits for its next request (Kestrel's KeepAliveTimeout).
    /// </summary>
    public TimeSpan KeepAlive { get; }

    /// <summary>--min-rate-grace as Kestrel's data rates and the sendfile path's per-piece deadline take it.</summary>
    public TimeSpan RateGrace { get; }

    /// <summary>--min-upload-rate as Kestrel's MinRequestBodyDataRate; null when off.</summary>
    public MinDataRate? MinUploadRate { get; }

    /// <summary>--min-download-rate as Kestrel's MinResponseDataRate (a backstop: it counts bytes written into
    /// Kestrel's buffer, not bytes the client took; the delivery watchdog bounds those); null when off.</summary>
    public MinDataRate? MinDownloadRate { get; }

    /// <summary>--send-timeout the other way round: a body read ahead that gets no byte for this long is a 408
    /// (zero: no limit).</summary>
    public TimeSpan BodyIdle { get; }

    /// <summary>--send-timeout, --min-download-rate and --min-rate-grace as the delivery watchdog's rules.</summary>
    public DeliveryLimits Delivery { get; }

    private static TimeSpan AtLeast(double seconds, TimeSpan floor)
    {
        var span = TimeSpan.FromSeconds(seconds);
        return span > floor ? span : floor;
    }
}
