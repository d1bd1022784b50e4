using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>
/// The client address and scheme from a trusted proxy's headers (--forwarded-allow-ips), applied to a Kestrel
/// request; the rules are <see cref="ForwardedResolver"/>'s. When the client is rewritten, the peer's own address and
/// port stay in the environ as sharpwsgi.proxy_addr and sharpwsgi.proxy_port. The headers themselves always reach
/// the app as HTTP_* keys.
/// </summary>
public sealed partial class ForwardedHeaders
{
    public const string ProxyAddrKey = "sharpwsgi.proxy_addr";
    public const string ProxyPortKey = "sharpwsgi.proxy_port";

    private readonly ForwardedResolver _resolver;
    private readonly ILogger _log;

    public ForwardedHeaders(ServerSettings settings, ILogger? log = null)
    {
        _resolver = new ForwardedResolver(settings.ForwardedAllowIps, settings.SecureSchemeHeaders);
        _log = log ?? NullLogger.Instance;
    }

    /// <summary>The peer may speak for the client (its X-Request-ID is kept too).</summary>
    public bool Trusts(System.Net.IPAddress? peer) => _resolver.Trusts(peer);

    public void Apply(KestrelExchange exchange)
    {
        // Untrusted peers, and trusted ones without these headers, cost a few lookups and no allocation.
        var result = _resolver.Resolve(exchange.PeerAddress, new KestrelHeaders(exchange.KestrelRequestHeaders));
        if (result.Ignored != null) LogIgnored(_log, exchange.RemoteAddress, result.Ignored);
        if (result.ClientAddress != null)
        {
            exchange.AddServerVariable(ProxyAddrKey, exchange.RemoteAddress);
            exchange.AddServerVariable(ProxyPortKey, exchange.RemotePort.ToString());
            exchange.SetClient(result.ClientAddress, result.ClientPort);
        }
        if (result.Scheme != null) exchange.SetScheme(result.Scheme);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Forwarded headers from {Peer}: {Reason}; not used")]
    private static partial void LogIgnored(ILogger log, string peer, string reason);

    /// <summary>A struct, so the resolver's generic call neither boxes nor allocates.</summary>
    private readonly struct KestrelHeaders(IHeaderDictionary headers) : IForwardedHeaderSource
    {
        // One line is returned as is; several are joined with "," (allocating only then).
        public string? Get(string name) =>
            headers.TryGetValue(name, out var values) && values.Count > 0 ? values.ToString() : null;
    }
}
