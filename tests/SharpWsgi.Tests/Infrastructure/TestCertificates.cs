using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// A throwaway PKI in a temp directory, made with .NET's own certificate APIs: a CA, a server certificate for
/// localhost and 127.0.0.1 signed by it, a client certificate signed by it (mTLS), and a client certificate from an
/// unrelated CA. All PEM, as nginx, curl, Python's ssl and the server read them.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    public string Directory { get; }
    public string CaCert => Path.Combine(Directory, "ca.pem");
    public string ServerCert => Path.Combine(Directory, "server.pem");
    public string ServerKey => Path.Combine(Directory, "server-key.pem");
    public string ClientCert => Path.Combine(Directory, "client.pem");
    public string ClientKey => Path.Combine(Directory, "client-key.pem");
    public string StrangerCert => Path.Combine(Directory, "stranger.pem");
    public string StrangerKey => Path.Combine(Directory, "stranger-key.pem");
    public X509Certificate2 Client { get; }

    public TestCertificates(string serverName = "server-1")
    {
        Directory = Path.Combine(Path.GetTempPath(), "sharpwsgi-certs-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(Directory);
        using var ca = CreateAuthority("SharpWsgi Test CA");
        File.WriteAllText(CaCert, ca.ExportCertificatePem() + "\n");
        WriteServer(ca, serverName, ServerCert, ServerKey);
        Client = Issue(ca, "CN=client-1,O=SharpWsgi Tests,C=DE", serverAuth: false, out var clientKey);
        File.WriteAllText(ClientCert, Client.ExportCertificatePem() + "\n");
        File.WriteAllText(ClientKey, clientKey.ExportPkcs8PrivateKeyPem() + "\n");
        using var other = CreateAuthority("Unrelated CA");
        using var stranger = Issue(other, "CN=stranger", serverAuth: false, out var strangerKey);
        File.WriteAllText(StrangerCert, stranger.ExportCertificatePem() + "\n");
        File.WriteAllText(StrangerKey, strangerKey.ExportPkcs8PrivateKeyPem() + "\n");
    }

    /// <summary>Writes a new server certificate (another CN) over the old files: certificate rotation.</summary>
    public void RotateServer(string serverName)
    {
        using var ca = X509Certificate2.CreateFromPemFile(CaCert, Path.Combine(Directory, "ca-key.pem"));
        WriteServer(ca, serverName, ServerCert, ServerKey);
    }

    /// <summary>An extra server certificate and key in new files (e.g. for a key that does not match).</summary>
    public (string Cert, string Key) ExtraServer(string serverName)
    {
        using var ca = X509Certificate2.CreateFromPemFile(CaCert, Path.Combine(Directory, "ca-key.pem"));
        var cert = Path.Combine(Directory, serverName + ".pem");
        var key = Path.Combine(Directory, serverName + "-key.pem");
        WriteServer(ca, serverName, cert, key);
        return (cert, key);
    }

    private static void WriteServer(X509Certificate2 ca, string serverName, string certPath, string keyPath)
    {
        using var server = Issue(ca, $"CN={serverName}", serverAuth: true, out var key);
        File.WriteAllText(certPath, server.ExportCertificatePem() + "\n");
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        key.Dispose();
    }

    private X509Certificate2 CreateAuthority(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        if (name == "SharpWsgi Test CA")
            File.WriteAllText(Path.Combine(Directory, "ca-key.pem"), key.ExportPkcs8PrivateKeyPem() + "\n");
        return ca;
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, bool serverAuth, out ECDsa key)
    {
        key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection
        {
            new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2"),
        }, false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(8);
        serial[0] &= 0x7F;
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(20),
            serial);
        return new X509Certificate2(issued.RawData);
    }

    public void Dispose()
    {
        Client.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}
