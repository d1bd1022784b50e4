using SharpWsgi.Configuration;

namespace SharpWsgi.Hosting.Tests.Process;

/// <summary>How --umask and -e/--env values are read: gunicorn's forms, and what is refused.</summary>
public sealed class ProcessSettingsTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("022", 0x12)] // a leading 0 means octal, as gunicorn's auto_int reads it
    [InlineData("0022", 0x12)]
    [InlineData("0o22", 0x12)]
    [InlineData("0O027", 0x17)]
    [InlineData("18", 0x12)] // decimal: Python's int(value, 0)
    [InlineData("0x12", 0x12)]
    [InlineData("0b10010", 0x12)]
    [InlineData("0777", 0x1FF)]
    [InlineData(" 077 ", 0x3F)]
    public void ParseUmask_GunicornForms_TheMask(string text, int expected) =>
        Assert.Equal(expected, Setting.ParseUmask(text));

    [Theory]
    [InlineData("")]
    [InlineData("08")] // not octal
    [InlineData("0o1000")] // past 0o777
    [InlineData("512")]
    [InlineData("-1")]
    [InlineData("0x")]
    [InlineData("u=rwx")]
    public void ParseUmask_Other_Null(string text) => Assert.Null(Setting.ParseUmask(text));

    [Theory]
    [InlineData("A=1")]
    [InlineData("EMPTY=")]
    [InlineData("URL=postgres://u:p@h/db?x=y")]
    public void ValidateEnvironmentPair_KeyEqualsValue_Accepted(string pair) =>
        Assert.Null(Setting.ValidateEnvironmentPair(pair));

    [Theory]
    [InlineData("NOVALUE", "expected KEY=VALUE")]
    [InlineData("=value", "expected KEY=VALUE")]
    [InlineData("SHARPWSGI_WORKERS=4", "SHARPWSGI_WORKERS is SharpWsgi's own")]
    public void ValidateEnvironmentPair_Other_Refused(string pair, string reason) =>
        Assert.Contains(reason, Setting.ValidateEnvironmentPair(pair));
}
