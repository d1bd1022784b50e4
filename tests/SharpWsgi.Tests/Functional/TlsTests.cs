using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// TLS and mTLS over real sockets: .NET's SslStream, Python's ssl (for what .NET will not offer: TLS 1.0/1.1, weak
/// suites) and curl as clients; certificates from a throwaway CA (<see cref="TestCertificates"/>).
/// </summary>
public sealed class TlsTests : IDisposable
{
    private static string EchoApp => Path.Combine(ServerProcess.AppsDir, "echo_environ.py");
    private readonly TestCertificates _certs = new();

    public void Dispose() => _certs.Dispose();

    private ServerProcess StartTls(params string[] extra) => ServerProcess.Start(new[]
        { "--certfile", _certs.ServerCert, "--keyfile", _certs.ServerKey }.Concat(extra).Append(EchoApp));

    [Fact]
    public void Https_EnvironCarriesSchemeAndModSslVariables()
    {
        using var server = StartTls();
        Assert.StartsWith("https://", server.BaseUri.ToString());
        using var tls = TlsConnection.Open(server.Port, _certs);
        var environ = tls.GetEnviron("/tls?x=1");
        Assert.Equal("https", environ.GetProperty("wsgi.url_scheme").GetString());
        Assert.Equal("on", environ.GetProperty("HTTPS").GetString());
        Assert.Equal("TLSv1.3", environ.GetProperty("SSL_PROTOCOL").GetString());
        Assert.Equal(tls.Stream.NegotiatedCipherSuite.ToString(), environ.GetProperty("SSL_CIPHER").GetString());
        Assert.Equal("NONE", environ.GetProperty("SSL_CLIENT_VERIFY").GetString());
        Assert.False(environ.TryGetProperty("SSL_CLIENT_S_DN", out _));
        // "Host: localhost" names no port: SERVER_PORT is the scheme's default.
        Assert.Equal("443", environ.GetProperty("SERVER_PORT").GetString());
        // Keep-alive over TLS: a second request on the same connection.
        Assert.Equal("/again", tls.GetEnviron("/again").GetProperty("PATH_INFO").GetString());
    }

    [Fact]
    public void Tls12_NegotiatesAForwardSecretAeadSuite()
    {
        using var server = StartTls();
        using var tls = TlsConnection.Open(server.Port, _certs, SslProtocols.Tls12);
        var environ = tls.GetEnviron("/");
        Assert.Equal("TLSv1.2", environ.GetProperty("SSL_PROTOCOL").GetString());
        var suite = environ.GetProperty("SSL_CIPHER").GetString()!;
        Assert.Matches("^TLS_ECDHE_(RSA|ECDSA)_WITH_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$", suite);
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("1.1")]
    public void OldProtocolVersions_AreRefused(string version)
    {
        using var server = StartTls();
        var result = Probe(server.Port, "--version", version);
        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
    }

    [Theory]
    [InlineData("AES128-SHA")] // RSA key exchange, CBC: no forward secrecy
    [InlineData("ECDHE-RSA-AES128-SHA")] // CBC with SHA-1
    [InlineData("AES256-GCM-SHA384")] // AEAD, but RSA key exchange
    public void WeakSuites_AreRefused(string cipher)
    {
        using var server = StartTls();
        var result = Probe(server.Port, "--ciphers", cipher);
        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
    }

    [Fact]
    public void PythonSslClient_Tls13_IsServed()
    {
        using var server = StartTls();
        var result = Probe(server.Port, "--version", "1.3");
        Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.Equal("TLSv1.3", result.GetProperty("version").GetString());
        Assert.Equal("200", result.GetProperty("status").GetString());
    }

    [Fact]
    public void TlsMinVersion13_RefusesTls12()
    {
        using var server = StartTls("--tls-min-version", "1.3");
        Assert.False(Probe(server.Port, "--version", "1.2").GetProperty("ok").GetBoolean());
        Assert.True(Probe(server.Port, "--version", "1.3").GetProperty("ok").GetBoolean());
    }

