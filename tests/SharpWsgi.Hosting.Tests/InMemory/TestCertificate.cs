using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SharpWsgi.Hosting.Tests.InMemory;

/// <summary>A self-signed RSA certificate for localhost, written once per run as the PEM pair --certfile and
/// --keyfile name.</summary>
public static class TestCertificate
{
    private static readonly Lazy<(string Cert, string Key)> Pair = new(Write);

    public static string CertFile => Pair.Value.Cert;
    public static string KeyFile => Pair.Value.Key;

    private static (string, string) Write()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256,
            RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1),
            DateTimeOffset.UtcNow.AddDays(1));
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-hosting-tests-").FullName;
        var certPath = Path.Combine(dir, "cert.pem");
        var keyPath = Path.Combine(dir, "key.pem");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath);
    }
}
