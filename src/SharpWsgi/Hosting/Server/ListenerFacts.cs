using Microsoft.AspNetCore.Server.Kestrel.Core;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>How a listener offers HTTP/2.</summary>
public enum Http2Mode
{
    /// <summary>HTTP/1.x only (--http2 off).</summary>
    Off,
    /// <summary>h2 chosen by ALPN in the TLS handshake.</summary>
    Alpn,
    /// <summary>h2c with prior knowledge next to HTTP/1.1 on a cleartext port, told apart by the connection preface
    /// (<see cref="CleartextHttp2"/>).</summary>
    CleartextPreface,
}

/// <summary>Whether connections start with a PROXY protocol header (--proxy-protocol).</summary>
public enum ProxyProtocolMode { Off, Optional, Required }

/// <summary>
/// What one listener speaks, decided once from the settings and the listener's scheme (gunicorn's cfg.is_ssl idea):
/// the edge chain is built from these, and nothing else asks the settings again. A per-request question ("did this
/// connection do a TLS handshake") is the connection's own fact (<see cref="KestrelExchange.IsTls"/>).
/// </summary>
public sealed record ListenerFacts(bool Tls, Http2Mode Http2, ProxyProtocolMode ProxyProtocol, bool Sendfile)
{
    /// <param name="tls">The listener's scheme, as <see cref="ListenerScheme"/> decided it.</param>
    public static ListenerFacts For(ServerSettings settings, bool tls) => new(
        tls,
        !settings.Http2 ? Http2Mode.Off : tls ? Http2Mode.Alpn : Http2Mode.CleartextPreface,
        settings.ProxyProtocol switch
        {
            "on" => ProxyProtocolMode.Required,
            "optional" => ProxyProtocolMode.Optional,
            _ => ProxyProtocolMode.Off,
        },
        // Only where a file the server sends can use it (--static, --internal, --x-sendfile-root), and not under TLS
        // (those bytes must be encrypted): otherwise every connection keeps Kestrel's own sender.
        !tls && settings.Sendfile && settings.ServesFiles);

    /// <summary>The protocols Kestrel is told the listener has.</summary>
    public HttpProtocols Protocols => Http2 == Http2Mode.Off ? HttpProtocols.Http1 : HttpProtocols.Http1AndHttp2;
}

/// <summary>A listening descriptor handed down by the supervisor, and whether it speaks TLS.</summary>
public readonly record struct InheritedListener(int Fd, bool Tls);

/// <summary>
/// The one rule for whether a listener speaks TLS, used by the supervisor when it opens or inherits sockets and by
/// the worker for the --reuse-port addresses it is handed ("https://" in front of one that speaks TLS).
/// </summary>
public static class ListenerScheme
{
    private const string Https = "https://", Http = "http://";

    /// <summary>
    /// A TCP --bind: https:// always speaks TLS (it needs --certfile), http:// never, a bare HOST:PORT when --certfile
    /// is given (gunicorn's rule). Returns the address without its scheme.
    /// </summary>
    public static (string Address, bool Tls) OfBind(string bind, ServerSettings settings)
    {
        if (bind.StartsWith(Https, StringComparison.OrdinalIgnoreCase))
        {
            if (settings.CertFile == null)
                throw new StartupException($"--bind {bind}: an https:// bind needs a certificate (--certfile and " +
                    "--keyfile).");
            return (bind[Https.Length..].TrimEnd('/'), true);
        }
        if (bind.StartsWith(Http, StringComparison.OrdinalIgnoreCase))
            return (bind[Http.Length..].TrimEnd('/'), false);
        return (bind, settings.CertFile != null);
    }

    /// <summary>A descriptor inherited from systemd or fd://N: TLS when --certfile is given and it is TCP (a unix
    /// socket has a local proxy in front, which speaks cleartext).</summary>
    public static bool OfInherited(bool tcp, ServerSettings settings) => tcp && settings.CertFile != null;

    /// <summary>How the supervisor hands a --reuse-port address to its workers.</summary>
    public static string ForWorker(string address, bool tls) => tls ? Https + address : address;

    /// <summary>A --reuse-port address as <see cref="ForWorker"/> wrote it.</summary>
    public static (string Address, bool Tls) FromSupervisor(string handed) =>
        handed.StartsWith(Https, StringComparison.Ordinal) ? (handed[Https.Length..], true) : (handed, false);
}
