using SharpWsgi.Python;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Logging;

/// <summary>
/// The error log: gunicorn's line format ("[time] [pid] [LEVEL] message") on stderr or a file, and through
/// <see cref="LogOutlets"/> to syslog and, as counts of warnings and worse, to statsd.
/// Kestrel's own chatter (bad requests, resets) is kept at debug unless it is a warning or worse.
/// </summary>
public sealed class ErrorLogProvider : ILoggerProvider, ILoggerFactory
{
    private readonly LogLevel _minimum;
    private TextWriter _out;
    private readonly string? _path;
    private readonly object _gate = new();
    private readonly int _pid = Environment.ProcessId;

    private readonly bool _json;
    private readonly LogOutlets? _outlets;

    /// <param name="path">A file to append to, or null / "-" for stderr.</param>
    /// <param name="json">--log-format json: one JSON object per line.</param>
    /// <param name="outlets">Syslog and statsd, when configured (<see cref="LogOutlets.From"/>); ended with this.
    /// </param>
    public ErrorLogProvider(LogLevel minimum, string? path = null, bool json = false, LogOutlets? outlets = null)
    {
        _json = json;
        _minimum = minimum;
        _path = path is null or "-" ? null : Path.GetFullPath(path);
        _out = Open();
        _outlets = outlets;
        outlets?.ReportTo(message => Write(LogLevel.Warning, message, null, toOutlets: false));
    }

    /// <summary>Syslog and statsd of this process, or null.</summary>
    public LogOutlets? Outlets => _outlets;

