using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting;

/// <summary>
/// TLS as the settings ask for it: the certificate pair (read once per process, so a SIGHUP's new workers take a
/// renewed pair while old connections finish on the old one), client certificates (mTLS), protocol versions and
/// cipher suites. Every problem with the files is a <see cref="StartupException"/> of one paragraph, raised by the
/// supervisor before any worker starts.
/// </summary>
public sealed class TlsSetup
{
    private readonly X509Certificate2 _certificate;
    private readonly X509Certificate2Collection _chain;
    private readonly X509Certificate2Collection? _clientAuthorities;
    private readonly ClientCertificateMode _clientMode;
    private readonly SslProtocols _protocols;
    private readonly CipherSuitesPolicy? _ciphers;

    private TlsSetup(X509Certificate2 certificate, X509Certificate2Collection chain,
        X509Certificate2Collection? clientAuthorities, ClientCertificateMode clientMode, SslProtocols protocols,
        CipherSuitesPolicy? ciphers)
    {
        _certificate = certificate;
        _chain = chain;
        _clientAuthorities = clientAuthorities;
        _clientMode = clientMode;
        _protocols = protocols;
        _ciphers = ciphers;
    }

    public X509Certificate2 Certificate => _certificate;

    /// <summary>Null when TLS is not configured (no --certfile).</summary>
    public static TlsSetup? Load(ServerSettings settings)
    {
        if (settings.CertFile == null)
        {
            foreach (var (name, value) in new[] { ("keyfile", settings.KeyFile), ("ca-certs", settings.CaCerts),
                         ("keyfile-password-file", settings.KeyFilePasswordFile) })
                if (value != null) throw new StartupException($"--{name} is given but --certfile is not: TLS needs " +
                    "a certificate (--certfile) for its key and client CAs to mean anything.");
            if (settings.CertReqs != "none")
                throw new StartupException(
                    $"--cert-reqs {settings.CertReqs} needs TLS: give --certfile and --keyfile.");
            return null;
        }
        var certPath = ReadablePath("--certfile", settings.CertFile);
        var keyPath = settings.KeyFile != null ? ReadablePath("--keyfile", settings.KeyFile) : certPath;
        var (certificate, chain) = LoadPair(certPath, keyPath, settings.KeyFilePasswordFile);

        X509Certificate2Collection? authorities = null;
        var mode = settings.CertReqs switch
        {
            "optional" => ClientCertificateMode.AllowCertificate,
            "required" => ClientCertificateMode.RequireCertificate,
            _ => ClientCertificateMode.NoCertificate,
        };
        if (settings.CaCerts != null)
        {
            var caPath = ReadablePath("--ca-certs", settings.CaCerts);
            authorities = new X509Certificate2Collection();
            try { authorities.ImportFromPemFile(caPath); }
            catch (CryptographicException e)
            {
                throw new StartupException($"--ca-certs {caPath}: not a PEM certificate file ({e.Message}).");
            }
            if (authorities.Count == 0)
                throw new StartupException($"--ca-certs {caPath}: the file holds no PEM certificate " +
                    "(-----BEGIN CERTIFICATE-----).");
        }
        else if (mode != ClientCertificateMode.NoCertificate)
            throw new StartupException($"--cert-reqs {settings.CertReqs} needs --ca-certs: the CA certificates " +
                "that client certificates must be signed by.");

        var protocols = settings.TlsMinVersion == "1.3" ? SslProtocols.Tls13 : SslProtocols.Tls12 | SslProtocols.Tls13;
        return new TlsSetup(certificate, chain, authorities, mode, protocols, CipherSuites.Policy(settings.Ciphers));
    }

