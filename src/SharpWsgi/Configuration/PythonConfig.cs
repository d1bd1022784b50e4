using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace SharpWsgi.Configuration;

/// <summary>
/// gunicorn's Python config file (-c gunicorn.conf.py, or python:MODULE) as read by SharpWsgi. The supervisor loads
/// no Python, so the chosen interpreter executes the file once in a throwaway process (the "evaluate" mode of
/// Hooks/gunicorn_config.py) and answers with the module-level names that are settings (gunicorn's or SharpWsgi's),
/// the hooks it defines and the line of each. The answer is handed down to the workers in
/// <see cref="HandedDownVariable"/>, so they run with exactly the supervisor's settings without reading the file
/// again for them (a worker does execute it again, for its hooks: see Hooks/WorkerHooks).
/// </summary>
public sealed class PythonConfig
{
    /// <summary>The evaluation's answer, for the workers (removed from a worker's environment as it is read).
    /// </summary>
    public const string HandedDownVariable = "SHARPWSGI_PYTHON_CONFIG";

    private static readonly TimeSpan EvaluationTimeout = TimeSpan.FromSeconds(60);

    /// <summary>As gunicorn takes it: a path (any extension), file:PATH or python:MODULE.</summary>
    public string Location { get; }
    /// <summary>The file behind <see cref="Location"/> (a module's origin), when there is one.</summary>
    public string? FileName { get; }
    /// <summary>Module-level names that are settings, with their values as JSON.</summary>
    public IReadOnlyDictionary<string, JsonElement> Values { get; }
    /// <summary>The hooks the file defines (gunicorn's names), arity already checked.</summary>
    public IReadOnlyList<string> Hooks { get; }
    private readonly IReadOnlyDictionary<string, int> _lines;
    private readonly string _answer;

    private PythonConfig(string location, string answer)
    {
        Location = location;
        _answer = answer;
        var root = JsonDocument.Parse(answer).RootElement;
        FileName = root.TryGetProperty("file", out var f) ? f.GetString() : null;
        Values = root.GetProperty("settings").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        Hooks = root.GetProperty("hooks").EnumerateArray().Select(h => h.GetString()!).ToList();
        _lines = root.GetProperty("lines").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
    }

    public bool HasWorkerHooks => Hooks.Any(GunicornSettings.WorkerHooks.Contains);
    public bool HasSupervisorHooks => Hooks.Any(h => !GunicornSettings.WorkerHooks.Contains(h));

    /// <summary>"file:line" of a name's last module-level assignment, else the file.</summary>
    public string Where(string name) => _lines.TryGetValue(name, out var line)
        ? $"{FileName ?? Location}:{line}" : FileName ?? Location;

    /// <summary>A config location is Python when it is python:MODULE, file:PATH or a *.py / *.pyc file.</summary>
    public static bool IsPythonLocation(string location) =>
        location.StartsWith("python:", StringComparison.Ordinal) ||
        location.StartsWith("file:", StringComparison.Ordinal) ||
        location.EndsWith(".py", StringComparison.Ordinal) || location.EndsWith(".pyc", StringComparison.Ordinal);