    // O_APPEND, as the access log: the supervisor and its workers append to one file, and .NET's FileMode.Append
    // writes at the offset each process last knew (pwrite), so their lines would overwrite each other.
    private TextWriter Open()
    {
        if (_path == null) return StandardError();
        var fd = Libc.Open(_path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC, 0x1a4 /* 0644 */);
        if (fd < 0)
            throw new IOException($"cannot open the log file {_path}: " +
                new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError()).Message);
        var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        return new StreamWriter(new FileStream(handle, FileAccess.Write, bufferSize: 0)) { AutoFlush = true };
    }

    /// <summary>Descriptor 2 itself: .NET's Console.Error writes to a duplicate taken at its first use, which would
    /// keep writing to the terminal after --daemon (or --capture-output) has pointed descriptor 2 elsewhere.</summary>
    private static TextWriter StandardError()
    {
        try
        {
            var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(2, ownsHandle: false);
            return new StreamWriter(new FileStream(handle, FileAccess.Write, bufferSize: 0)) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return Console.Error; // descriptor 2 closed or unusable: Console.Error drops what it cannot write
        }
    }

    /// <summary>SIGUSR1: reopen the log file (after logrotate moved it).</summary>
    public void Reopen()
    {
        if (_path == null) return;
        lock (_gate)
        {
            var old = _out;
            _out = Open();
            old.Dispose();
        }
    }

    public static LogLevel ParseLevel(string level) => level switch
    {
        "debug" => LogLevel.Debug,
        "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "critical" => LogLevel.Critical,
        _ => LogLevel.Information,
    };

    /// <summary>Kestrel's own refusals of malformed requests (it answers them without asking the application):
    /// called with the connection's ID and Kestrel's exception, whatever the log level, so the access log and the
    /// metrics can count them. Set before the server starts.</summary>
    public Action<string?, Exception>? KestrelRefusal { get; set; }

    private const string BadRequestsCategory = "Microsoft.AspNetCore.Server.Kestrel.BadRequests";

    public ILogger CreateLogger(string categoryName)
    {
        // Framework categories get a floor of Warning so an ordinary bad request is not an error-log line.
        var floor = categoryName.StartsWith("Microsoft.", StringComparison.Ordinal) && _minimum > LogLevel.Debug
            ? LogLevel.Warning : _minimum;
        return new ErrorLogger(this, floor, categoryName == BadRequestsCategory);
    }

    public void AddProvider(ILoggerProvider provider) { }

    /// <summary>Sends what syslog and statsd still have queued (a second at most) and ends them.</summary>
    public void Dispose() => _outlets?.Dispose();

    /// <summary>gunicorn's statsd logger counts warnings and worse whatever --log-level lets through.</summary>
    private bool Counting => _outlets?.Statsd != null;

    private void Count(LogLevel level, string message, Exception? exception) =>
        _outlets?.Statsd?.CountLogLine(level, exception != null ||
            message.Contains("Traceback (most recent call last)", StringComparison.Ordinal));

    /// <param name="toOutlets">False for the outlets' own trouble, which goes to the file only.</param>
    internal void Write(LogLevel level, string message, Exception? exception, bool toOutlets = true)
    {
        var name = level switch
        {
            LogLevel.Trace or LogLevel.Debug => "DEBUG",
            LogLevel.Information => "INFO",
            LogLevel.Warning => "WARNING",
            LogLevel.Error => "ERROR",
            _ => "CRITICAL",
        };
        // Set while a Python thread runs a request: the app's logging and wsgi.errors lines say which one.
        var requestId = SharpWsgi.Gateway.RequestScope.CurrentRequestId;
        string text;
        if (_json)
        {
            var line = new LogLine(128 + message.Length);
            Span<byte> iso = stackalloc byte[40];
            DateTimeOffset.UtcNow.TryFormat(iso, out var n, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'",
                System.Globalization.CultureInfo.InvariantCulture);
            line.Ascii("{\"time\":\""); line.Raw(iso[..n]);
            line.Ascii("\",\"level\":\""); line.Ascii(name);
            line.Ascii("\",\"pid\":"); line.Number(_pid);
            line.Ascii(",\"message\":");
            line.Json(exception != null ? message + "\n" + exception : message);
            if (requestId != null) { line.Ascii(",\"request_id\":"); line.Json(requestId); }
            line.Raw((byte)'}');
            text = Encoding.ASCII.GetString(line.Written);
            var (buffer, _) = line.Detach();
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        else
        {
            var sb = new StringBuilder(64 + message.Length);
            sb.Append('[').Append(DateTimeOffset.Now.ToString("yyyy-MM-dd HH:mm:ss zzz").Remove(23, 1)).Append("] [")
              .Append(_pid).Append("] [").Append(name).Append("] ");
            if (requestId != null) sb.Append('[').Append(requestId).Append("] ");
            sb.Append(message);
            if (exception != null) sb.Append('\n').Append(exception);
            text = sb.ToString();
        }
        lock (_gate)
        {
            _out.WriteLine(text);
            _out.Flush();
        }
        if (toOutlets && _outlets?.Syslog is { } syslog)
        {
            // Syslog stamps the time, pid and severity itself: the text line goes without its head.
            if (_json) syslog.Error(level, text);
            else
            {
                var body = requestId != null ? $"[{requestId}] {message}" : message;
                syslog.Error(level, exception != null ? body + "\n" + exception : body);
            }
        }
    }

    /// <summary>Kestrel's startup claim that a cleartext HTTP/1.1+HTTP/2 port serves HTTP/1.1 only: untrue here,
    /// where CleartextHttp2 answers prior-knowledge h2c on it.</summary>
    private static bool IsMisleading(EventId eventId) => eventId.Name == "Http2DisabledWithHttp1AndNoTls";

    private sealed class ErrorLogger : ILogger
    {
        private readonly ErrorLogProvider _provider;
        private readonly LogLevel _minimum;
        private readonly bool _badRequests;

        public ErrorLogger(ErrorLogProvider provider, LogLevel minimum, bool badRequests)
        {
            _provider = provider;
            _minimum = minimum;
            _badRequests = badRequests;
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) =>
            (logLevel >= _minimum || (_badRequests && _provider.KestrelRefusal != null) ||
             (logLevel >= LogLevel.Warning && _provider.Counting)) && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            if (_badRequests && eventId.Name == "ConnectionBadRequest" && exception != null &&
                _provider.KestrelRefusal is { } refusal)
                refusal(ConnectionId(state), exception);
            if (logLevel == LogLevel.None || IsMisleading(eventId)) return;
            var counted = logLevel >= LogLevel.Warning && _provider.Counting;
            if (logLevel < _minimum && !counted) return;
            var message = formatter(state, exception);
            if (counted) _provider.Count(logLevel, message, exception);
            if (logLevel >= _minimum) _provider.Write(logLevel, message, exception);
        }

        private static string? ConnectionId<TState>(TState state)
        {
            if (state is IReadOnlyList<KeyValuePair<string, object?>> fields)
                foreach (var (key, value) in fields)
                    if (key == "ConnectionId") return value as string;
            return null;
        }
    }
}