    private static string ReadablePath(string flag, string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new StartupException($"{flag} {path}: no such file.");
        try { using var _ = File.OpenRead(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{flag} {path}: cannot read it ({e.Message}).");
        }
        return full;
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPair(string certPath, string keyPath,
        string? passwordFile)
    {
        var chain = new X509Certificate2Collection();
        try { chain.ImportFromPemFile(certPath); }
        catch (CryptographicException e)
        {
            throw new StartupException($"--certfile {certPath}: not a PEM certificate ({e.Message}).");
        }
        if (chain.Count == 0)
            throw new StartupException($"--certfile {certPath}: the file holds no PEM certificate " +
                "(-----BEGIN CERTIFICATE-----).");
        var keyText = File.ReadAllText(keyPath);
        var encrypted = keyText.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        if (keyText.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
            throw new StartupException($"--keyfile {keyPath}: the key is encrypted in OpenSSL's legacy format, which " +
                "is not supported; convert it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -in OLD -out NEW`.");
        if (!encrypted && !keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            throw new StartupException(keyPath == certPath
                ? $"--certfile {certPath}: no private key in the file; give it with --keyfile."
                : $"--keyfile {keyPath}: no PEM private key in the file (-----BEGIN PRIVATE KEY-----).");
        if (encrypted && passwordFile == null)
            throw new StartupException($"--keyfile {keyPath}: the key is encrypted; give its password with " +
                "--keyfile-password-file.");
        var password = passwordFile == null ? null
            : File.ReadLines(ReadablePath("--keyfile-password-file", passwordFile)).FirstOrDefault() ?? "";
        var certificate = WithKey(chain[0], keyText, password, certPath, keyPath, encrypted);
        // Linux keeps the key ephemeral: fine for SslStream. The rest of the file is the chain sent to clients.
        chain.RemoveAt(0);
        return (certificate, chain);
    }

    /// <summary>The certificate joined with its private key: the key is read as the certificate's algorithm
    /// (RSA or EC), so a wrong password and a key of another certificate give different answers.</summary>
    private static X509Certificate2 WithKey(X509Certificate2 certificate, string keyText, string? password,
        string certPath, string keyPath, bool encrypted)
    {
        var pair = $"--certfile {certPath} with --keyfile {keyPath}";
        AsymmetricAlgorithm key = certificate.GetKeyAlgorithm() switch
        {
            "1.2.840.113549.1.1.1" => RSA.Create(),
            "1.2.840.10045.2.1" => ECDsa.Create(),
            var other => throw new StartupException($"{pair}: the certificate's key algorithm ({other}) is not " +
                "supported; use an RSA or EC (ECDSA) certificate."),
        };
        using (key)
        {
            try
            {
                if (encrypted) key.ImportFromEncryptedPem(keyText, password ?? "");
                else key.ImportFromPem(keyText);
            }
            catch (CryptographicException) when (encrypted)
            {
                throw new StartupException($"{pair}: the key cannot be decrypted (wrong password in " +
                    "--keyfile-password-file, or not a key of this certificate's type).");
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new StartupException($"{pair}: the private key does not belong to the certificate " +
                    "(it is not a key of the certificate's type).");
            }
            try
            {
                return key switch
                {
                    RSA rsa => certificate.CopyWithPrivateKey(rsa),
                    _ => certificate.CopyWithPrivateKey((ECDsa)key),
                };
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new StartupException($"{pair}: the private key does not belong to the certificate.");
            }
        }
    }

    /// <summary>Kestrel's TLS options for one listener; ALPN offers h2 when the listener has HTTP/2.</summary>
    /// <param name="handshakeTimeout">From <see cref="TimeoutPolicy.TlsHandshake"/>.</param>
    public HttpsConnectionAdapterOptions AdapterOptions(TimeSpan handshakeTimeout)
    {
        var options = new HttpsConnectionAdapterOptions
        {
            ServerCertificate = _certificate,
            ServerCertificateChain = _chain.Count > 0 ? _chain : null,
            ClientCertificateMode = _clientMode,
            SslProtocols = _protocols,
            CheckCertificateRevocation = false,
            HandshakeTimeout = handshakeTimeout,
            OnAuthenticate = (_, ssl) =>
            {
                // null: OpenSSL's own list (--ciphers DEFAULT), with which .NET also caches TLS 1.2 sessions.
                if (_ciphers != null) ssl.CipherSuitesPolicy = _ciphers;
                ssl.AllowRenegotiation = false;
            },
        };
        if (_clientAuthorities != null) options.ClientCertificateValidation = VerifyClient;
        return options;
    }

    private bool VerifyClient(X509Certificate2 certificate, X509Chain? _, SslPolicyErrors __)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_clientAuthorities!);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // client authentication
        return chain.Build(certificate);
    }

    /// <summary>
    /// mod_ssl's CGI variables for a TLS request (HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_*), worked out once
    /// per connection and kept in its items.
    /// </summary>
    public static void Describe(KestrelExchange exchange)
    {
        var items = exchange.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items?.TryGetValue(typeof(TlsSetup), out var cached) != true ||
            cached is not KeyValuePair<string, string>[] variables)
        {
            variables = Variables(exchange);
            if (items != null) items[typeof(TlsSetup)] = variables;
        }
        foreach (var (name, value) in variables) exchange.AddServerVariable(name, value);
    }

    private static KeyValuePair<string, string>[] Variables(KestrelExchange exchange)
    {
        var handshake = exchange.Features.Get<ITlsHandshakeFeature>()!;
        var list = new List<KeyValuePair<string, string>>
        {
            new("SSL_PROTOCOL", handshake.Protocol switch
            {
                SslProtocols.Tls13 => "TLSv1.3",
                SslProtocols.Tls12 => "TLSv1.2",
                var other => other.ToString(),
            }),
        };
        if (handshake.NegotiatedCipherSuite is { } suite) list.Add(new("SSL_CIPHER", suite.ToString()));
        var client = exchange.Features.Get<ITlsConnectionFeature>()?.ClientCertificate;
        if (client == null) list.Add(new("SSL_CLIENT_VERIFY", "NONE"));
        else
        {
            // Kestrel ran VerifyClient: a certificate that reaches a request has been verified.
            list.Add(new("SSL_CLIENT_VERIFY", "SUCCESS"));
            list.Add(new("SSL_CLIENT_S_DN", DistinguishedName(client.SubjectName)));
            list.Add(new("SSL_CLIENT_I_DN", DistinguishedName(client.IssuerName)));
            list.Add(new("SSL_CLIENT_SERIAL", client.SerialNumber));
            list.Add(new("SSL_CLIENT_CERT", client.ExportCertificatePem() + "\n"));
        }
        return list.ToArray();
    }

    /// <summary>RFC 4514 form, most specific first, as mod_ssl writes it: CN=client,O=Example,C=US.</summary>
    public static string DistinguishedName(X500DistinguishedName name)
    {
        var sb = new StringBuilder();
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames(reversed: true))
        {
            if (sb.Length > 0) sb.Append(',');
            if (rdn.HasMultipleElements)
            {
                sb.Append(new X500DistinguishedName(rdn.RawData.ToArray()).Name);
                continue;
            }
            var oid = rdn.GetSingleElementType();
            sb.Append(ShortName(oid)).Append('=');
            foreach (var c in rdn.GetSingleElementValue() ?? "")
            {
                if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' or '=') sb.Append('\\');
                sb.Append(c);
            }
        }
        return sb.ToString();
    }

