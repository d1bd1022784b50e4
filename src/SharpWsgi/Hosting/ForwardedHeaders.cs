using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>The client address and scheme from a trusted proxy's headers (--forwarded-allow-ips).</summary>
public sealed class ForwardedHeaders
{
    public ForwardedHeaders(ServerSettings settings) { }

    public void Apply(KestrelExchange exchange) { }
}
