using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --log-config (logging.config.fileConfig), --log-config-dict and --log-config-json (dictConfig, laid over
/// gunicorn's defaults): the app's Python logging configured in every worker before the app is imported, gunicorn's
/// precedence over a --paste file's logging sections, and a configuration Python refuses reported in one
/// paragraph with the app-load exit code.
/// </summary>
public sealed class LogConfigTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static string Dir => Path.Combine(ServerProcess.AppsDir, "logging");
    private static string App => Path.Combine(Dir, "logging_app.py");
    private static string PasteIni => Path.Combine(ServerProcess.AppsDir, "paste", "app.ini");

    private readonly ITestOutputHelper _out;
    public LogConfigTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void LogConfig_FileTwoWorkers_EachWorkerConfiguredBeforeItImportsTheApp()
    {
        using var server = ServerProcess.Start(new[]
        {
            "--workers", "2", "--log-config", Path.Combine(Dir, "logging.ini"), "--python", "/usr/bin/python3", App,
        });
        try
        {
            // The import-time line already has the file's format, in both workers: configured before the import.
            var imported = new Regex(@"LOG-CONFIG-FILE \[(\d+)\] logging_app: imported in \1");
            var pids = server.Output.Split('\n').Select(l => imported.Match(l)).Where(m => m.Success)
                .Select(m => m.Groups[1].Value).Distinct().Count();
            Assert.Equal(2, pids);
            Assert.Equal(200, Http.Get(server.Port, "/file").Status);
            server.WaitForOutput(@"LOG-CONFIG-FILE \[\d+\] logging_app: answered /file");
            // The file's logger does not propagate, so the error log (written in the same logging call, to the
            // same stderr) did not get the record too.
            Assert.DoesNotMatch(@"\[WARNING\] .*logging_app: answered", server.Output);
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [SkippableFact]
    public void LogConfig_TwoInterpreters_EachInterpreterConfiguredBeforeItsImport()
    {
        // Sub-interpreters (CPython 3.12+) have a logging module of their own each: both must get the config.
        var python = Interpreters.FindPyenv(12, out var reason);
        Skip.If(python == null, reason);
        using var server = ServerProcess.Start(new[]
        {
            "--interpreters", "2", "--log-config", Path.Combine(Dir, "logging.ini"), "--python", python!, App,
        });
        try
        {
            var imported = new Regex(@"LOG-CONFIG-FILE \[(\d+)\] logging_app: imported in \1");
            Assert.Equal(2, server.Output.Split('\n').Count(l => imported.IsMatch(l)));
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [Fact]
    public void LogConfigDict_OnlyFormatters_GunicornsDefaultsSupplyRootAndHandlers()
    {
        // The dictionary replaces only gunicorn's "generic" formatter: the defaults' root logger (INFO, the
        // "console" handler on stdout, which uses "generic") does the rest, as under gunicorn.
        const string dict = """
            {"version": 1, "formatters": {"generic": {"format": "LOG-CONFIG-DICT %(name)s: %(message)s"}}}
            """;
        using var server = ServerProcess.Start(new[]
        {
            "--log-config-dict", dict, "--python", "/usr/bin/python3", App,
        });
        try
        {
            server.WaitForOutput("^LOG-CONFIG-DICT logging_app: imported in");
            Assert.Equal(200, Http.Get(server.Port, "/dict").Status);
            server.WaitForOutput("^LOG-CONFIG-DICT logging_app: answered /dict$");
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [Fact]
    public void LogConfigJson_File_Applied()
    {
        using var server = ServerProcess.Start(new[]
        {
            "--log-config-json", Path.Combine(Dir, "logging.json"), "--python", "/usr/bin/python3", App,
        });
        try
        {
            Assert.Equal(200, Http.Get(server.Port, "/json").Status);
            server.WaitForOutput("LOG-CONFIG-JSON logging_app: answered /json");
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [Fact]
    public void LogConfig_WithPaste_ExplicitFileWinsOverThePasteFilesSections()
    {
        // The paste app logs through "paste_app"; --log-config's file has no logger for it and leaves root without
        // a handler, so the record reaches the server's error log. Had the paste file's sections been applied,
        // its handler would have printed PASTE-LOGGING instead.
        using var server = ServerProcess.Start(new[]
        {
            "--paste", PasteIni, "--log-config", Path.Combine(Dir, "logging.ini"), "--python", "/usr/bin/python3",
        });
        try
        {
            Assert.Equal(200, Http.Get(server.Port, "/hi").Status);
            server.WaitForOutput(@"\[WARNING\] .*paste_app: paste_app answered /hi");
            Assert.DoesNotContain("PASTE-LOGGING", server.Output);
        }
        finally
        {
            _out.WriteLine(server.Output);
        }
    }

    [Fact]
    public void LogConfig_MissingFile_OneParagraphAndTheAppLoadExitCode()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"sharpwsgi-no-such-{Guid.NewGuid():N}.ini");
        var (code, output) = ServerProcess.RunToExit(
            new[] { "--log-config", missing, "--python", "/usr/bin/python3", App }, null, ExitTimeout);
        _out.WriteLine(output);
        Assert.Equal(4, code); // the supervisor halts, as for an app that cannot be imported
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains($"--log-config {missing}: there is no file {missing}. The worker stopped before " +
                        "importing the app.", output);
        Assert.DoesNotContain("imported in", output);
    }

    [Fact]
    public void LogConfig_FileFileConfigRefuses_CheckConfigNamesPythonsReason()
    {
        var broken = Path.Combine(Dir, "no_formatters.ini");
        var (code, output) = ServerProcess.RunToExit(
            new[] { "--check-config", "--log-config", broken, "--python", "/usr/bin/python3", App }, null,
            ExitTimeout);
        _out.WriteLine(output);
        Assert.Equal(4, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains($"--log-config {broken}: Python's logging.config.fileConfig could not use it: KeyError: " +
                        "'formatters'", output);
    }

    [Fact]
    public void LogConfigDict_HandlerPythonCannotMake_DictConfigsReasonAndItsCause()
    {
        const string dict = """{"version": 1, "handlers": {"file": {"class": "logging.FileHandler",""" +
                            """ "filename": "/nonexistent-dir/app.log"}}, "root": {"handlers": ["file"]}}""";
        var (code, output) = ServerProcess.RunToExit(
            new[] { "--log-config-dict", dict, "--python", "/usr/bin/python3", App }, null, ExitTimeout);
        _out.WriteLine(output);
        Assert.Equal(4, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains("--log-config-dict: Python's logging.config.dictConfig could not use it: ValueError: " +
                        "Unable to configure handler 'file' (FileNotFoundError:", output);
    }

    [Theory]
    [InlineData("{\"version\": 1", "not JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    public void LogConfigDict_NotAJsonObject_UsageErrorBeforeAnyWorker(string value, string why)
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--log-config-dict", value, App }, null, ExitTimeout);
        _out.WriteLine(output);
        Assert.Equal(2, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains("option --log-config-dict: " + why, output);
        Assert.DoesNotContain("Booting worker", output);
    }
}
