using System.Text;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Logging;

/// <summary>
/// The syslog message as Python's SysLogHandler sends it for gunicorn (RFC 3164's PRI and TAG, no timestamp or
/// host name: the daemon adds its own): "&lt;PRI&gt;gunicorn.PREFIX.error[PID]: message". gunicorn puts its pid
/// in the message ("...error: [PID] message"); here it is in the tag, where rsyslog and journald read it as the
/// process id (the program name, what filters match, is the same).
/// </summary>
public static class SyslogFormat
{
    /// <summary>gunicorn's facility names and codes (glogging.SYSLOG_FACILITIES).</summary>
    private static readonly (string Name, int Code)[] Facilities =
    {
        ("auth", 4), ("authpriv", 10), ("cron", 9), ("daemon", 3), ("ftp", 11), ("kern", 0), ("lpr", 6),
        ("mail", 2), ("news", 7), ("security", 4), ("syslog", 5), ("user", 1), ("uucp", 8),
        ("local0", 16), ("local1", 17), ("local2", 18), ("local3", 19), ("local4", 20), ("local5", 21),
        ("local6", 22), ("local7", 23),
    };

    public static readonly string[] FacilityNames = Facilities.Select(f => f.Name).ToArray();

    public static int FacilityCode(string name) =>
        Facilities.First(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Code;

    /// <summary>Python's SysLogHandler.mapPriority: the level's syslog severity.</summary>
    public static int Severity(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => 7,
        LogLevel.Information => 6,
        LogLevel.Warning => 4,
        LogLevel.Error => 3,
        _ => 2,
    };

    /// <summary>The tag's program-name part: --log-syslog-prefix, else --name, else the APP (gunicorn's
    /// proc_name, which defaults to the APP), each character outside [A-Za-z0-9_-] made a '.', so that a path or
    /// module:name stays one word where syslog daemons end the program name at '/' or ':'.</summary>
    public static string Prefix(string? syslogPrefix, string? procName, string? app)
    {
        var name = syslogPrefix ?? procName ?? AppName(app) ?? "sharpwsgi";
        var sb = new StringBuilder(name.Length);
        foreach (var c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '.');
        var clean = sb.ToString().Trim('.');
        return clean.Length == 0 ? "sharpwsgi" : clean;
    }

    /// <summary>The APP as gunicorn's default proc_name; for --paste (gunicorn: the config file's path) the file's
    /// name without its directory.</summary>
    private static string? AppName(string? app)
    {
        if (string.IsNullOrWhiteSpace(app)) return null;
        if (app.StartsWith(SharpWsgi.Gateway.AppLoader.PastePrefix, StringComparison.Ordinal))
            return Path.GetFileName(app[SharpWsgi.Gateway.AppLoader.PastePrefix.Length..].Split('#')[0]);
        return app;
    }

    /// <summary>"&lt;PRI&gt;gunicorn.PREFIX.KIND[PID]: " as ASCII bytes; the message follows it.</summary>
    public static byte[] Header(int facility, int severity, string prefix, string kind, int pid) =>
        Encoding.ASCII.GetBytes($"<{facility * 8 + severity}>gunicorn.{prefix}.{kind}[{pid}]: ");
}
