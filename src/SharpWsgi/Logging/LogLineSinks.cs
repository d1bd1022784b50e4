namespace SharpWsgi.Logging;

/// <summary>Where finished log lines go (each ends with '\n'): a file (<see cref="LogSink"/>), syslog
/// (<see cref="SyslogSink.AccessLines"/>), or both (<see cref="TeeSink"/>). Write never waits.</summary>
public interface ILogLineSink : IDisposable
{
    void Write(ReadOnlySpan<byte> line);
    /// <summary>SIGUSR1: reopen a file by its name (after logrotate moved it); nothing for a socket.</summary>
    void Reopen();
}

/// <summary>Every line to two sinks (the access log file and syslog).</summary>
public sealed class TeeSink : ILogLineSink
{
    private readonly ILogLineSink _first;
    private readonly ILogLineSink _second;

    public TeeSink(ILogLineSink first, ILogLineSink second)
    {
        _first = first;
        _second = second;
    }

    public void Write(ReadOnlySpan<byte> line)
    {
        _first.Write(line);
        _second.Write(line);
    }

    public void Reopen()
    {
        _first.Reopen();
        _second.Reopen();
    }

    public void Dispose()
    {
        _first.Dispose();
        _second.Dispose();
    }
}