    [Fact]
    public void Ciphers_RestrictTls12Suites()
    {
        using var server = StartTls("--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256");
        var only = Probe(server.Port, "--version", "1.2");
        Assert.True(only.GetProperty("ok").GetBoolean(), only.ToString());
        Assert.Equal("ECDHE-ECDSA-AES128-GCM-SHA256", only.GetProperty("cipher").GetString());
        Assert.False(Probe(server.Port, "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384").GetProperty("ok").GetBoolean());
    }

    [Theory]
    [InlineData(null, false)] // our own suite list: .NET keeps no TLS 1.2 session cache under a CipherSuitesPolicy
    [InlineData("DEFAULT", true)]
    public void Tls12SessionResumption_OnlyWithOpenSslsOwnList(string? ciphers, bool resumed)
    {
        using var server = ciphers == null ? StartTls() : StartTls("--ciphers", ciphers);
        var (code, output) = Run("sh", "-c", $"echo | openssl s_client -connect 127.0.0.1:{server.Port} -tls1_2 " +
            $"-reconnect -CAfile {_certs.CaCert} 2>/dev/null");
        Assert.True(code == 0, output);
        var reused = Regex.Matches(output, "^Reused, TLSv1.2", RegexOptions.Multiline).Count;
        Assert.Contains("New, TLSv1.2", output);
        Assert.Equal(resumed, reused > 0);
    }

    [Fact]
    public void Curl_OverHttps_VerifiesTheChainAndGets200()
    {
        using var server = StartTls();
        var (code, output) = Run("curl", "-sS", "--cacert", _certs.CaCert, "-o", "/dev/null", "-w",
            "%{http_code} %{scheme}", $"https://localhost:{server.Port}/curl");
        Assert.True(code == 0, output);
        Assert.Equal("200 HTTPS", output.Trim().ToUpperInvariant());
    }

    [Fact]
    public void HttpsAndHttpBinds_ServeSideBySide()
    {
        using var server = ServerProcess.Start(new[]
        {
            "--bind", "https://127.0.0.1:0", "--bind", "http://127.0.0.1:0",
            "--certfile", _certs.ServerCert, "--keyfile", _certs.ServerKey, EchoApp,
        });
        var plain = Regex.Match(server.WaitForOutput(@"Listening at: http://"), @"http://127\.0\.0\.1:(\d+)");
        var port = int.Parse(plain.Groups[1].Value);
        var r = Http.Get(port, "/plain");
        Assert.Equal("http", Http.Json(r).GetProperty("environ").GetProperty("wsgi.url_scheme").GetString());
        using var tls = TlsConnection.Open(server.Port, _certs);
        Assert.Equal("https", tls.GetEnviron("/").GetProperty("wsgi.url_scheme").GetString());
    }

    [Fact]
    public void UnixSocketBind_StaysCleartextWithCertfile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-tls-{Guid.NewGuid():N}.sock");
        using var server = ServerProcess.Start(new[]
        {
            "--bind", "unix:" + path, "--bind", "127.0.0.1:0",
            "--certfile", _certs.ServerCert, "--keyfile", _certs.ServerKey, EchoApp,
        }, waitForListening: false);
        server.WaitForOutput("Ready: ");
        Assert.Contains("Listening at: unix:" + path, server.Output);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        using var stream = new NetworkStream(socket);
        stream.Write("GET /unix HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8);
        var answer = new StreamReader(stream, Encoding.Latin1).ReadToEnd();
        Assert.StartsWith("HTTP/1.1 200", answer);
        Assert.Contains("\"wsgi.url_scheme\": \"http\"", answer);
    }

    // ---- mTLS -----------------------------------------------------------------------------------------

