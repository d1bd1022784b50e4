namespace SharpWsgi.Gateway.Tests.Infrastructure;

/// <summary>An <see cref="IGatewayLog"/> that keeps its lines ("Level: message") for assertions.</summary>
public sealed class TestLog : IGatewayLog
{
    private readonly List<string> _lines = new();
    private readonly List<string?> _requestIds = new();

    public bool IsEnabled(GatewayLogLevel level) => true;

    public void Write(GatewayLogLevel level, string message)
    {
        lock (_lines)
        {
            _lines.Add($"{level}: {message}");
            _requestIds.Add(RequestScope.CurrentRequestId);
        }
    }

    /// <summary>The request ID in scope when each line was written, by line.</summary>
    public IReadOnlyList<string?> RequestIds
    {
        get { lock (_lines) return _requestIds.ToList(); }
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }

    public void Clear()
    {
        lock (_lines)
        {
            _lines.Clear();
            _requestIds.Clear();
        }
    }

    /// <summary>The lines that contain text, joined (for readable assertion failures).</summary>
    public string Matching(string text) =>
        string.Join("\n", Lines.Where(l => l.Contains(text, StringComparison.Ordinal)));
}
