namespace SharpWsgi.Configuration;

/// <summary>How a setting's text is checked and what kind of value it holds.</summary>
public enum SettingKind { Text, PositiveInt, NonNegativeInt, Flag, Choice, Seconds }

/// <summary>
/// One setting, declared once: its flags, its environment variable (SHARPWSGI_&lt;NAME&gt;), default,
/// validation and one-line doc. The command line, the environment, --help and docs/settings.md all come from here.
/// </summary>
public sealed record Setting(
    string Name,
    string? ShortFlag,
    string Meta,
    string? Default,
    SettingKind Kind,
    string Doc,
    bool Repeatable = false,
    string[]? Choices = null,
    string Section = "Server")
{
    public string LongFlag => "--" + Name;
    public string EnvironmentVariable => "SHARPWSGI_" + Name.ToUpperInvariant().Replace('-', '_');

    /// <summary>Null when the value is acceptable, else why not.</summary>
    public string? Validate(string value) => Kind switch
    {
        SettingKind.PositiveInt => int.TryParse(value, out var n) && n > 0 && value.All(char.IsAsciiDigit) ? null : "expected a positive integer",
        SettingKind.NonNegativeInt => int.TryParse(value, out var n) && n >= 0 && value.All(char.IsAsciiDigit) ? null : "expected a non-negative integer",
        SettingKind.Seconds => double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s >= 0
            ? null : "expected a number of seconds (0 or more)",
        SettingKind.Flag => value is "true" or "false" or "1" or "0" or "yes" or "no" ? null : "expected true or false",
        SettingKind.Choice => Choices!.Contains(value, StringComparer.OrdinalIgnoreCase) ? null : $"expected one of {string.Join(", ", Choices!)}",
        _ => value.Length > 0 ? null : "expected a value",
    };
}

public static class SettingsRegistry
{
    public static readonly IReadOnlyList<Setting> All = new Setting[]
    {
        new("bind", "-b", "ADDRESS", "127.0.0.1:8000", SettingKind.Text,
            "Address to listen on: HOST:PORT, [IPv6]:PORT, unix:/path/to.sock. Repeat for several. Port 0 picks a free port.",
            Repeatable: true),
        new("threads", null, "N", "4", SettingKind.PositiveInt,
            "Python threads serving requests in each process. One GIL means CPU-bound apps gain nothing past 1-2; " +
            "apps that wait on I/O (databases, HTTP calls, sleeps) serve up to N requests at once. 4 measured best for mixed loads."),
        new("queue-size", null, "N", "1024", SettingKind.PositiveInt,
            "Requests that may wait for a free Python thread; past it the server answers 503 at once."),
        new("python", null, "PATH", null, SettingKind.Text,
            "Python interpreter to embed (CPython 3.9+ with a shared libpython). Default: $VIRTUAL_ENV/bin/python, else python3 on PATH.",
            Section: "Python"),
        new("chdir", null, "DIR", null, SettingKind.Text,
            "Change to DIR before loading the app; it is put first on sys.path.", Section: "Python"),
        new("pythonpath", null, "DIR", null, SettingKind.Text,
            "Directory to add to sys.path (after --chdir). Repeat for several.", Repeatable: true, Section: "Python"),
        new("root-path", null, "PREFIX", "", SettingKind.Text,
            "URL prefix the app is mounted at: it becomes SCRIPT_NAME and is removed from PATH_INFO.", Section: "Python"),
        new("backlog", null, "N", "2048", SettingKind.PositiveInt,
            "Maximum number of pending connections in the listen queue."),
        new("keep-alive", null, "SECONDS", "5", SettingKind.Seconds,
            "How long an idle keep-alive connection is kept open."),
        new("log-level", null, "LEVEL", "info", SettingKind.Choice,
            "Error log verbosity.", Choices: new[] { "debug", "info", "warning", "error", "critical" }, Section: "Logging"),
    };

    public static Setting? ByFlag(string flag) =>
        All.FirstOrDefault(s => s.LongFlag == flag || s.ShortFlag == flag);
}
