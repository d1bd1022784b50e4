using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// --paste FILE[#NAME] (gunicorn's flag): the app comes from a PasteDeploy config file through Debian's
/// python3-pastedeploy, and the file's logging sections configure Python's logging in the worker.
/// </summary>
public sealed class PasteTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);
    private static string Ini => Path.Combine(ServerProcess.AppsDir, "paste", "app.ini");

    private readonly ITestOutputHelper _out;
    public PasteTests(ITestOutputHelper output) => _out = output;

    [Theory]
    [InlineData("", "hello from main")]
    [InlineData("#admin", "hello from admin")]
    public void Paste_ConfigFileSection_ServesThatAppWithTheFilesLogging(string section, string greeting)
    {
        using var server = ServerProcess.Start(new[] { "--paste", Ini + section, "--python", "/usr/bin/python3" });
        var response = Http.Get(server.Port, "/hi");
        _out.WriteLine(server.Output);
        Assert.Equal(200, response.Status);
        Assert.Equal($"{greeting} from {Ini}\n", response.BodyText);
        // The handler the file's [handler_marker] declared, with its format: fileConfig ran in the worker.
        server.WaitForOutput("PASTE-LOGGING paste_app: paste_app answered /hi");
    }

    [Fact]
    public void Paste_WithAnApp_RefusedInOneParagraph()
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--paste", Ini, "app:app" }, null, ExitTimeout);
        _out.WriteLine(output);
        Assert.NotEqual(0, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains("give no APP", output);
    }

    [Fact]
    public void Paste_MissingFile_CheckConfigSaysWhichFile()
    {
        var missing = Path.Combine(Path.GetTempPath(), "sharpwsgi-no-such-" + Guid.NewGuid().ToString("N") + ".ini");
        var (code, output) = ServerProcess.RunToExit(
            new[] { "--check-config", "--paste", missing, "--python", "/usr/bin/python3" }, null, ExitTimeout);
        _out.WriteLine(output);
        Assert.NotEqual(0, code);
        StartupOutput.AssertNoDotNetStackTrace(output);
        Assert.Contains("the PasteDeploy config file is not there: " + missing, output);
    }
}
