using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Configuration;

public class SettingsDocTests
{
    [Fact]
    public void SettingsMarkdown_CommittedFile_MatchesRegistry()
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--print-settings-markdown" });
        Assert.Equal(0, code);
        var committed = File.ReadAllText(Path.Combine(ServerProcess.RepoRoot, "docs", "settings.md"));
        Assert.Equal(committed.Replace("\r\n", "\n").TrimEnd(), output.Replace("\r\n", "\n").TrimEnd());
    }

    [Fact]
    public void Help_EveryRegisteredSetting_HasFlagAndEnvironmentVariable()
    {
        var (code, help) = ServerProcess.RunToExit(new[] { "--help" });
        Assert.Equal(0, code);
        var doc = File.ReadAllText(Path.Combine(ServerProcess.RepoRoot, "docs", "settings.md"));
        var flags = System.Text.RegularExpressions.Regex.Matches(doc, @"`(--[a-z-]+)")
            .Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.True(flags.Count >= 20, $"expected the settings table to list the options, found {flags.Count}");
        foreach (var flag in flags)
        {
            Assert.Contains(flag, help);
            Assert.Contains("SHARPWSGI_" + flag[2..].ToUpperInvariant().Replace('-', '_'), help);
        }
    }

    [Fact]
    public void ConfigFile_UnknownSetting_IsAUsageError()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "threads = 2\nno-such-thing = 1\n");
        try
        {
            var (code, output) = ServerProcess.RunToExit(new[] { "-c", path, "--version" });
            Assert.Equal(2, code);
            Assert.Contains("unknown setting 'no-such-thing'", output);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void BadOptionValue_ExitsWithUsageError()
    {
        var (code, output) = ServerProcess.RunToExit(new[] { "--threads", "zero" });
        Assert.Equal(2, code);
        Assert.Contains("--threads", output);
        Assert.DoesNotContain("   at SharpWsgi", output);
    }
}
