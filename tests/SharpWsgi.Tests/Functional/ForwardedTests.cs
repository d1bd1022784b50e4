using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Forwarded headers end to end (--forwarded-allow-ips, --secure-scheme-headers): the echo app over raw sockets from
/// a trusted and an untrusted peer and over a unix socket, then real nginx terminating TLS and proxying to a Flask app
/// over TCP and over a unix socket. The test clients connect from 127.0.0.2, which the servers do not trust, so that
/// "the app sees the client's address" cannot pass by accident with nginx's own 127.0.0.1.
/// </summary>
public sealed class ForwardedTests : IClassFixture<ForwardedTests.Servers>
{
    private static readonly IPAddress ClientAddress = IPAddress.Parse("127.0.0.2");
    private static string EchoApp => Path.Combine(ServerProcess.AppsDir, "echo_environ.py");
    private static string FlaskApp => Path.Combine(ServerProcess.AppsDir, "flask_urls.py");

    /// <summary>The nginx config docs/edge.md ("Behind a proxy") shows (ports and paths filled in).</summary>
    public static string NginxHttpBlock(string dir, TestCertificates certs, int tcpPort, int tcpUpstream,
        int unixPort, string unixSocket) => $$"""
        http {
            access_log off;
            client_body_temp_path {{dir}}/client_body;
            proxy_temp_path {{dir}}/proxy;
            fastcgi_temp_path {{dir}}/fastcgi;
            uwsgi_temp_path {{dir}}/uwsgi;
            scgi_temp_path {{dir}}/scgi;

            upstream sharpwsgi_tcp { server 127.0.0.1:{{tcpUpstream}}; keepalive 8; }
            upstream sharpwsgi_unix { server unix:{{unixSocket}}; keepalive 8; }

            server {
                listen 127.0.0.1:{{tcpPort}} ssl;
                ssl_certificate {{certs.ServerCert}};
                ssl_certificate_key {{certs.ServerKey}};
                location / {
                    proxy_pass http://sharpwsgi_tcp;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $http_host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    proxy_set_header X-Forwarded-Ssl "";
                    proxy_set_header X-Forwarded-Protocol "";
                    proxy_set_header Forwarded "";
                }
            }
            server {
                listen 127.0.0.1:{{unixPort}} ssl;
                ssl_certificate {{certs.ServerCert}};
                ssl_certificate_key {{certs.ServerKey}};
                location / {
                    proxy_pass http://sharpwsgi_unix;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $http_host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    proxy_set_header X-Forwarded-Ssl "";
                    proxy_set_header X-Forwarded-Protocol "";
                    proxy_set_header Forwarded "";
                }
            }
        }
        """;

    public sealed class Servers : IDisposable
    {
        private readonly Lazy<ServerProcess> _trusting = new(() => ServerProcess.Start(new[] { EchoApp }));
        private readonly Lazy<ServerProcess> _distrusting = new(() =>
            ServerProcess.Start(new[] { "--forwarded-allow-ips", "10.1.2.3", EchoApp }));
        private readonly Lazy<Proxied> _proxied = new(() => new Proxied());

        public ServerProcess Trusting => _trusting.Value;
        public ServerProcess Distrusting => _distrusting.Value;
        public Proxied Nginx => _proxied.Value;

        public void Dispose()
        {
            if (_trusting.IsValueCreated) _trusting.Value.Dispose();
            if (_distrusting.IsValueCreated) _distrusting.Value.Dispose();
            if (_proxied.IsValueCreated) _proxied.Value.Dispose();
        }
    }

    /// <summary>nginx with TLS in front of one Flask server bound to TCP and a unix socket, which trusts only
    /// 127.0.0.1 (nginx's address; unix-socket peers are trusted anyway).</summary>
    public sealed class Proxied : IDisposable
    {
        public TestCertificates Certs { get; } = new();
        public string Directory { get; } = ExternalServer.NewDirectory("forwarded-nginx");
        public ServerProcess Flask { get; }
        public ExternalServer Nginx { get; }
        public int TcpPort { get; }
        public int UnixPort { get; }

