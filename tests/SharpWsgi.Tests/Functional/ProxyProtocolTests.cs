using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using SharpWsgi.Testing;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>echo_environ.py behind --proxy-protocol; app calls are counted from the file the app appends to.</summary>
public sealed class ProxiedServer : IDisposable
{
    private readonly string _callsFile =
        Path.Combine(Path.GetTempPath(), $"sharpwsgi-pp-calls-{Guid.NewGuid():N}.log");

    public ServerProcess Server { get; }
    public int Port => Server.Port;

    public ProxiedServer(IEnumerable<string> args) =>
        Server = ServerProcess.Start(args.Append(Path.Combine(ServerProcess.AppsDir, "echo_environ.py")),
            new Dictionary<string, string?> { ["ECHO_ENVIRON_CALLS"] = _callsFile });

    /// <summary>Every call the app has seen so far (one line per call).</summary>
    public int Calls => File.Exists(_callsFile) ? File.ReadAllLines(_callsFile).Length : 0;

    /// <summary>Waits for the middleware's one-line reason for closing the connection from this client port.
    /// </summary>
    public string WaitForRejection(int clientPort, string reason) =>
        Server.WaitForOutput($@"PROXY protocol: closed a connection from [^ ]*:{clientPort}: .*{reason}");

    public void Dispose()
    {
        Server.Dispose();
        File.Delete(_callsFile);
    }
}

/// <summary>One server per configuration, started on first use and shared by the tests of a class.</summary>
public sealed class ProxiedServers : IDisposable
{
    private readonly Dictionary<string, ProxiedServer> _servers = new();
    private readonly Lazy<TestCertificates> _certificates = new(() => new TestCertificates());

    public TestCertificates Certificates => _certificates.Value;

    public ProxiedServer Get(params string[] args)
    {
        var key = string.Join(' ', args);
        lock (_servers)
        {
            if (!_servers.TryGetValue(key, out var server)) _servers[key] = server = new ProxiedServer(args);
            return server;
        }
    }

    public ProxiedServer Tls(params string[] args) =>
        Get(args.Concat(new[] { "--certfile", Certificates.ServerCert, "--keyfile", Certificates.ServerKey })
            .ToArray());

    public void Dispose()
    {
        foreach (var server in _servers.Values) server.Dispose();
        if (_certificates.IsValueCreated) _certificates.Value.Dispose();
    }
}

