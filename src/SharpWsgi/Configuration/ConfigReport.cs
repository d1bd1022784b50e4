using System.Text;

namespace SharpWsgi.Configuration;

/// <summary>--print-config: every effective setting, one "name = value  # source" line each (a value of a
/// repeatable setting per line), so the output reads like a config file annotated with where each line came from.
/// </summary>
public static class ConfigReport
{
    public static string Print(ServerSettings settings, string version)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# sharpwsgi {version}: effective settings " +
                      "(precedence: default < file < environment < command line)");
        if (settings.ConfigFile != null) sb.AppendLine($"# config file: {settings.ConfigFile}");
        if (settings.PythonConfig is { } python)
        {
            var worker = python.Hooks.Where(GunicornSettings.WorkerHooks.Contains).ToList();
            var host = python.Hooks.Where(h => !GunicornSettings.WorkerHooks.Contains(h)).ToList();
            if (worker.Count > 0) sb.AppendLine($"# hooks run by each worker: {string.Join(", ", worker)}");
            if (host.Count > 0) sb.AppendLine($"# hooks run by the supervisor's hook host: {string.Join(", ", host)}");
        }
        foreach (var (warning, text) in settings.ConfigMessages)
            sb.AppendLine($"# {(warning ? "warning" : "note")}: {text}");
        var app = settings.App ?? "(none: the built-in welcome app)";
        Line(sb, "app", app, settings.AppOrigin?.ToString() ?? "default");
        foreach (var def in SettingsRegistry.All)
        {
            var values = settings.GetAll(def.Name);
            var origin = settings.OriginOf(def.Name);
            if (values.Count == 0 || origin == null)
            {
                Line(sb, def.Name, "(not set)", "default");
                continue;
            }
            foreach (var value in values) Line(sb, def.Name, value.Length == 0 ? "''" : value, origin.ToString());
        }
        return sb.ToString();
    }

    private static void Line(StringBuilder sb, string name, string value, string origin) =>
        sb.AppendLine($"{name,-26} = {value,-24}  # {origin}");
}