    [Fact]
    public void CertReqsRequired_ClientCertificateFillsSslClientVariables()
    {
        using var server = StartTls("--ca-certs", _certs.CaCert, "--cert-reqs", "required");
        using var tls = TlsConnection.Open(server.Port, _certs, client: (_certs.ClientCert, _certs.ClientKey));
        var environ = tls.GetEnviron("/mtls");
        Assert.Equal("SUCCESS", environ.GetProperty("SSL_CLIENT_VERIFY").GetString());
        Assert.Equal("CN=client-1,O=SharpWsgi Tests,C=DE", environ.GetProperty("SSL_CLIENT_S_DN").GetString());
        Assert.Equal("CN=SharpWsgi Test CA", environ.GetProperty("SSL_CLIENT_I_DN").GetString());
        Assert.Equal(_certs.Client.SerialNumber, environ.GetProperty("SSL_CLIENT_SERIAL").GetString());
        var pem = environ.GetProperty("SSL_CLIENT_CERT").GetString()!;
        using var echoed = X509Certificate2.CreateFromPem(pem);
        Assert.Equal(_certs.Client.Thumbprint, echoed.Thumbprint);
    }

    [Fact]
    public void CertReqsRequired_WithoutOrWithAForeignCertificate_NoRequestRuns()
    {
        using var server = StartTls("--ca-certs", _certs.CaCert, "--cert-reqs", "required");
        Assert.False(TlsConnection.TryGet(server.Port, _certs, null, out var why1), why1);
        Assert.False(TlsConnection.TryGet(server.Port, _certs, (_certs.StrangerCert, _certs.StrangerKey),
            out var why2), why2);
        // The server lives on and serves a proper client.
        using var tls = TlsConnection.Open(server.Port, _certs, client: (_certs.ClientCert, _certs.ClientKey));
        Assert.Equal("SUCCESS", tls.GetEnviron("/").GetProperty("SSL_CLIENT_VERIFY").GetString());
        var calls = JsonDocument.Parse(tls.Get("/__calls?port=0").Body).RootElement.GetProperty("total").GetInt32();
        Assert.Equal(1, calls);
    }

    [Fact]
    public void CertReqsOptional_ServesWithAndWithoutCertificate()
    {
        using var server = StartTls("--ca-certs", _certs.CaCert, "--cert-reqs", "optional");
        using (var anonymous = TlsConnection.Open(server.Port, _certs))
            Assert.Equal("NONE", anonymous.GetEnviron("/").GetProperty("SSL_CLIENT_VERIFY").GetString());
        using var known = TlsConnection.Open(server.Port, _certs, client: (_certs.ClientCert, _certs.ClientKey));
        Assert.Equal("SUCCESS", known.GetEnviron("/").GetProperty("SSL_CLIENT_VERIFY").GetString());
        Assert.False(TlsConnection.TryGet(server.Port, _certs, (_certs.StrangerCert, _certs.StrangerKey), out _));
    }

    // ---- rotation -------------------------------------------------------------------------------------

    [Fact]
    public void Sighup_NewWorkersServeTheRenewedCertificate_OpenConnectionsFinishOnTheOld()
    {
        using var server = StartTls("--graceful-timeout", "20");
        var oldPid = Regex.Match(server.WaitForOutput("Ready: "), @"pids (\d+)").Groups[1].Value;
        using var old = TlsConnection.Open(server.Port, _certs);
        Assert.Equal("CN=server-1", old.ServerCertificate.Subject);
        Assert.Equal(200, old.Get("/before").Status);

        _certs.RotateServer("server-2");
        Signals.Send(server.Pid, Signals.SIGHUP);
        // The old worker logs this once it no longer accepts: every new connection goes to its replacement.
        server.WaitForOutput($"Worker {oldPid} stopping gracefully", TimeSpan.FromSeconds(60));

        using var fresh = TlsConnection.Open(server.Port, _certs);
        Assert.Equal("CN=server-2", fresh.ServerCertificate.Subject);
        Assert.Equal(200, fresh.Get("/after").Status);
        // The connection made before the reload is served to the end by its retiring worker.
        var last = old.Get("/old-connection");
        Assert.Equal(200, last.Status);
        Assert.Equal("close", last.Header("Connection"));
    }

