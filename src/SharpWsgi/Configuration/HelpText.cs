using System.Text;

namespace SharpWsgi.Configuration;

/// <summary>--help and docs/settings.md, both generated from the settings registry.</summary>
public static class HelpText
{
    public static string Usage(string version)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"sharpwsgi {version}: a WSGI (PEP 3333) server on Kestrel for CPython apps");
        sb.AppendLine();
        sb.AppendLine("usage: sharpwsgi [OPTIONS] [APP]");
        sb.AppendLine();
        sb.AppendLine("APP is module:name, module:factory(), module (uses 'application' or 'app'),");
        sb.AppendLine("path/to/file.py or path/to/file.py:name. Without APP a built-in welcome app is served.");
        foreach (var section in SettingsRegistry.All.GroupBy(s => s.Section))
        {
            sb.AppendLine();
            sb.AppendLine(section.Key + ":");
            foreach (var s in section)
            {
                var flags = (s.ShortFlag != null ? s.ShortFlag + ", " : "    ") + s.LongFlag +
                    (s.Meta.Length > 0 ? " " + s.Meta : "");
                sb.AppendLine($"  {flags,-32} {s.Doc}");
                var extra = $"[env {s.EnvironmentVariable}" +
                            (s.Default != null ? $"; default: {(s.Default.Length == 0 ? "''" : s.Default)}" : "") +
                            (s.Repeatable ? "; repeatable" : "") + "]";
                sb.AppendLine($"  {"",-32} {extra}");
            }
        }
        sb.AppendLine();
        sb.AppendLine("Other:");
        sb.AppendLine($"  {"-h, --help",-32} Show this help and exit.");
        sb.AppendLine($"  {"-v, --version",-32} Show the version, the commit and the Python the workers would run.");
        foreach (var (flag, doc) in Commands) sb.AppendLine($"  {flag,-32} {doc}");
        return sb.ToString();
    }

    /// <summary>Flags that do something and exit instead of serving; not settings (no environment variable).
    /// </summary>
    public static readonly (string Flag, string Doc)[] Commands =
    {
        ("--check-config", "Check every setting, the certificate files and the --bind syntax, load the app in a " +
            "throwaway worker, print what would be served and exit 0; or print the problem and exit non-zero " +
            "(1 start-up, 2 usage, 4 app load). Binds nothing, so it can run beside the live server."),
        ("--print-config", "Print every effective setting with its source (default, file, environment, " +
            "command line) and exit."),
    };

    public static string Markdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Settings");
        sb.AppendLine();
        sb.AppendLine("Generated from the settings registry (`src/SharpWsgi/Configuration/SettingsRegistry.cs`) by");
        sb.AppendLine("`sharpwsgi --print-settings-markdown`; a test keeps this file in step with it.");
        sb.AppendLine("Precedence: default < config file (`-c FILE`) < environment variable < command line.");
        sb.AppendLine();
        sb.AppendLine("Commands (flags only, no environment variable):");
        sb.AppendLine();
        foreach (var (flag, doc) in Commands) sb.AppendLine($"- **{flag}**: {doc}");
        foreach (var section in SettingsRegistry.All.GroupBy(s => s.Section))
        {
            sb.AppendLine();
            sb.AppendLine($"## {section.Key}");
            sb.AppendLine();
            sb.AppendLine("| Flag | Environment | Default | Description |");
            sb.AppendLine("| --- | --- | --- | --- |");
            foreach (var s in section)
            {
                var flag = (s.ShortFlag != null ? $"`{s.ShortFlag}`, " : "") +
                    $"`{s.LongFlag}{(s.Meta.Length > 0 ? " " + s.Meta : "")}`" + (s.Repeatable ? " (repeatable)" : "");
                var def = s.Default == null ? "—" : $"`{(s.Default.Length == 0 ? "''" : s.Default)}`";
                sb.AppendLine($"| {flag} | `{s.EnvironmentVariable}` | {def} | {s.Doc.Replace("|", "\\|")} |");
            }
        }
        return sb.ToString();
    }

    /// <summary>sharpwsgi(1) in roff (man(7) macros), from the same registry as --help: the .deb ships it.
    /// </summary>
    public static string ManPage(string version)
    {
        var sb = new StringBuilder();
        sb.AppendLine($".TH SHARPWSGI 1 \"\" \"sharpwsgi {version}\" \"User Commands\"");
        sb.AppendLine(".SH NAME");
        sb.AppendLine("sharpwsgi \\- a WSGI (PEP 3333) server on Kestrel for CPython apps");
        sb.AppendLine(".SH SYNOPSIS");
        sb.AppendLine(".B sharpwsgi");
        sb.AppendLine("[\\fIOPTIONS\\fR] [\\fIAPP\\fR]");
        sb.AppendLine(".SH DESCRIPTION");
        sb.AppendLine(Roff("APP is module:name, module:factory(), module (uses 'application' or 'app'), " +
            "path/to/file.py or path/to/file.py:name. Without APP a built-in welcome app is served."));
        sb.AppendLine(".PP");
        sb.AppendLine(Roff("Every option can also be set as an environment variable or in a -c config file. " +
            "Precedence: default < config file < environment < command line."));
        foreach (var section in SettingsRegistry.All.GroupBy(s => s.Section))
        {
            sb.AppendLine($".SH {Roff(section.Key.ToUpperInvariant())}");
            foreach (var s in section)
            {
                sb.AppendLine(".TP");
                var flags = (s.ShortFlag != null ? $"\\fB{Roff(s.ShortFlag)}\\fR, " : "") +
                    $"\\fB{Roff(s.LongFlag)}\\fR" + (s.Meta.Length > 0 ? $" \\fI{Roff(s.Meta)}\\fR" : "");
                sb.AppendLine(flags);
                sb.AppendLine(Roff(s.Doc));
                sb.AppendLine($"[env {Roff(s.EnvironmentVariable)}" +
                    (s.Default != null ? $"; default: {Roff(s.Default.Length == 0 ? "''" : s.Default)}" : "") +
                    (s.Repeatable ? "; repeatable" : "") + "]");
            }
        }
        sb.AppendLine(".SH COMMANDS");
        foreach (var (flag, doc) in new[] { ("-h, --help", "Show the help and exit."),
                     ("-v, --version", "Show the version, the commit and the Python the workers would run.") }
                     .Concat(Commands))
        {
            sb.AppendLine(".TP");
            sb.AppendLine(string.Join(", ", flag.Split(", ").Select(f => $"\\fB{Roff(f)}\\fR")));
            sb.AppendLine(Roff(doc));
        }
        sb.AppendLine(".SH SEE ALSO");
        sb.AppendLine(Roff("systemd units: sharpwsgi@.service and sharpwsgi@.socket " +
            "(/usr/share/doc/sharpwsgi/README.Debian)."));
        return sb.ToString();
    }

    /// <summary>Text as roff: backslashes escaped, hyphens kept literal (\-), and a line starting with '.' or
    /// '\'' protected (\&amp;) so it is not read as a request.</summary>
    private static string Roff(string text)
    {
        var t = text.Replace("\\", "\\e").Replace("-", "\\-");
        return t.StartsWith('.') || t.StartsWith('\'') ? "\\&" + t : t;
    }
}
