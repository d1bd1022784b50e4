using Microsoft.AspNetCore.Server.Kestrel.Core;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>gunicorn's request limits and the checks stricter than Kestrel's, before the app runs.</summary>
public sealed class RequestLimits
{
    public RequestLimits(ServerSettings settings) { }

    /// <summary>Kestrel's own limits, set so that ours are met first.</summary>
    public static void Configure(KestrelServerOptions options, ServerSettings settings) { }

    /// <summary>Null when the request may run, else the status and why.</summary>
    public (int Status, string Reason)? Check(KestrelExchange exchange) => null;
}