    [Fact]
    public void Sighup_WithABrokenKey_KeepsTheRunningWorkers()
    {
        using var server = StartTls();
        server.WaitForOutput("Ready: ");
        File.WriteAllText(_certs.ServerKey, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
        Signals.Send(server.Pid, Signals.SIGHUP);
        server.WaitForOutput("Reload: .*Keeping the current configuration");
        using var tls = TlsConnection.Open(server.Port, _certs);
        Assert.Equal(200, tls.Get("/").Status);
    }

    // ---- start-up errors ------------------------------------------------------------------------------

    [Fact]
    public void MissingCertfile_OneParagraphAndNonZeroExit()
    {
        var (code, output) = ServerProcess.RunToExit(new[]
            { "--certfile", "/nonexistent/cert.pem", "--keyfile", _certs.ServerKey, EchoApp });
        AssertCleanFailure(code, output, "--certfile /nonexistent/cert.pem: no such file");
    }

    [Fact]
    public void KeyOfAnotherCertificate_IsRefusedAtStart()
    {
        var (_, otherKey) = _certs.ExtraServer("other");
        var (code, output) = ServerProcess.RunToExit(new[]
            { "--certfile", _certs.ServerCert, "--keyfile", otherKey, EchoApp });
        AssertCleanFailure(code, output, "does not belong to the certificate");
    }

    [Fact]
    public void EncryptedKey_NeedsItsPassword()
    {
        var encrypted = Path.Combine(_certs.Directory, "encrypted-key.pem");
        var password = Path.Combine(_certs.Directory, "password.txt");
        var wrong = Path.Combine(_certs.Directory, "wrong.txt");
        File.WriteAllText(password, "s3cret\n");
        File.WriteAllText(wrong, "guess\n");
        Assert.Equal(0, Run("openssl", "pkcs8", "-topk8", "-in", _certs.ServerKey, "-out", encrypted,
            "-passout", "pass:s3cret").Code);

        var (code, output) = ServerProcess.RunToExit(new[]
            { "--certfile", _certs.ServerCert, "--keyfile", encrypted, EchoApp });
        AssertCleanFailure(code, output, "--keyfile-password-file");

        (code, output) = ServerProcess.RunToExit(new[]
            { "--certfile", _certs.ServerCert, "--keyfile", encrypted, "--keyfile-password-file", wrong, EchoApp });
        AssertCleanFailure(code, output, "the key cannot be decrypted");

        using var server = ServerProcess.Start(new[]
            { "--certfile", _certs.ServerCert, "--keyfile", encrypted, "--keyfile-password-file", password, EchoApp });
        using var tls = TlsConnection.Open(server.Port, _certs);
        Assert.Equal(200, tls.Get("/").Status);
    }

    [Fact]
    public void HttpsBindWithoutCertificate_AndClientCaWithoutCertReqsPartner_AreClearErrors()
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--bind", "https://127.0.0.1:0", EchoApp });
        AssertCleanFailure(code, output, "needs a certificate");
        (code, output) = ServerProcess.RunToExit(new[]
            { "--certfile", _certs.ServerCert, "--keyfile", _certs.ServerKey, "--cert-reqs", "required", EchoApp });
        AssertCleanFailure(code, output, "needs --ca-certs");
        (code, output) = ServerProcess.RunToExit(new[]
            { "--certfile", _certs.ServerCert, "--keyfile", _certs.ServerKey, "--ciphers", "RC4-MD5", EchoApp });
        AssertCleanFailure(code, output, "'RC4-MD5' is not a TLS 1.2 cipher suite");
    }

    private static void AssertCleanFailure(int code, string output, string expected)
    {
        Assert.NotEqual(0, code);
        Assert.Contains(expected, output);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.DoesNotContain("Listening at:", output);
    }

    private JsonElement Probe(int port, params string[] args)
    {
        var (code, output) = Run(Interpreters.SystemPython, new[]
        {
            Path.Combine(ServerProcess.RepoRoot, "tests", "clients", "tls_probe.py"), port.ToString(), _certs.CaCert,
        }.Concat(args).ToArray());
        Assert.True(code == 0, output);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    internal static (int Code, string Output) Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), $"{program} did not finish");
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>One TLS connection (SslStream) that speaks keep-alive HTTP/1.1 with Content-Length responses.</summary>
internal sealed class TlsConnection : IDisposable
{
    private readonly TcpClient _tcp;
    public SslStream Stream { get; }
    private readonly List<byte> _pending = new();

