using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>
/// What the host does with an app's head as the gateway commits it (on the Python thread, before any body byte),
/// beyond the policy every head gets (<see cref="KestrelExchange.ApplyHeadPolicy"/>): a head that names a file
/// (X-Accel-Redirect, X-Sendfile) has its body dropped and the file sent in its place once the app is done; any other
/// may be compressed on the fly. The gateway learns only whether its body is wanted; the host finishes the rest on
/// Kestrel's thread (<see cref="WsgiHttpApplication"/>).
/// </summary>
public sealed class AppHeadPolicy
{
    private AppHeadPolicy(FileRedirects? redirects, ResponseCompression? compression)
    {
        Redirects = redirects;
        Compression = compression;
    }

    public FileRedirects? Redirects { get; }
    public ResponseCompression? Compression { get; }

    /// <summary>Null when no setting asks for anything: the exchange then commits heads as before, at no cost.
    /// </summary>
    public static AppHeadPolicy? Create(ServerSettings settings, ILoggerFactory loggers)
    {
        var redirects = FileRedirects.Create(settings, loggers.CreateLogger("sharpwsgi.static"));
        var compression = ResponseCompression.Create(settings);
        return redirects == null && compression == null ? null : new AppHeadPolicy(redirects, compression);
    }

    internal BodyDisposition Commit(KestrelExchange exchange, in ResponseHead head)
    {
        if (Redirects?.Find(exchange.Response.Headers) is { } redirect)
        {
            exchange.Redirect = redirect;
            return BodyDisposition.Discard;
        }
        Compression?.Commit(exchange, head);
        return BodyDisposition.Send;
    }
}
