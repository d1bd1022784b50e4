using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --log-syslog (gunicorn's flags: --log-syslog-to, --log-syslog-prefix, --log-syslog-facility,
/// --disable-redirect-access-to-syslog) against Debian's rsyslogd, run by each test on a unix socket in its own
/// directory or on 127.0.0.1 ports the kernel picked: what rsyslog parsed out of each message (priority, tag,
/// program name, process id, text) is what it wrote to its file.
/// </summary>
public sealed class SyslogTests
{
    private static string App => MetricsTests.App;
    private readonly ITestOutputHelper _out;
    public SyslogTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void LogSyslog_UnixSocket_ErrorAndAccessLinesUnderGunicornsTagsFromEachProcess()
    {
        using var rsyslog = Rsyslog.Start();
        using var server = ServerProcess.Start(new[]
        {
            "--log-syslog", "--log-syslog-to", "unix://" + rsyslog.Socket, "--log-syslog-prefix", "shop",
            "--log-syslog-facility", "local3", "--access-logfile", "-", App,
        });
        try
        {
            Assert.Equal(200, Http.Get(server.Port, "/").Status);
            Assert.Equal(500, Http.Get(server.Port, "/raise").Status);
            var messages = rsyslog.WaitFor("gunicorn.shop.", m =>
                    m.Count(x => x.ProgramName == "gunicorn.shop.access") == 2 &&
                    m.Any(x => x.Text.Contains("Error handling request GET /raise")),
                "two access lines and the app's error");

            // The supervisor's own line, at info (local3 = 19: PRI 19 * 8 + 6), its pid as the process id.
            var listening = Assert.Single(messages, m => m.Text.StartsWith("Listening at: "));
            Assert.Equal(158, listening.Pri);
            Assert.Equal(("local3", "info"), (listening.Facility, listening.Severity));
            Assert.Equal($"gunicorn.shop.error[{server.Pid}]:", listening.Tag);
            Assert.Equal("gunicorn.shop.error", listening.ProgramName);
            Assert.Equal(server.Pid.ToString(), listening.ProcId);

            // The worker's lines: the access lines exactly as the access log printed them, at info.
            var access = messages.Where(m => m.ProgramName == "gunicorn.shop.access").ToList();
            var worker = access[0].ProcId;
            Assert.NotEqual(server.Pid.ToString(), worker);
            Assert.All(access, m => Assert.Equal(("local3", "info", worker), (m.Facility, m.Severity, m.ProcId)));
            // (The access log's own writer batches on its own time: its line may come after syslog's.)
            foreach (var m in access) server.WaitForOutput("^" + Regex.Escape(m.Text) + "$");
            Assert.Matches(@"^127\.0\.0\.1 - - \[[^]]+\] ""GET / HTTP/1\.1"" 200 10 ""-"" ""-""$", access[0].Text);

            // The app's exception: one message at err, its traceback inside (rsyslog shows newlines as #012).
            var error = Assert.Single(messages, m => m.Text.Contains("Error handling request GET /raise"));
            Assert.Equal(("err", worker), (error.Severity, error.ProcId));
            Assert.Contains("#012Traceback (most recent call last):", error.Text);
            Assert.EndsWith("RuntimeError: metrics test: the app raised", error.Text);
        }
        finally
        {
            _out.WriteLine(server.Output);
            _out.WriteLine("--- rsyslogd:\n" + rsyslog.Output);
        }
    }

    [Fact]
    public void LogSyslog_UdpWithoutAccessLines_ErrorLogOnlyAndTheLastLinesOfEachProcess()
    {
        using var rsyslog = Rsyslog.Start();
        using var server = ServerProcess.Start(new[]
        {
            "--log-syslog", "--log-syslog-to", $"udp://127.0.0.1:{rsyslog.UdpPort}",
            "--disable-redirect-access-to-syslog", "--access-logfile", "-", App,
        });
        try
        {
            Assert.Equal(200, Http.Get(server.Port, "/").Status);
            Signals.Send(server.Pid, Signals.SIGTERM);
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(30)));
            // The default prefix is the APP (gunicorn's proc_name), '/' and ':' made '.'.
            var program = "gunicorn." + App.TrimStart('/').Replace('/', '.') + ".error";
            var messages = rsyslog.WaitFor("gunicorn.", m =>
                    m.Any(x => x.Text == "Shutting down: Master") && m.Any(x => x.Text.StartsWith("Worker exiting")),
                "the supervisor's and the worker's last lines");
            // Each process sent what it logged before it exited (its queue is flushed on the way out).
            Assert.All(messages, m => Assert.Equal(program, m.ProgramName));
            Assert.DoesNotContain(messages, m => m.ProgramName.EndsWith(".access"));
            Assert.Contains("\"GET / HTTP/1.1\" 200", server.Output); // the access log itself still has it
        }
        finally
        {
            _out.WriteLine(server.Output);
            _out.WriteLine("--- rsyslogd:\n" + rsyslog.Output);
        }
    }

    [Fact]
    public void LogSyslog_Tcp_TracebackStaysOneMessage()
    {
        using var rsyslog = Rsyslog.Start();
        using var server = ServerProcess.Start(new[]
        {
            "--log-syslog", "--log-syslog-to", $"tcp://127.0.0.1:{rsyslog.TcpPort}", "--log-syslog-prefix", "t",
            App,
        });
        try
        {
            Assert.Equal(500, Http.Get(server.Port, "/raise").Status);
            var messages = rsyslog.WaitFor("gunicorn.t.", m => m.Any(x => x.Text.Contains("Error handling")),
                "the app's error");
            var error = Assert.Single(messages, m => m.Text.Contains("Error handling"));
            Assert.Equal("gunicorn.t.error", error.ProgramName);
            Assert.Contains("#012Traceback (most recent call last):", error.Text);
            Assert.EndsWith("RuntimeError: metrics test: the app raised", error.Text);
            // Octet counting kept every message whole: none starts inside another's traceback.
            Assert.DoesNotContain(messages, m => m.Text.StartsWith("Traceback") || m.Text.StartsWith("File "));
        }
        finally
        {
            _out.WriteLine(server.Output);
            _out.WriteLine("--- rsyslogd:\n" + rsyslog.Output);
        }
    }

    [Fact]
    public void LogSyslog_NoDaemonThere_ServesAndEachProcessSaysSoOnce()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"sharpwsgi-no-syslog-{Guid.NewGuid():N}.sock");
        using var server = ServerProcess.Start(new[] { "--log-syslog", "--log-syslog-to", "unix://" + missing, App });
        try
        {
            for (var i = 0; i < 3; i++) Assert.Equal(200, Http.Get(server.Port, "/").Status);
            var said = new Regex(@"\[(\d+)\] \[WARNING\] Syslog: cannot send to unix://" + Regex.Escape(missing));
            server.WaitForOutput(said, TimeSpan.FromSeconds(10));
            var byProcess = server.Output.Split('\n').Select(l => said.Match(l)).Where(m => m.Success)
                .GroupBy(m => m.Groups[1].Value).ToList();
            Assert.All(byProcess, g => Assert.Single(g));
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [Theory]
    [InlineData("--log-syslog-to", "/dev/log", "expected unix://PATH, udp://HOST:PORT or tcp://HOST:PORT")]
    [InlineData("--log-syslog-to", "udp://host:syslog", "'syslog' is not a port number")]
    [InlineData("--log-syslog-facility", "local9", "expected one of auth, authpriv")]
    public void LogSyslog_BadValue_UsageErrorInOneParagraph(string flag, string value, string why)
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--log-syslog", flag, value, App });
        _out.WriteLine(output);
        Assert.Equal(2, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains($"option {flag}: {why}", output);
    }
}
