using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Packaging;

/// <summary>--help and --version need no Python: an empty environment (no PATH) still answers, exit 0.</summary>
public class NoPythonTests
{
    [Fact]
    public void Help_EmptyEnvironment_PrintsUsageAndExitsZero()
    {
        var r = Proc.Run("/usr/bin/env", new[] { "-i", ServerProcess.Executable, "--help" });
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("usage: sharpwsgi [OPTIONS] [APP]", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void Version_EmptyEnvironment_SaysNoPythonAndExitsZero()
    {
        var r = Proc.Run("/usr/bin/env", new[] { "-i", ServerProcess.Executable, "--version" });
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"^sharpwsgi \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}|unknown", r.Stdout);
        Assert.Contains("python:    none usable: No Python interpreter found", r.Stdout);
        StartupOutput.AssertNoDotNetStackTrace(r.Stdout + r.Stderr);
    }

    [Fact]
    public void ManPage_EverySetting_HasItsFlag()
    {
        var (code, man) = ServerProcess.RunToExit(new[] { "--print-man-page" });
        Assert.Equal(0, code);
        Assert.StartsWith(".TH SHARPWSGI 1", man);
        var (_, help) = ServerProcess.RunToExit(new[] { "--help" });
        var flags = System.Text.RegularExpressions.Regex.Matches(help, @"^  (?:-\w, |    )(--[\w-]+)",
            System.Text.RegularExpressions.RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.True(flags.Count > 50, help);
        foreach (var flag in flags) Assert.Contains($"\\fB{flag.Replace("-", "\\-")}\\fR", man);
    }
}