    /// <summary>Whether a file that does not read as 'name = value' lines is Python: imports, definitions, compound
    /// statements, list/dict/tuple values or gunicorn's own setting names.</summary>
    public static bool LooksLikePython(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd();
            if (System.Text.RegularExpressions.Regex.IsMatch(line,
                    @"^\s*(import\s+\w|from\s+[\w.]+\s+import\b|def\s+\w|class\s+\w|(if|for|while|with|try)\b.*:$)"))
                return true;
            var eq = line.IndexOf('=');
            if (eq <= 0 || line.TrimStart().StartsWith('#')) continue;
            var value = line[(eq + 1)..].TrimStart();
            if (value.StartsWith('[') || value.StartsWith('{') || value.StartsWith('(')) return true;
            var name = line[..eq].Trim();
            if (GunicornSettings.Find(name) != null && SettingsRegistry.ByName(name) == null) return true;
        }
        return false;
    }

    /// <summary>
    /// The file's settings: in a worker, the supervisor's answer handed down; elsewhere the file executed by
    /// <paramref name="python"/> in <paramref name="workingDirectory"/> (and the answer put in this process's
    /// environment for the workers it starts). A file that raises, or that python cannot run, is a
    /// <see cref="UsageException"/> of one paragraph.
    /// </summary>
    public static PythonConfig Load(string location, bool isWorker, Func<string> python, string workingDirectory)
    {
        if (isWorker && Environment.GetEnvironmentVariable(HandedDownVariable) is { Length: > 0 } handed)
        {
            Environment.SetEnvironmentVariable(HandedDownVariable, null); // the app's subprocesses do not inherit it
            using var doc = JsonDocument.Parse(handed);
            return new PythonConfig(doc.RootElement.GetProperty("location").GetString()!,
                doc.RootElement.GetProperty("answer").GetRawText());
        }
        var answer = Evaluate(location, python(), workingDirectory);
        var config = new PythonConfig(location, answer);
        ApplyEnvironmentChanges(answer);
        Environment.SetEnvironmentVariable(HandedDownVariable, config.HandedDown());
        return config;
    }

    /// <summary>The file's changes to os.environ, made here too: gunicorn's workers inherit them from the master
    /// by fork; these workers and the hook host inherit them from the supervisor.</summary>
    private static void ApplyEnvironmentChanges(string answer)
    {
        using var doc = JsonDocument.Parse(answer);
        if (doc.RootElement.TryGetProperty("environ", out var set))
            foreach (var p in set.EnumerateObject()) Environment.SetEnvironmentVariable(p.Name, p.Value.GetString());
        if (doc.RootElement.TryGetProperty("unset", out var unset))
            foreach (var name in unset.EnumerateArray()) Environment.SetEnvironmentVariable(name.GetString()!, null);
    }

    private string HandedDown()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("location", Location);
            writer.WritePropertyName("answer");
            writer.WriteRawValue(_answer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The Python side (Hooks/gunicorn_config.py), embedded in the library.</summary>
    public static string RuntimeSource { get; } = ReadRuntimeSource();

    private static string ReadRuntimeSource()
    {
        using var stream = typeof(PythonConfig).Assembly.GetManifestResourceStream("gunicorn_config.py")
            ?? throw new InvalidOperationException("the embedded gunicorn_config.py is missing from the build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static string Evaluate(string location, string python, string workingDirectory)
    {
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(RuntimeSource);
        psi.ArgumentList.Add("evaluate");
        psi.ArgumentList.Add(location);
        psi.ArgumentList.Add(JsonSerializer.Serialize(GunicornSettings.KnownNames().ToArray(),
            ConfigJsonContext.Default.StringArray));
        string stdout;
        int exitCode;
        try
        {
            using var p = Process.Start(psi)!;
            p.StandardInput.Close(); // a file that reads stdin gets end-of-file, not the terminal
            var read = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(EvaluationTimeout))
            {
                p.Kill(entireProcessTree: true);
                throw new UsageException($"reading the config file {location}: {python} did not finish executing " +
                    $"it within {EvaluationTimeout.TotalSeconds:0} s (does it wait for something at import?)");
            }
            p.WaitForExit();
            stdout = read.Result;
            exitCode = p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new UsageException($"reading the Python config file {location} needs a Python interpreter, and " +
                $"{python} could not be run: {e.Message}. Pass --python (on the command line or as SHARPWSGI_PYTHON)");
        }
        var last = stdout.TrimEnd().Split('\n').LastOrDefault() ?? "";
        JsonElement root;
        try { root = JsonDocument.Parse(last).RootElement; }
        catch (JsonException)
        {
            throw new UsageException($"reading the config file {location}: {python} did not run SharpWsgi's reader " +
                $"(exit code {exitCode}); it must be CPython 3.9 or newer, and the file must not end the process " +
                "itself (os._exit)");
        }
        if (root.TryGetProperty("error", out var error)) throw new UsageException(Describe(location, error));
        return last;
    }

    /// <summary>The file's exception as one paragraph: what was raised, and where (file:line and the line).
    /// </summary>
    private static string Describe(string location, JsonElement error)
    {
        string? S(string name) => error.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString() : null;
        var sb = new StringBuilder($"the config file {location} failed: {S("type")}: {S("message")}");
        if (S("file") is { } file)
        {
            sb.Append(" (").Append(file);
            if (error.TryGetProperty("line", out var line) && line.ValueKind == JsonValueKind.Number)
                sb.Append(':').Append(line.GetInt32());
            if (S("source") is { } source) sb.Append(": ").Append(source.Trim());
            sb.Append(')');
        }
        return sb.ToString();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class ConfigJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
