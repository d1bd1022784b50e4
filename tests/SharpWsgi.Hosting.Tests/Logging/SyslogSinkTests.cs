using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using SharpWsgi.Logging;

namespace SharpWsgi.Hosting.Tests.Logging;

/// <summary>--log-syslog's addresses, tags and framing, against sockets the test owns (the functional tests meet
/// Debian's rsyslog).</summary>
public sealed class SyslogSinkTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("unix:///dev/log", SyslogTransport.UnixAny, "/dev/log", 0)]
    [InlineData("unix:///run/log.sock#dgram", SyslogTransport.UnixDatagram, "/run/log.sock", 0)]
    [InlineData("unix:///run/log.sock#stream", SyslogTransport.UnixStream, "/run/log.sock", 0)]
    [InlineData("udp://logs.example:5140", SyslogTransport.Udp, "logs.example", 5140)]
    [InlineData("udp://127.0.0.1", SyslogTransport.Udp, "127.0.0.1", 514)]
    [InlineData("udp://", SyslogTransport.Udp, "localhost", 514)]
    [InlineData("tcp://[::1]:601", SyslogTransport.Tcp, "::1", 601)]
    public void Parse_GunicornsSpellings_TransportHostAndPort(string text, SyslogTransport transport, string where,
        int port)
    {
        var address = SyslogAddress.Parse(text);
        Assert.Equal(transport, address.Transport);
        Assert.Equal(where, address.PathOrHost);
        Assert.Equal(port, address.Port);
    }

    [Theory]
    [InlineData("/dev/log", "expected unix://PATH")]
    [InlineData("unix://", "needs a socket path")]
    [InlineData("unix:///dev/log#seqpacket", "#dgram or #stream")]
    [InlineData("udp://host:http", "not a port number")]
    [InlineData("tcp://host:70000", "not a port number")]
    [InlineData("udp://::1:514", "brackets")]
    public void Validate_BadAddress_SaysWhy(string text, string why)
    {
        Assert.Contains(why, SyslogAddress.Validate(text));
    }

    [Theory]
    [InlineData("myapp", null, "x:app", "myapp")]
    [InlineData(null, "shop", "x:app", "shop")]
    [InlineData(null, null, "myapp.wsgi:application", "myapp.wsgi.application")]
    [InlineData(null, null, "apps/site.py", "apps.site.py")]
    [InlineData(null, null, "paste:/srv/app/production.ini#main", "production.ini")]
    [InlineData(null, null, null, "sharpwsgi")]
    public void Prefix_LikeGunicornsProcName_OneWordForSyslog(string? prefix, string? name, string? app,
        string expected)
    {
        Assert.Equal(expected, SyslogFormat.Prefix(prefix, name, app));
    }

    [Fact]
    public void Header_FacilityAndSeverity_PriAndTagAsPythonComputesThem()
    {
        // local3 (19) * 8 + err (3) = 155, as SysLogHandler.encodePriority("local3", "error").
        var header = SyslogFormat.Header(SyslogFormat.FacilityCode("local3"), SyslogFormat.Severity(LogLevel.Error),
            "myapp", "error", 42);
        Assert.Equal("<155>gunicorn.myapp.error[42]: ", Encoding.ASCII.GetString(header));
    }

    [Fact]
    public void Error_UnixDatagramSocket_OneDatagramPerMessageWithNewlinesKept()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-syslog-{Guid.NewGuid():N}.sock");
        using var daemon = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        daemon.Bind(new UnixDomainSocketEndPoint(path));
        daemon.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        try
        {
            var reports = new List<string>();
            using (var sink = new SyslogSink(SyslogAddress.Parse("unix://" + path), "user", "t", Report(reports)))
            {
                sink.Error(LogLevel.Warning, "first");
                sink.Error(LogLevel.Critical, "second\nwith a traceback line");
                sink.AccessLines.Write("127.0.0.1 - - \"GET / HTTP/1.1\" 200 2\n"u8);
            }
            var pid = Environment.ProcessId;
            Assert.Equal($"<12>gunicorn.t.error[{pid}]: first", Receive(daemon));
            Assert.Equal($"<10>gunicorn.t.error[{pid}]: second\nwith a traceback line", Receive(daemon));
            Assert.Equal($"<14>gunicorn.t.access[{pid}]: 127.0.0.1 - - \"GET / HTTP/1.1\" 200 2", Receive(daemon));
            Assert.Empty(reports);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Error_Tcp_OctetCountedFrames()
    {
        using var daemon = new TcpListener(IPAddress.Loopback, 0);
        daemon.Start();
        var port = ((IPEndPoint)daemon.LocalEndpoint).Port;
        var reports = new List<string>();
        using (var sink = new SyslogSink(SyslogAddress.Parse($"tcp://127.0.0.1:{port}"), "daemon", "t",
                   Report(reports)))
        {
            sink.Error(LogLevel.Information, "one\ntwo");
            sink.Error(LogLevel.Error, "three");
        }
        using var connection = daemon.AcceptTcpClient();
        connection.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        var received = ReadToEnd(connection.GetStream());
        var pid = Environment.ProcessId;
        var first = $"<30>gunicorn.t.error[{pid}]: one\ntwo";
        var second = $"<27>gunicorn.t.error[{pid}]: three";
        Assert.Equal($"{first.Length} {first}{second.Length} {second}", received);
        Assert.Empty(reports);
    }

    [Fact]
    public void Error_NoDaemon_SaidOnceAndNothingThrown()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-nobody-{Guid.NewGuid():N}.sock");
        var reports = new List<string>();
        using (var sink = new SyslogSink(SyslogAddress.Parse("unix://" + path), "user", "t", Report(reports)))
        {
            for (var i = 0; i < 5; i++) sink.Error(LogLevel.Error, "lost " + i);
        }
        var report = Assert.Single(reports);
        Assert.Contains($"cannot send to unix://{path}", report);
    }

    private static Action<string> Report(List<string> reports) => message =>
    {
        lock (reports) reports.Add(message);
    };

    private static string Receive(Socket socket)
    {
        var buffer = new byte[65536];
        var n = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static string ReadToEnd(Stream stream)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd(); // the sink closed its connection when disposed
    }
}