    private static string ShortName(Oid oid) => oid.Value switch
    {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => oid.Value ?? "",
    };
}

/// <summary>The TLS cipher suites offered: TLS 1.3's standard three, and for TLS 1.2 the strong default or
/// --ciphers.</summary>
public static class CipherSuites
{
    private static readonly TlsCipherSuite[] Tls13 =
    {
        TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    };

    public static readonly TlsCipherSuite[] DefaultTls12 =
    {
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    };

    // OpenSSL's names for the TLS 1.2 suites people write in nginx and gunicorn configs.
    private static readonly Dictionary<string, TlsCipherSuite> OpenSslNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ECDHE-ECDSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-RSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-ECDSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-RSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-ECDSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ["ECDHE-RSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["DHE-RSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
        ["DHE-RSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-RSA-AES256-SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
        ["ECDHE-RSA-AES128-SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
        ["ECDHE-ECDSA-AES256-SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
        ["ECDHE-ECDSA-AES128-SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
        ["AES256-GCM-SHA384"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
        ["AES128-GCM-SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    };

    /// <summary>The suites of a --ciphers value (null: the default); a name not known is a StartupException.</summary>
    public static IReadOnlyList<TlsCipherSuite> Tls12(string? ciphers)
    {
        if (string.IsNullOrWhiteSpace(ciphers)) return DefaultTls12;
        var suites = new List<TlsCipherSuite>();
        foreach (var name in ciphers.Split(':', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (OpenSslNames.TryGetValue(name, out var suite) ||
                (name.StartsWith("TLS_", StringComparison.OrdinalIgnoreCase) &&
                 Enum.TryParse(name, ignoreCase: true, out suite) && Enum.IsDefined(suite)))
                suites.Add(suite);
            else
                throw new StartupException($"--ciphers: '{name}' is not a TLS 1.2 cipher suite this server knows; " +
                    "write IANA names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or OpenSSL names " +
                    "(ECDHE-RSA-AES128-GCM-SHA256), separated by ':'.");
        }
        return suites;
    }

    /// <summary>The policy for --ciphers; null for DEFAULT (OpenSSL's configured list, as an unconfigured
    /// SslStream uses it). .NET resumes TLS 1.2 sessions only without a policy of its own.</summary>
    public static CipherSuitesPolicy? Policy(string? ciphers) =>
        string.Equals(ciphers?.Trim(), "DEFAULT", StringComparison.OrdinalIgnoreCase)
            ? null : new(Tls13.Concat(Tls12(ciphers)));
}