    private TlsConnection(TcpClient tcp, SslStream stream)
    {
        _tcp = tcp;
        Stream = stream;
    }

    public X509Certificate2 ServerCertificate => new(Stream.RemoteCertificate!);

    public static TlsConnection Open(int port, TestCertificates certs, SslProtocols protocols = SslProtocols.None,
        (string Cert, string Key)? client = null)
    {
        var tcp = new TcpClient();
        tcp.Connect("127.0.0.1", port);
        tcp.ReceiveTimeout = tcp.SendTimeout = 30_000;
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(certs.CaCert));
        var stream = new SslStream(tcp.GetStream(), false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocols,
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                CustomTrustStore = { ca },
                RevocationMode = X509RevocationMode.NoCheck,
            },
        };
        if (client is { } pair)
        {
            // An ephemeral key cannot be presented by OpenSSL's client side in every version: round-trip via PFX.
            using var loaded = X509Certificate2.CreateFromPemFile(pair.Cert, pair.Key);
            options.ClientCertificates = new X509CertificateCollection
                { X509CertificateLoader.LoadPkcs12(loaded.Export(X509ContentType.Pfx), null) };
        }
        try { stream.AuthenticateAsClient(options); }
        catch
        {
            stream.Dispose();
            tcp.Dispose();
            throw;
        }
        return new TlsConnection(tcp, stream);
    }

    /// <summary>Whether a request over a new connection gets an answer (false: the handshake or the read failed).
    /// </summary>
    public static bool TryGet(int port, TestCertificates certs, (string, string)? client, out string why)
    {
        try
        {
            using var c = Open(port, certs, client: client);
            var r = c.Get("/");
            why = $"answered {r.Status}";
            return true;
        }
        catch (Exception e) when (e is IOException or AuthenticationException or SocketException)
        {
            why = e.Message;
            return false;
        }
    }

    public RawResponse Get(string target)
    {
        Send($"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        return Read();
    }

    /// <summary>Writes exactly these bytes (one request or several).</summary>
    public void Send(string latin1)
    {
        Stream.Write(Encoding.Latin1.GetBytes(latin1));
        Stream.Flush();
    }

    /// <summary>True when the server closed the connection with no further bytes.</summary>
    public bool IsClosedByServer()
    {
        if (_pending.Count > 0) return false;
        try { return Stream.Read(new byte[1]) == 0; }
        catch (IOException) { return true; }
    }

    public JsonElement GetEnviron(string target)
    {
        var r = Get(target);
        Assert.Equal(200, r.Status);
        return JsonDocument.Parse(r.Body).RootElement.GetProperty("environ").Clone();
    }

    /// <summary>Reads one response framed by Content-Length.</summary>
    public RawResponse Read()
    {
        int headEnd;
        while ((headEnd = IndexOf("\r\n\r\n"u8)) < 0) Fill();
        var head = Encoding.Latin1.GetString(_pending.GetRange(0, headEnd).ToArray());
        _pending.RemoveRange(0, headEnd + 4);
        var lines = head.Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(':', 2))
            .Select(p => (p[0].Trim(), p.Length > 1 ? p[1].Trim() : "")).ToList();
        var length = int.Parse(headers.FirstOrDefault(h => h.Item1.Equals("Content-Length",
            StringComparison.OrdinalIgnoreCase)).Item2 ?? "0");
        while (_pending.Count < length) Fill();
        var body = _pending.GetRange(0, length).ToArray();
        _pending.RemoveRange(0, length);
        var status = int.Parse(lines[0].Split(' ')[1]);
        return new RawResponse(lines[0], status, headers, body, false, Array.Empty<byte>());
    }

    private void Fill()
    {
        var chunk = new byte[16384];
        var n = Stream.Read(chunk);
        if (n == 0) throw new IOException("the server closed the connection");
        _pending.AddRange(chunk.AsSpan(0, n).ToArray());
    }

    private int IndexOf(ReadOnlySpan<byte> needle)
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending);
        return span.IndexOf(needle);
    }

    public void Dispose()
    {
        Stream.Dispose();
        _tcp.Dispose();
    }
}
