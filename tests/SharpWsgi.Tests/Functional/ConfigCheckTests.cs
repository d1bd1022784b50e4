using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --check-config (every setting checked, the app imported in a throwaway worker, nothing served or bound) and
/// --print-config (each effective setting with its source), through the real executable.
/// </summary>
public sealed class ConfigCheckTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static string EchoApp => Path.Combine(ServerProcess.AppsDir, "echo_environ.py");

    private readonly ITestOutputHelper _out;
    public ConfigCheckTests(ITestOutputHelper output) => _out = output;

    private (int Code, string Output) Run(string[] args, IDictionary<string, string?>? env = null)
    {
        var (code, output) = ServerProcess.RunToExit(args, env, ExitTimeout);
        _out.WriteLine($"$ sharpwsgi {string.Join(' ', args)}\n(exit {code})\n{output}");
        return (code, output);
    }

    /// <summary>A failed check: non-zero, one log paragraph naming the problem, no .NET stack trace, no summary.
    /// </summary>
    private static void AssertCleanFailure(int code, string output, int expectedCode, string mentions)
    {
        Assert.Equal(expectedCode, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains(mentions, output);
        Assert.DoesNotContain("configuration OK", output);
        Assert.DoesNotContain("Listening at:", output);
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Processes whose command line mentions the marker (a unique temp path), other than this one.
    /// </summary>
    private static List<int> ProcessesMentioning(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(marker)) found.Add(pid);
            }
            catch (IOException) { } // gone meanwhile
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    [Fact]
    public void CheckConfig_GoodApp_ExitsZeroWithSummaryAndLeavesNothingBehind()
    {
        // A private copy of the app: its unique path finds any process the check left running.
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-check-");
        try
        {
            var app = Path.Combine(dir.FullName, "checked_app.py");
            File.Copy(EchoApp, app);
            var port = FreePort();
            var (code, output) = Run(new[] { "--check-config", "--bind", $"127.0.0.1:{port}", "--workers", "2", app });
            Assert.Equal(0, code);
            StartupOutput.AssertNoDotNetStackTrace(output);
            Assert.Contains("configuration OK", output);
            Assert.Matches(@"app:\s+\S*checked_app\.py -> <function application at 0x[0-9a-f]+>", output);
            Assert.Matches(@"python:\s+3\.\d+\.\d+ /", output);
            Assert.Contains($"listen:      http://127.0.0.1:{port}", output);
            Assert.Contains("workers:     2 x 4 Python thread(s)", output);
            Assert.Contains("tls:         off", output);
            Assert.DoesNotContain("Listening at:", output);
            Assert.DoesNotContain("Booting worker", output); // info lines are left out of a check

            // Nothing was bound (the port is free) and the throwaway worker is gone.
            using (var listener = new TcpListener(IPAddress.Loopback, port)) listener.Start();
            Assert.Empty(ProcessesMentioning(dir.FullName));
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void CheckConfig_PortInUse_StillPasses_BecauseNothingIsBound()
    {
        // A deploy script checks the new config while the live server holds the port.
        using var live = new TcpListener(IPAddress.Loopback, 0);
        live.Start();
        var port = ((IPEndPoint)live.LocalEndpoint).Port;
        var (code, output) = Run(new[] { "--check-config", "--bind", $"127.0.0.1:{port}", EchoApp });
        Assert.Equal(0, code);
        Assert.Contains($"http://127.0.0.1:{port}", output);
    }

    [Fact]
    public void CheckConfig_FlaskApp_ExitsZeroNamingTheFlaskApp()
    {
        var (code, output) = Run(new[] { "--check-config", "--python", Interpreters.SystemPython,
            Path.Combine(ServerProcess.AppsDir, "flask_site.py") });
        Assert.Equal(0, code);
        Assert.Contains("configuration OK", output);
        Assert.Matches(@"app:\s+\S*flask_site\.py -> <Flask 'flask_site'>", output);
        Assert.Contains($"python:      3.", output);
        Assert.Contains(Interpreters.SystemPython, output);
    }

    [Fact]
    public void CheckConfig_BrokenImport_ExitsWithAppLoadCodeAndOneParagraph()
    {
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-check-");
        try
        {
            var app = Path.Combine(dir.FullName, "broken_app.py");
            File.WriteAllText(app, "import no_such_module_for_check_config\napplication = None\n");
            var (code, output) = Run(new[] { "--check-config", app });
            AssertCleanFailure(code, output, 4, "No module named 'no_such_module_for_check_config'");
            Assert.Single(Regex.Matches(output, @"\[CRITICAL\]"));
            Assert.Contains("Failed to load the application", output);
            Assert.Empty(ProcessesMentioning(dir.FullName));
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void CheckConfig_BadOptionValue_IsAUsageError()
    {
        var (code, output) = Run(new[] { "--check-config", "--threads", "zero", EchoApp });
        AssertCleanFailure(code, output, 2, "option --threads: expected a positive integer, got 'zero'");
    }

    [Fact]
    public void CheckConfig_MissingCertificate_ExitsWithStartupCode()
    {
        var (code, output) = Run(new[] { "--check-config", "--certfile", "/nonexistent/sharpwsgi-cert.pem",
            EchoApp });
        AssertCleanFailure(code, output, 1, "--certfile /nonexistent/sharpwsgi-cert.pem");
    }

    [Fact]
    public void CheckConfig_TlsCertificate_IsDescribed()
    {
        using var certs = new TestCertificates();
        var (code, output) = Run(new[] { "--check-config", "--certfile", certs.ServerCert, "--keyfile",
            certs.ServerKey, EchoApp });
        Assert.Equal(0, code);
        Assert.Matches(@"tls:\s+CN=\S+.*, valid until \d{4}-\d\d-\d\d", output);
        Assert.Matches(@"listen:\s+https://127\.0\.0\.1:0", output);
    }

    [Theory]
    [InlineData("127.0.0.1:99999", "'99999' is not a port number")]
    [InlineData("[::1:8000", "missing ']'")]
    [InlineData("unix:/nonexistent-sharpwsgi-dir/app.sock", "no such directory /nonexistent-sharpwsgi-dir")]
    [InlineData("fd://x", "expected fd://N")]
    public void CheckConfig_BadBind_ExitsWithStartupCode(string bind, string mentions)
    {
        var (code, output) = Run(new[] { "--check-config", "--bind", bind, EchoApp });
        AssertCleanFailure(code, output, 1, mentions);
    }

    [Fact]
    public void CheckConfig_PidFileInMissingDirectory_ExitsWithStartupCode()
    {
        var (code, output) = Run(new[] { "--check-config", "--pid", "/nonexistent-sharpwsgi-dir/app.pid", EchoApp });
        AssertCleanFailure(code, output, 1, "--pid /nonexistent-sharpwsgi-dir/app.pid: no such directory");
    }

    [Fact]
    public void CheckConfig_AppThatCrashesTheInterpreter_ReportsTheDeadWorker()
    {
        var dir = Directory.CreateTempSubdirectory("sharpwsgi-check-");
        try
        {
            var app = Path.Combine(dir.FullName, "crashing_app.py");
            File.WriteAllText(app, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n");
            var (code, output) = Run(new[] { "--check-config", app });
            AssertCleanFailure(code, output, 1,
                "The check worker died while loading the app (exit code 137, signal 9)");
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void PrintConfig_FileEnvironmentAndFlag_EachValueWithItsSource()
    {
        var config = Path.GetTempFileName();
        File.WriteAllText(config, "# three sources\nthreads = 2\nworkers = 3\nkeep-alive = 9\n");
        try
        {
            var env = new Dictionary<string, string?> { ["SHARPWSGI_THREADS"] = "6", ["SHARPWSGI_WORKERS"] = "5" };
            var (code, output) = Run(new[] { "--print-config", "-c", config, "--workers", "7", EchoApp }, env);
            Assert.Equal(0, code);
            Assert.DoesNotContain("Listening at:", output);
            var full = Path.GetFullPath(config);
            void Line(string name, string value, string source) => Assert.Matches(new Regex(
                $@"^{Regex.Escape(name)}\s+= {Regex.Escape(value)}\s+# {Regex.Escape(source)}\r?$",
                RegexOptions.Multiline), output);
            Line("keep-alive", "9", $"file {full}:4");             // file over default
            Line("threads", "6", "environment SHARPWSGI_THREADS");  // environment over file
            Line("workers", "7", "command line --workers");         // flag over environment over file
            Line("queue-size", "1024", "default");
            Line("config", config, "command line -c");
            Line("app", EchoApp, "command line APP");
            Line("python", "(not set)", "default");
        }
        finally { File.Delete(config); }
    }

    [Fact]
    public void Help_ListsCheckConfigAndPrintConfig()
    {
        var (code, output) = Run(new[] { "--help" });
        Assert.Equal(0, code);
        Assert.Matches(new Regex(@"^\s+--check-config\s+\S", RegexOptions.Multiline), output);
        Assert.Matches(new Regex(@"^\s+--print-config\s+\S", RegexOptions.Multiline), output);
    }
}