        public Proxied()
        {
            var socket = Path.Combine(Directory, "sharpwsgi.sock");
            Flask = ServerProcess.Start(new[] { "--bind", "127.0.0.1:0", "--bind", "unix:" + socket,
                "--forwarded-allow-ips", "127.0.0.1", "--python", Interpreters.SystemPython, FlaskApp });
            TcpPort = ExternalServer.FreePort();
            UnixPort = ExternalServer.FreePort();
            try
            {
                Nginx = ExternalServer.Nginx(Directory,
                    NginxHttpBlock(Directory, Certs, TcpPort, Flask.Port, UnixPort, socket), TcpPort);
            }
            catch
            {
                Flask.Dispose();
                Certs.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            Nginx.Dispose();
            Flask.Dispose();
            Certs.Dispose();
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        }
    }

    private readonly Servers _servers;

    public ForwardedTests(Servers servers) => _servers = servers;

    // ---- helpers --------------------------------------------------------------------------------------------

    /// <summary>One GET over a raw socket from the given local address; returns the response and the client's
    /// port.</summary>
    private static (RawResponse Response, int LocalPort) RawGet(int port, string headers, IPAddress? from = null)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            { ReceiveTimeout = 30_000, SendTimeout = 30_000 };
        socket.Bind(new IPEndPoint(from ?? IPAddress.Loopback, 0));
        socket.Connect(IPAddress.Loopback, port);
        var localPort = ((IPEndPoint)socket.LocalEndPoint!).Port;
        socket.Send(Encoding.Latin1.GetBytes(
            $"GET /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Connection: close\r\n\r\n"));
        var buffer = new MemoryStream();
        var chunk = new byte[65536];
        int n;
        while ((n = socket.Receive(chunk)) > 0) buffer.Write(chunk, 0, n);
        return (Parse(buffer.ToArray()), localPort);
    }

