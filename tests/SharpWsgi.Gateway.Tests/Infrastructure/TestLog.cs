namespace SharpWsgi.Gateway.Tests.Infrastructure;

/// <summary>An <see cref="IGatewayLog"/> that keeps its lines ("Level: message") for assertions.</summary>
public sealed class TestLog : IGatewayLog
{
    private readonly List<string> _lines = new();

    public bool IsEnabled(GatewayLogLevel level) => true;

    public void Write(GatewayLogLevel level, string message)
    {
        lock (_lines) _lines.Add($"{level}: {message}");
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }

    public void Clear()
    {
        lock (_lines) _lines.Clear();
    }

    /// <summary>The lines that contain text, joined (for readable assertion failures).</summary>
    public string Matching(string text) =>
        string.Join("\n", Lines.Where(l => l.Contains(text, StringComparison.Ordinal)));
}
