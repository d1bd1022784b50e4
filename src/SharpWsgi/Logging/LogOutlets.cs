using SharpWsgi.Configuration;
using SharpWsgi.Metrics;

namespace SharpWsgi.Logging;

/// <summary>
/// Where this process's logs and gunicorn-style metrics go besides the error log's file: syslog (--log-syslog)
/// and statsd (--statsd-host). One of each per process (supervisor or worker), owned by the error log
/// (<see cref="ErrorLogProvider"/>), which counts its own lines into statsd (as gunicorn's Statsd logger does) and
/// ends them last, after the final lines. Null when neither is configured, so the off case costs a null check.
/// </summary>
public sealed class LogOutlets : IDisposable
{
    private Action<string> _report = _ => { };

    public SyslogSink? Syslog { get; }
    public StatsdSink? Statsd { get; }
    /// <summary>Access log lines go to syslog too (--log-syslog without --disable-redirect-access-to-syslog).
    /// </summary>
    public bool SyslogAccessLines { get; }

    private LogOutlets(ServerSettings settings)
    {
        if (settings.Syslog)
        {
            // gunicorn's proc_name is --name (another room's setting: read by name, unset until it exists).
            var prefix = SyslogFormat.Prefix(settings.SyslogPrefix, settings.Get("name"), settings.App);
            Syslog = new SyslogSink(SyslogAddress.Parse(settings.SyslogAddress), settings.SyslogFacility, prefix,
                message => _report(message));
            SyslogAccessLines = settings.SyslogAccessLog;
        }
        if (settings.StatsdHost is { } host)
            Statsd = new StatsdSink(StatsdAddress.Parse(host), settings.StatsdPrefix, settings.DogstatsdTags,
                message => _report(message));
        // Environment.Exit (a worker's heartbeat kill) skips the error log's disposal: what is queued goes first.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
    }

    /// <summary>This process's outlets; null when none is configured, and for --check-config (a check sends
    /// nothing anywhere).</summary>
    public static LogOutlets? From(ServerSettings settings)
    {
        if (settings.CheckConfig || WorkerProtocol.IsCheckWorker) return null;
        if (!settings.Syslog && settings.StatsdHost == null) return null;
        return new LogOutlets(settings);
    }

    /// <summary>Where the outlets' own trouble (a daemon away) is said: the error log's file, never the outlets.
    /// </summary>
    internal void ReportTo(Action<string> report) => _report = report;

    /// <summary>The access log's destination: the file (--access-logfile), syslog, both, or none (null).</summary>
    public static ILogLineSink? AccessLineSink(string? accessLogFile, LogOutlets? outlets, Action<string> report)
    {
        var file = accessLogFile is { } path ? new LogSink(path, report) : null;
        var syslog = outlets is { SyslogAccessLines: true, Syslog: { } sink } ? sink.AccessLines : null;
        return (file, syslog) switch
        {
            ({ } f, { } s) => new TeeSink(f, s),
            ({ } f, null) => f,
            (null, { } s) => s,
            _ => null,
        };
    }

    public void Dispose()
    {
        Syslog?.Dispose();
        Statsd?.Dispose();
    }
}
