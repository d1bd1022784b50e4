using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting.Tests.Metrics;

/// <summary>--statsd-host's addresses, names and packets, against sockets the test owns (the functional tests meet
/// the statsd daemon itself).</summary>
public sealed class StatsdSinkTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("127.0.0.1:9125", false, "127.0.0.1", 9125)]
    [InlineData("statsd", false, "statsd", 8125)]
    [InlineData("[::1]:8125", false, "::1", 8125)]
    [InlineData("unix:///run/statsd.sock", true, "/run/statsd.sock", 0)]
    [InlineData("unix:/run/statsd.sock", true, "/run/statsd.sock", 0)]
    [InlineData("unix:8125", false, "unix", 8125)] // gunicorn: the host named unix, not a path
    public void Parse_GunicornsSpellings_HostPortOrPath(string text, bool unix, string where, int port)
    {
        var address = StatsdAddress.Parse(text);
        Assert.Equal(unix, address.IsUnix);
        Assert.Equal(where, address.PathOrHost);
        Assert.Equal(port, address.Port);
    }

    [Theory]
    [InlineData("udp://127.0.0.1:8125")]
    [InlineData("host:port")]
    [InlineData("unix://")]
    public void Validate_BadAddress_SaysWhatIsExpected(string text)
    {
        Assert.Contains("expected HOST:PORT or unix://PATH", StatsdAddress.Validate(text));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("app", "app.")]
    [InlineData("app.", "app.")]
    [InlineData("app..", "app.")]
    [InlineData("a", "a.")]
    [InlineData("shop.web", "shop.web.")]
    public void NormalizePrefix_GunicornsRule_OneDotAfter(string prefix, string expected)
    {
        Assert.Equal(expected, StatsdSink.NormalizePrefix(prefix));
    }

    [Theory]
    [InlineData("app:x")]
    [InlineData("app|x")]
    [InlineData("app x")]
    [InlineData("caf\u00e9")]
    public void ValidatePrefix_StatsdSeparatorsOrNonAscii_Refused(string prefix)
    {
        Assert.NotNull(StatsdSink.ValidatePrefix(prefix));
    }

    [Fact]
    public void ValidateTags_DogStatsDTags_AcceptedAndPipeRefused()
    {
        Assert.Null(StatsdSink.ValidateTags("env:prod,service:shop,canary"));
        Assert.NotNull(StatsdSink.ValidateTags("env:prod|x"));
        Assert.NotNull(StatsdSink.ValidateTags("env: prod"));
    }

    [Fact]
    public void RequestDone_ManyRequests_GunicornLinesPackedIntoDatagramsThatFitAFrame()
    {
        using var statsd = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        statsd.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        statsd.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        var port = ((IPEndPoint)statsd.LocalEndPoint!).Port;
        var reports = new List<string>();
        const int requests = 100;
        using (var sink = new StatsdSink(StatsdAddress.Parse($"127.0.0.1:{port}"), "app", "env:test",
                   m => { lock (reports) reports.Add(m); }))
        {
            for (var i = 0; i < requests; i++)
                sink.RequestDone(i % 10 == 0 ? 404 : 200, Stopwatch.Frequency / 1000 * 12 + Stopwatch.Frequency / 4000);
            sink.CountLogLine(LogLevel.Error, traceback: true);
            sink.CountLogLine(LogLevel.Warning, traceback: false);
            sink.CountLogLine(LogLevel.Information, traceback: false); // not one of gunicorn's counters
        } // disposing sends what is queued

        var lines = new List<string>();
        var buffer = new byte[65536];
        while (lines.Count < requests * 3 + 2)
        {
            var n = statsd.Receive(buffer);
            Assert.True(n <= StatsdSink.MaxPacketBytes, $"a datagram of {n} bytes");
            lines.AddRange(Encoding.ASCII.GetString(buffer, 0, n).Split('\n'));
        }
        Assert.Equal(requests, lines.Count(l => l == "app.gunicorn.request.duration:12.250|ms|#env:test"));
        Assert.Equal(requests, lines.Count(l => l == "app.gunicorn.requests:1|c|#env:test"));
        Assert.Equal(90, lines.Count(l => l == "app.gunicorn.request.status.200:1|c|#env:test"));
        Assert.Equal(10, lines.Count(l => l == "app.gunicorn.request.status.404:1|c|#env:test"));
        Assert.Contains("app.gunicorn.log.exception:1|c|#env:test", lines);
        Assert.Contains("app.gunicorn.log.warning:1|c|#env:test", lines);
        Assert.Equal(requests * 3 + 2, lines.Count);
        Assert.Empty(reports);
    }

    [Fact]
    public void Workers_UnixDatagramSocket_GaugeSentOnChangeOnly()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-statsd-{Guid.NewGuid():N}.sock");
        using var statsd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        statsd.Bind(new UnixDomainSocketEndPoint(path));
        statsd.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        try
        {
            using (var sink = new StatsdSink(StatsdAddress.Parse("unix://" + path), "", null, _ => { }))
            {
                sink.Workers(2);
                sink.Workers(2);
                sink.Workers(3);
            }
            var received = new StringBuilder();
            var buffer = new byte[4096];
            while (statsd.Available > 0 || received.Length == 0)
                received.Append(Encoding.ASCII.GetString(buffer, 0, statsd.Receive(buffer))).Append('\n');
            Assert.Equal("gunicorn.workers:2|g\ngunicorn.workers:3|g\n", received.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
