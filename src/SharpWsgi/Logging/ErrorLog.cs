using System.Text;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Logging;

/// <summary>
/// The error log: gunicorn's line format ("[time] [pid] [LEVEL] message") on stderr.
/// Kestrel's own chatter (bad requests, resets) is kept at debug unless it is a warning or worse.
/// </summary>
public sealed class ErrorLogProvider : ILoggerProvider, ILoggerFactory
{
    private readonly LogLevel _minimum;
    private readonly TextWriter _out;
    private readonly object _gate = new();
    private readonly int _pid = Environment.ProcessId;

    public ErrorLogProvider(LogLevel minimum, TextWriter? output = null)
    {
        _minimum = minimum;
        _out = output ?? Console.Error;
    }

    public static LogLevel ParseLevel(string level) => level switch
    {
        "debug" => LogLevel.Debug,
        "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "critical" => LogLevel.Critical,
        _ => LogLevel.Information,
    };

    public ILogger CreateLogger(string categoryName)
    {
        // Framework categories get a floor of Warning so an ordinary bad request is not an error-log line.
        var floor = categoryName.StartsWith("Microsoft.", StringComparison.Ordinal) && _minimum > LogLevel.Debug
            ? LogLevel.Warning : _minimum;
        return new ErrorLogger(this, floor);
    }

    public void AddProvider(ILoggerProvider provider) { }
    public void Dispose() { }

    internal void Write(LogLevel level, string message, Exception? exception)
    {
        var name = level switch
        {
            LogLevel.Trace or LogLevel.Debug => "DEBUG",
            LogLevel.Information => "INFO",
            LogLevel.Warning => "WARNING",
            LogLevel.Error => "ERROR",
            _ => "CRITICAL",
        };
        var sb = new StringBuilder(64 + message.Length);
        sb.Append('[').Append(DateTimeOffset.Now.ToString("yyyy-MM-dd HH:mm:ss zzz").Remove(23, 1)).Append("] [")
          .Append(_pid).Append("] [").Append(name).Append("] ").Append(message);
        if (exception != null) sb.Append('\n').Append(exception);
        lock (_gate)
        {
            _out.WriteLine(sb.ToString());
            _out.Flush();
        }
    }

    private sealed class ErrorLogger : ILogger
    {
        private readonly ErrorLogProvider _provider;
        private readonly LogLevel _minimum;
        public ErrorLogger(ErrorLogProvider provider, LogLevel minimum) { _provider = provider; _minimum = minimum; }
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= _minimum && logLevel != LogLevel.None;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            _provider.Write(logLevel, formatter(state, exception), exception);
        }
    }
}