/// <summary>
/// PROXY protocol v1/v2 against the real server over real sockets: raw headers, then HAProxy (send-proxy,
/// send-proxy-v2, to TCP and to a unix socket) and nginx's stream proxy_protocol in front.
/// </summary>
public sealed class ProxyProtocolTests : IClassFixture<ProxiedServers>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);
    private readonly ProxiedServers _servers;
    private readonly ITestOutputHelper _out;

    public ProxyProtocolTests(ProxiedServers servers, ITestOutputHelper output)
    {
        _servers = servers;
        _out = output;
    }

    private ProxiedServer On => _servers.Get("--proxy-protocol", "on");
    private ProxiedServer Optional => _servers.Get("--proxy-protocol", "optional");

    private const string Request = "GET /who HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";

    private static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    private static byte[] V2Inet4(string source, string destination, int sourcePort, int destPort) =>
        ProxyHeaders.V2(0x21, 0x11,
            ProxyHeaders.Inet4Block(source, destination, sourcePort, destPort));

    /// <summary>Sends the bytes on a new connection; returns the echoed environ and the client's local port.
    /// </summary>
    private static (JsonElement Environ, int ClientPort) Echo(int port, byte[] bytes)
    {
        using var conn = new RawHttp(port, Timeout);
        conn.Send(bytes);
        var response = conn.ReadResponse();
        Assert.True(response.Status == 200, $"expected the app's 200, got {response.StatusLine}: {response.BodyText}");
        return (Http.Environ(response), LocalPort(conn.Socket));
    }

    private static int LocalPort(Socket socket) => ((IPEndPoint)socket.LocalEndPoint!).Port;

    /// <summary>Sends the bytes; the server must close the connection without a byte of response, log why, and
    /// the app must not have run.</summary>
    private void AssertClosed(ProxiedServer server, byte[] bytes, string reason, bool halfClose = false)
    {
        var callsBefore = server.Calls;
        using var conn = new RawHttp(server.Port, Timeout);
        // A peer refused on sight may be gone before the bytes are written: a failed write is a close too.
        try { conn.Send(bytes); }
        catch (IOException e) when (e.InnerException is SocketException) { }
        if (halfClose) conn.Socket.Shutdown(SocketShutdown.Send);
        var answer = conn.ReadToEnd();
        Assert.True(answer.Length == 0, "expected a close, got: " + Encoding.Latin1.GetString(answer));
        _out.WriteLine(server.WaitForRejection(LocalPort(conn.Socket), reason));
        Assert.Equal(callsBefore, server.Calls);
    }

    // ---- raw headers ----------------------------------------------------------------------------------------

    [Fact]
    public void V1Header_On_AppSeesProxySourceAsRemote()
    {
        var (env, _) = Echo(On.Port, Bytes("PROXY TCP4 203.0.113.7 198.51.100.2 40001 8443\r\n" + Request));
        Assert.Equal("203.0.113.7", env.Str("REMOTE_ADDR"));
        Assert.Equal("40001", env.Str("REMOTE_PORT"));
        Assert.Equal("app.test", env.Str("SERVER_NAME")); // Host wins over the PROXY destination
        Assert.Equal("80", env.Str("SERVER_PORT"));
    }

    [Fact]
    public void V1Header_NoHostHeader_ServerNameAndPortFromProxyDestination()
    {
        var (env, _) = Echo(On.Port, Bytes("PROXY TCP4 203.0.113.7 198.51.100.2 40001 8443\r\nGET / HTTP/1.0\r\n\r\n"));
        Assert.Equal("198.51.100.2", env.Str("SERVER_NAME"));
        Assert.Equal("8443", env.Str("SERVER_PORT"));
    }

    [Fact]
    public void V1Tcp6Header_On_AppSeesIPv6Source()
    {
        var (env, _) = Echo(On.Port, Bytes("PROXY TCP6 2001:db8::7 2001:db8::2 40002 443\r\n" + Request));
        Assert.Equal("2001:db8::7", env.Str("REMOTE_ADDR"));
        Assert.Equal("40002", env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void V2Header_IPv4WithTlvs_AppSeesProxySource()
    {
        var block = ProxyHeaders.Inet4Block("192.0.2.55", "192.0.2.1", 50123, 443)
            .Concat(new byte[] { 0x02, 0, 8 }).Concat(Bytes("app.test")) // PP2_TYPE_AUTHORITY
            .Concat(new byte[] { 0x04, 0, 2, 0, 0 }).ToArray(); // PP2_TYPE_NOOP
        var header = ProxyHeaders.V2(0x21, 0x11, block);
        var (env, _) = Echo(On.Port, header.Concat(Bytes(Request)).ToArray());
        Assert.Equal("192.0.2.55", env.Str("REMOTE_ADDR"));
        Assert.Equal("50123", env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void V2Header_IPv6_AppSeesProxySource()
    {
        var block = IPAddress.Parse("2001:db8::55").GetAddressBytes()
            .Concat(IPAddress.Parse("2001:db8::1").GetAddressBytes())
            .Concat(new byte[] { 0xC3, 0x50, 0x01, 0xBB }).ToArray(); // ports 50000, 443
        var (env, _) = Echo(On.Port,
            ProxyHeaders.V2(0x21, 0x21, block).Concat(Bytes(Request)).ToArray());
        Assert.Equal("2001:db8::55", env.Str("REMOTE_ADDR"));
        Assert.Equal("50000", env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void V2Local_On_ServedWithTheRealPeer()
    {
        var local = ProxyHeaders.V2(0x20, 0x00, Array.Empty<byte>());
        var (env, clientPort) = Echo(On.Port, local.Concat(Bytes(Request)).ToArray());
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(clientPort.ToString(), env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void V1Unknown_On_ServedWithTheRealPeer()
    {
        var (env, clientPort) = Echo(On.Port, Bytes("PROXY UNKNOWN\r\n" + Request));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(clientPort.ToString(), env.Str("REMOTE_PORT"));
    }

    /// <summary>Header and two pipelined requests in one write: exactly the header is consumed, and every request
    /// of the connection sees the PROXY source.</summary>
    [Fact]
    public void HeaderThenPipelinedRequests_EveryRequestSeesProxySource()
    {
        using var conn = new RawHttp(On.Port, Timeout);
        conn.Send(Bytes("PROXY TCP4 203.0.113.9 198.51.100.2 40009 80\r\n" +
            "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
        foreach (var path in new[] { "/one", "/two" })
        {
            var env = Http.Environ(conn.ReadResponse());
            Assert.Equal(path, env.Str("PATH_INFO"));
            Assert.Equal("203.0.113.9", env.Str("REMOTE_ADDR"));
            Assert.Equal("40009", env.Str("REMOTE_PORT"));
        }
    }

    [Fact]
    public void HeaderByteByByte_On_AppSeesProxySource()
    {
        using var conn = new RawHttp(On.Port, Timeout);
        foreach (var b in V2Inet4("192.0.2.77", "192.0.2.1", 1234, 80)) conn.Send(new[] { b });
        conn.Send(Bytes(Request));
        var env = Http.Environ(conn.ReadResponse());
        Assert.Equal("192.0.2.77", env.Str("REMOTE_ADDR"));
        Assert.Equal("1234", env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void MissingHeader_On_ClosedWithoutReachingTheApp() =>
        AssertClosed(On, Bytes(Request), "no PROXY header");

    [Fact]
    public void NoHeader_Optional_ServedWithTheRealPeer()
    {
        var (env, clientPort) = Echo(Optional.Port, Bytes(Request));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(clientPort.ToString(), env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void Header_Optional_AppSeesProxySource()
    {
        var (env, _) = Echo(Optional.Port, Bytes("PROXY TCP4 203.0.113.8 198.51.100.2 40008 80\r\n" + Request));
        Assert.Equal("203.0.113.8", env.Str("REMOTE_ADDR"));
    }

    [Fact]
    public void NotAllowedPeer_On_EveryConnectionClosed()
    {
        var server = _servers.Get("--proxy-protocol", "on", "--proxy-allow-from", "10.9.9.9");
        AssertClosed(server, Bytes("PROXY TCP4 203.0.113.7 198.51.100.2 40001 80\r\n" + Request),
            "peer not in --proxy-allow-from");
        AssertClosed(server, Bytes(Request), "peer not in --proxy-allow-from");
    }

    [Fact]
    public void NotAllowedPeer_Optional_HeaderClosedPlainServed()
    {
        var server = _servers.Get("--proxy-protocol", "optional", "--proxy-allow-from", "10.9.9.0/24,::2");
        AssertClosed(server, Bytes("PROXY TCP4 203.0.113.7 198.51.100.2 40001 80\r\n" + Request),
            "PROXY header from a peer not in --proxy-allow-from");
        AssertClosed(server, V2Inet4("203.0.113.7", "198.51.100.2", 40001, 80).Concat(Bytes(Request)).ToArray(),
            "PROXY header from a peer not in --proxy-allow-from");
        var (env, clientPort) = Echo(server.Port, Bytes(Request));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(clientPort.ToString(), env.Str("REMOTE_PORT"));
    }

    public static IEnumerable<object[]> Malformed => new[]
    {
        new object[] { "v1 bad address", Bytes("PROXY TCP4 300.1.1.1 198.51.100.2 40001 80\r\n" + Request) },
        new object[] { "v1 bad port", Bytes("PROXY TCP4 203.0.113.7 198.51.100.2 99999 80\r\n" + Request) },
        new object[] { "v1 bare LF", Bytes("PROXY TCP4 203.0.113.7 198.51.100.2 40001 80\n" + Request) },
        new object[] { "v1 no CRLF in 107 bytes", Bytes("PROXY UNKNOWN " + new string('x', 200) + "\r\n") },
        new object[] { "v2 version 3", ProxyHeaders.V2(0x31, 0x11, new byte[12]) },
        new object[] { "v2 DGRAM", ProxyHeaders.V2(0x21, 0x12, new byte[12]) },
        new object[] { "v2 short block", ProxyHeaders.V2(0x21, 0x11, new byte[8]) },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedHeader_On_ClosedWithoutReachingTheApp(string what, byte[] bytes)
    {
        _out.WriteLine(what);
        AssertClosed(On, bytes, "malformed PROXY header");
    }

    [Theory]
    [InlineData("PROXY TCP4 203.0.113.7 198.51")]
    [InlineData("PROX")]
    [InlineData("\r\n\r\n\0\r\nQUIT\n!\u0011\0\u000c\u00c0\u00a8")]
    public void TruncatedHeader_ClientHalfCloses_Closed(string start)
    {
        AssertClosed(On, Bytes(start), "truncated PROXY header", halfClose: true);
        AssertClosed(Optional, Bytes(start), "truncated PROXY header", halfClose: true);
    }

    [Fact]
    public void StalledHeader_PastHeaderTimeout_Closed()
    {
        var server = _servers.Get("--proxy-protocol", "on", "--header-timeout", "1");
        AssertClosed(server, Bytes("PROXY TCP4 203.0.113.7"), "within --header-timeout");
    }

    // ---- TLS and HTTP/2 after the header ----------------------------------------------------------------------

    [Fact]
    public void HeaderBeforeTls_On_AppSeesProxySourceOverHttps()
    {
        var env = EchoOverTls(_servers.Tls("--proxy-protocol", "on"),
            V2Inet4("198.51.100.77", "192.0.2.1", 61000, 443), out _);
        Assert.Equal("https", env.Str("wsgi.url_scheme"));
        Assert.Equal("198.51.100.77", env.Str("REMOTE_ADDR"));
        Assert.Equal("61000", env.Str("REMOTE_PORT"));
    }

    [Fact]
    public void TlsWithoutHeader_Optional_ServedWithTheRealPeer()
    {
        var env = EchoOverTls(_servers.Tls("--proxy-protocol", "optional"), Array.Empty<byte>(), out var clientPort);
        Assert.Equal("https", env.Str("wsgi.url_scheme"));
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(clientPort.ToString(), env.Str("REMOTE_PORT"));
    }

    /// <summary>Writes the PROXY header in clear, then speaks HTTP/1.1 over TLS; returns the echoed environ.</summary>
    private static JsonElement EchoOverTls(ProxiedServer server, byte[] header, out int clientPort)
    {
        using var tcp = new TcpClient { NoDelay = true };
        tcp.Connect(IPAddress.Loopback, server.Port);
        clientPort = LocalPort(tcp.Client);
        var network = tcp.GetStream();
        network.Write(header);
        using var tls = new SslStream(network, false, (_, _, _, _) => true);
        tls.AuthenticateAsClient(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = new List<SslApplicationProtocol> { SslApplicationProtocol.Http11 },
        });
        tls.Write(Bytes(Request));
        var response = new MemoryStream();
        tls.CopyTo(response);
        var text = Encoding.Latin1.GetString(response.ToArray());
        Assert.StartsWith("HTTP/1.1 200", text);
        return JsonDocument.Parse(text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]).RootElement
            .GetProperty("environ").Clone();
    }

    /// <summary>HTTP/2 by ALPN over TLS and prior-knowledge h2c, each after a PROXY header the client's connect
    /// callback writes first.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Http2AfterHeader_On_AppSeesProxySource(bool tls)
    {
        var server = tls ? _servers.Tls("--proxy-protocol", "on") : On;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancel) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(IPAddress.Loopback, server.Port, cancel);
                await socket.SendAsync(Bytes("PROXY TCP4 198.51.100.88 192.0.2.1 62000 443\r\n"), cancel);
                return new NetworkStream(socket, ownsSocket: true);
            },
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        using var client = new HttpClient(handler)
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Timeout,
        };
        var body = await client.GetStringAsync($"{(tls ? "https" : "http")}://localhost:{server.Port}/h2");
        var env = JsonDocument.Parse(body).RootElement.GetProperty("environ");
        Assert.Equal("HTTP/2", env.Str("SERVER_PROTOCOL"));
        Assert.Equal("198.51.100.88", env.Str("REMOTE_ADDR"));
        Assert.Equal("62000", env.Str("REMOTE_PORT"));
    }

    // ---- real proxies in front --------------------------------------------------------------------------------

    /// <summary>HAProxy's TCP-mode config in front of SharpWsgi (also quoted in docs/edge.md).</summary>
    public static string HAProxyConfig(int listenPort, string server, string sendProxy) => $"""
        global
            maxconn 256
        defaults
            mode tcp
            timeout connect 5s
            timeout client 30s
            timeout server 30s
        listen edge
            bind 127.0.0.1:{listenPort}
            server app {server} {sendProxy}
        """ + "\n";

    /// <summary>nginx's stream proxy in front of SharpWsgi (also quoted in docs/edge.md).</summary>
    public static string NginxStreamConfig(int listenPort, int serverPort) => $$"""
        stream {
            server {
                listen 127.0.0.1:{{listenPort}};
                proxy_pass 127.0.0.1:{{serverPort}};
                proxy_protocol on;
            }
        }
        """ + "\n";

    /// <summary>Through the proxy the app sees the client's own socket: 127.0.0.1 and its local port; with no Host,
    /// SERVER_NAME/SERVER_PORT are the proxy's listening address (the PROXY destination).</summary>
    private void AssertClientSeenThrough(int proxyPort)
    {
        var (env, clientPort) = Echo(proxyPort, Bytes("GET /through HTTP/1.0\r\n\r\n"));
        _out.WriteLine($"client port {clientPort}: REMOTE_ADDR={env.Str("REMOTE_ADDR")} " +
            $"REMOTE_PORT={env.Str("REMOTE_PORT")} SERVER_NAME={env.Str("SERVER_NAME")} " +
            $"SERVER_PORT={env.Str("SERVER_PORT")}");
        Assert.Equal("127.0.0.1", env.Str("REMOTE_ADDR"));
        Assert.Equal(clientPort.ToString(), env.Str("REMOTE_PORT"));
        Assert.Equal("127.0.0.1", env.Str("SERVER_NAME"));
        Assert.Equal(proxyPort.ToString(), env.Str("SERVER_PORT"));
    }

    [Theory]
    [InlineData("send-proxy-v2")]
    [InlineData("send-proxy")]
    public void HAProxyInFront_On_AppSeesTheClient(string sendProxy)
    {
        var server = On;
        var dir = ExternalServer.NewDirectory("haproxy-pp");
        var port = ExternalServer.FreePort();
        using var haproxy = ExternalServer.HAProxy(dir, HAProxyConfig(port, $"127.0.0.1:{server.Port}", sendProxy),
            port);
        AssertClientSeenThrough(port);
    }

    [Fact]
    public void HAProxyInFront_UnixSocketBind_AppSeesTheClient()
    {
        var dir = ExternalServer.NewDirectory("haproxy-pp-unix");
        var socket = Path.Combine(dir, "app.sock");
        // Allowed peers name no one: a unix socket has no IP peer and is always allowed.
        using var server = new ProxiedServer(new[] { "--bind", "127.0.0.1:0", "--bind", "unix:" + socket,
            "--proxy-protocol", "on", "--proxy-allow-from", "10.9.9.9" });
        var port = ExternalServer.FreePort();
        using var haproxy = ExternalServer.HAProxy(dir, HAProxyConfig(port, "unix@" + socket, "send-proxy-v2"),
            port);
        AssertClientSeenThrough(port);
    }

    [Fact]
    public void NginxStreamInFront_On_AppSeesTheClient()
    {
        var server = On;
        var dir = ExternalServer.NewDirectory("nginx-pp");
        var port = ExternalServer.FreePort();
        using var nginx = ExternalServer.Nginx(dir, NginxStreamConfig(port, server.Port), port, "stream");
        AssertClientSeenThrough(port);
    }
}
