namespace SharpWsgi.Supervisor;

/// <summary>
/// -e/--env KEY=VALUE, gunicorn's raw_env: set in the supervisor's environment before it chooses the interpreter and
/// starts workers, so they (and the app's os.environ) inherit it. A reload (HUP) first restores what the previous
/// configuration set, as gunicorn does, then applies the new one.
/// </summary>
internal static class RawEnvironment
{
    // What each variable held before --env set it (null: it was unset), and what --env set.
    private static readonly Dictionary<string, string?> Originals = new();
    private static readonly Dictionary<string, string> Current = new();

    public static void Apply(IReadOnlyList<string> pairs)
    {
        foreach (var (key, original) in Originals) Environment.SetEnvironmentVariable(key, original);
        Originals.Clear();
        Current.Clear();
        foreach (var pair in pairs)
        {
            var (key, value) = Split(pair);
            if (!Originals.ContainsKey(key)) Originals[key] = Environment.GetEnvironmentVariable(key);
            Environment.SetEnvironmentVariable(key, value);
            Current[key] = value;
        }
    }

    /// <summary>Into a child's environment as well: .NET's own copy cannot hold an empty value (setting "" removes
    /// the variable), and `-e NAME=` means NAME set and empty, as in gunicorn.</summary>
    public static void ApplyTo(IDictionary<string, string?> environment)
    {
        foreach (var (key, value) in Current) environment[key] = value;
    }

    /// <summary>KEY=VALUE split at the first '=' (the value may hold more, and may be empty).</summary>
    public static (string Key, string Value) Split(string pair)
    {
        var eq = pair.IndexOf('=');
        return (pair[..eq], pair[(eq + 1)..]);
    }
}