    private static RawResponse Parse(byte[] raw)
    {
        var text = Encoding.Latin1.GetString(raw);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, "no response head: " + text);
        var lines = text[..end].Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Select(p => (p[0], p[1].Trim())).ToList();
        return new RawResponse(lines[0], int.Parse(lines[0].Split(' ')[1]), headers, raw[(end + 4)..], false, raw);
    }

    private static JsonElement Environ(RawResponse r)
    {
        Assert.True(r.Status == 200, r.StatusLine + "\n" + r.BodyText);
        return Http.Environ(r);
    }

    /// <summary>An HTTPS client that trusts the test CA and connects from 127.0.0.2.</summary>
    private static HttpClient HttpsClient(TestCertificates certs)
    {
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(certs.CaCert));
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(ClientAddress, 0));
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (certificate == null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
                        return false;
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(new X509Certificate2(certificate));
                },
            },
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    private async Task<JsonElement> ThroughNginx(bool overUnixSocket, params (string, string)[] headers)
    {
        var nginx = _servers.Nginx;
        var port = overUnixSocket ? nginx.UnixPort : nginx.TcpPort;
        using var client = HttpsClient(nginx.Certs);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"https://localhost:{port}/x");
        foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK,
            $"{(int)response.StatusCode}: {body}\nnginx:\n{nginx.Nginx.Output}\n" +
            File.ReadAllText(Path.Combine(nginx.Directory, "error.log")) + "\nsharpwsgi:\n" + nginx.Flask.Output);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    // ---- direct: a trusted peer -----------------------------------------------------------------------------

    [Fact]
    public void Forwarded_TrustedPeerXffAndProto_RewritesClientAndScheme()
    {
        var (r, localPort) = RawGet(_servers.Trusting.Port,
            "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-Proto: https\r\n");
        var env = Environ(r);
        Assert.Equal("203.0.113.7", env.Str("REMOTE_ADDR"));
        Assert.Equal("0", env.Str("REMOTE_PORT"));
        Assert.Equal("https", env.Str("wsgi.url_scheme"));
        Assert.Equal("on", env.Str("HTTPS"));
        Assert.Equal("127.0.0.1", env.Str("sharpwsgi.proxy_addr"));
        Assert.Equal(localPort.ToString(), env.Str("sharpwsgi.proxy_port"));
        // The headers still reach the app.
        Assert.Equal("6.6.6.6, 203.0.113.7", env.Str("HTTP_X_FORWARDED_FOR"));
        Assert.Equal("https", env.Str("HTTP_X_FORWARDED_PROTO"));
    }

    [Fact]
    public void Forwarded_TrustedPeerRfc7239_RewritesClientPortAndScheme()
    {
        var (r, _) = RawGet(_servers.Trusting.Port,
            "Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https;by=_edge\r\n");
        var env = Environ(r);
        Assert.Equal("2001:db8:cafe::17", env.Str("REMOTE_ADDR"));
        Assert.Equal("4711", env.Str("REMOTE_PORT"));
        Assert.Equal("https", env.Str("wsgi.url_scheme"));
        Assert.Equal("on", env.Str("HTTPS"));
        Assert.Equal("127.0.0.1", env.Str("sharpwsgi.proxy_addr"));
    }

    [Fact]
    public void Forwarded_TrustedPeerProtoHttp_StaysHttpWithoutHttpsKey()
    {
        var (r, _) = RawGet(_servers.Trusting.Port, "X-Forwarded-Proto: http\r\nX-Forwarded-Ssl: off\r\n");
        var env = Environ(r);
        Assert.Equal("http", env.Str("wsgi.url_scheme"));
        Assert.False(env.TryGetProperty("HTTPS", out _));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.False(env.TryGetProperty("sharpwsgi.proxy_addr", out _));
    }

    [Fact]
    public void Forwarded_TrustedPeerNoHeaders_PeerIsClientAndNoProxyKeys()
    {
        var (r, localPort) = RawGet(_servers.Trusting.Port, "");
        var env = Environ(r);
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(localPort.ToString(), env.Str("REMOTE_PORT"));
        Assert.Equal("http", env.Str("wsgi.url_scheme"));
        Assert.False(env.TryGetProperty("sharpwsgi.proxy_addr", out _));
        Assert.False(env.TryGetProperty("sharpwsgi.proxy_port", out _));
    }

    [Theory]
    [InlineData("X-Forwarded-For: garbage\r\n")]
    [InlineData("X-Forwarded-For: 127.1\r\n")]
    [InlineData("X-Forwarded-For: [2001:db8::1\r\n")]
    [InlineData("X-Forwarded-For: 1.2.3.4:99999\r\n")]
    [InlineData("X-Forwarded-For: ,,,\r\n")]
    [InlineData("X-Forwarded-For: \xe9\xff\r\n")]
    [InlineData("Forwarded: for=\"unterminated\r\n")]
    [InlineData("Forwarded: for=2001:db8::1\r\n")]
    [InlineData("Forwarded: for=1.2.3.4;for=5.6.7.8\r\n")]
    [InlineData("Forwarded: ;;;,,,===\r\n")]
    [InlineData("Forwarded: for=6.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n")]
    [InlineData("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n")]
    [InlineData("Forwarded: proto=https\r\nX-Forwarded-Proto: http\r\n")]
    [InlineData("X-Forwarded-Proto: \r\n")]
    public void Forwarded_MalformedOrConflicting_200AndNothingChanged(string headers)
    {
        var (r, _) = RawGet(_servers.Trusting.Port, headers);
        var env = Environ(r);
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal("http", env.Str("wsgi.url_scheme"));
        Assert.False(env.TryGetProperty("HTTPS", out _));
        Assert.False(env.TryGetProperty("sharpwsgi.proxy_addr", out _));
    }

    // ---- direct: an untrusted peer --------------------------------------------------------------------------

    [Fact]
    public void Forwarded_UntrustedPeer_ChangesNothingAndHeadersReachApp()
    {
        var (r, localPort) = RawGet(_servers.Distrusting.Port,
            "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n" +
            "X-Forwarded-Protocol: ssl\r\nForwarded: for=6.6.6.6;proto=https\r\n");
        var env = Environ(r);
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(localPort.ToString(), env.Str("REMOTE_PORT"));
        Assert.Equal("http", env.Str("wsgi.url_scheme"));
        Assert.False(env.TryGetProperty("HTTPS", out _));
        Assert.False(env.TryGetProperty("sharpwsgi.proxy_addr", out _));
        Assert.Equal("6.6.6.6", env.Str("HTTP_X_FORWARDED_FOR"));
        Assert.Equal("https", env.Str("HTTP_X_FORWARDED_PROTO"));
        Assert.Equal("on", env.Str("HTTP_X_FORWARDED_SSL"));
        Assert.Equal("ssl", env.Str("HTTP_X_FORWARDED_PROTOCOL"));
        Assert.Equal("for=6.6.6.6;proto=https", env.Str("HTTP_FORWARDED"));
    }

    // ---- direct: unix socket --------------------------------------------------------------------------------

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("", false)]
    public void Forwarded_UnixSocketPeer_TrustedUnlessListEmpty(string allow, bool trusted)
    {
        var dir = ExternalServer.NewDirectory("forwarded-unix");
        var path = Path.Combine(dir, "s.sock");
        try
        {
            using var server = ServerProcess.Start(new[]
                { "--bind", "127.0.0.1:0", "--bind", "unix:" + path, "--forwarded-allow-ips", allow, EchoApp });
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                { ReceiveTimeout = 30_000 };
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(Encoding.ASCII.GetBytes("GET /x HTTP/1.1\r\nHost: localhost\r\n" +
                "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"));
            var buffer = new MemoryStream();
            var chunk = new byte[65536];
            int n;
            while ((n = socket.Receive(chunk)) > 0) buffer.Write(chunk, 0, n);
            var env = Environ(Parse(buffer.ToArray()));
            Assert.Equal(trusted ? "203.0.113.7" : "", env.Str("REMOTE_ADDR"));
            Assert.Equal(trusted ? "https" : "http", env.Str("wsgi.url_scheme"));
            if (trusted) Assert.Equal("", env.Str("sharpwsgi.proxy_addr"));
            else Assert.False(env.TryGetProperty("sharpwsgi.proxy_addr", out _));
        }
        finally { System.IO.Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Forwarded_SecureSchemeHeadersNotPairs_StartupFails()
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--secure-scheme-headers", "X-Forwarded-Proto", EchoApp },
            timeout: TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, code);
        Assert.Contains("NAME=VALUE", output);
    }

    // ---- real nginx terminating TLS -------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Forwarded_NginxTls_FlaskBuildsHttpsUrlsAndSeesClient(bool overUnixSocket)
    {
        var json = await ThroughNginx(overUnixSocket);
        var port = overUnixSocket ? _servers.Nginx.UnixPort : _servers.Nginx.TcpPort;
        Assert.Equal($"https://localhost:{port}/x", json.Str("url"));
        Assert.Equal("127.0.0.2", json.Str("remote_addr"));
        Assert.Equal("0", json.Str("remote_port"));
        Assert.Equal("https", json.Str("scheme"));
        Assert.True(json.GetProperty("is_secure").GetBoolean());
        Assert.Equal("on", json.Str("https"));
        Assert.Equal("127.0.0.2", json.Str("x_forwarded_for"));
        // nginx's own address over TCP; a unix socket has none.
        Assert.Equal(overUnixSocket ? "" : "127.0.0.1", json.Str("proxy_addr"));
    }

    /// <summary>nginx's $proxy_add_x_forwarded_for appends the address it saw to what the client sent, so the app
    /// gets "6.6.6.6, 127.0.0.2"; read from the right, 127.0.0.2 is the first address that is not a trusted proxy,
    /// so it is the client, and the spoofed 6.6.6.6 stays only in the header.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Forwarded_NginxClientSpoofsXff_AppSeesRealClient(bool overUnixSocket)
    {
        var json = await ThroughNginx(overUnixSocket, ("X-Forwarded-For", "6.6.6.6"));
        Assert.Equal("127.0.0.2", json.Str("remote_addr"));
        Assert.Equal("6.6.6.6, 127.0.0.2", json.Str("x_forwarded_for"));
        Assert.StartsWith("https://", json.Str("url"));
    }

    /// <summary>The headers nginx does not set are cleared by the config, so a client cannot use them either.
    /// </summary>
    [Fact]
    public async Task Forwarded_NginxClientSpoofsOtherHeaders_Cleared()
    {
        var json = await ThroughNginx(false, ("Forwarded", "for=6.6.6.6;proto=http"), ("X-Forwarded-Ssl", "off"),
            ("X-Forwarded-Protocol", "plain"));
        Assert.Equal("127.0.0.2", json.Str("remote_addr"));
        Assert.Equal("https", json.Str("scheme"));
        Assert.Null(json.Str("forwarded"));
    }

    [Fact]
    public void Forwarded_DirectClientNotTrusted_SpoofChangesNothing()
    {
        var flask = _servers.Nginx.Flask;
        var (r, localPort) = RawGet(flask.Port, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n",
            from: ClientAddress);
        Assert.Equal(200, r.Status);
        var json = JsonDocument.Parse(r.Body).RootElement;
        Assert.Equal("127.0.0.2", json.Str("remote_addr"));
        Assert.Equal(localPort.ToString(), json.Str("remote_port"));
        Assert.Equal("http", json.Str("scheme"));
        Assert.StartsWith("http://", json.Str("url"));
        Assert.Null(json.Str("proxy_addr"));
        Assert.Equal("6.6.6.6", json.Str("x_forwarded_for"));
    }
}
