using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace SharpWsgi.Logging;

/// <summary>
/// --log-syslog: this process's error log lines and, unless --disable-redirect-access-to-syslog, its access log
/// lines, sent to the syslog daemon in <see cref="SyslogFormat"/>. Callers only queue (see
/// <see cref="RecordBatcher"/>); the writer thread connects, sends and reconnects. A daemon that is away loses the
/// messages of that time, said once in the error log's file; it never stops the server.
/// </summary>
public sealed class SyslogSink : RecordBatcher
{
    // UDP's largest payload, less room for the header; rsyslog's default limit (8 KiB) is lower still and it
    // truncates on its own.
    private const int MaxMessageBytes = 65_000;
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly SyslogAddress _address;
    private readonly byte[][] _errorHeaders = new byte[8][];
    private readonly byte[] _accessHeader;
    private Socket? _socket;
    private bool _stream;
    private long _nextConnectAt;
    private bool _failing;
    private byte[] _frame = new byte[4096];

    public SyslogSink(SyslogAddress address, string facility, string prefix, Action<string> report)
        : base("syslog", 256 * 1024, report)
    {
        _address = address;
        var code = SyslogFormat.FacilityCode(facility);
        var pid = Environment.ProcessId;
        foreach (var level in new[] { LogLevel.Debug, LogLevel.Information, LogLevel.Warning, LogLevel.Error,
                     LogLevel.Critical })
        {
            var severity = SyslogFormat.Severity(level);
            _errorHeaders[severity] = SyslogFormat.Header(code, severity, prefix, "error", pid);
        }
        _accessHeader = SyslogFormat.Header(code, SyslogFormat.Severity(LogLevel.Information), prefix, "access", pid);
        AccessLines = new AccessLineSink(this);
        Start();
    }

    /// <summary>The access log's lines as syslog messages, at info.</summary>
    public ILogLineSink AccessLines { get; }

    /// <summary>One error log message (its text as the file shows it, without the time, pid and level: syslog
    /// carries those).</summary>
    public void Error(LogLevel level, string text)
    {
        var header = _errorHeaders[SyslogFormat.Severity(level)];
        var length = header.Length + Math.Min(Encoding.UTF8.GetMaxByteCount(text.Length), MaxMessageBytes);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            header.CopyTo(buffer, 0);
            var body = buffer.AsSpan(header.Length, length - header.Length);
            if (!Encoding.UTF8.TryGetBytes(text, body, out var written))
                written = Encoding.UTF8.GetBytes(text.AsSpan(0, MaxMessageBytes / 4), body); // a huge text: its start
            Append(buffer.AsSpan(0, header.Length + written));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Access(ReadOnlySpan<byte> line)
    {
        if (!line.IsEmpty && line[^1] == (byte)'\n') line = line[..^1];
        if (line.Length > MaxMessageBytes) line = line[..MaxMessageBytes];
        var length = _accessHeader.Length + line.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        _accessHeader.CopyTo(buffer, 0);
        line.CopyTo(buffer.AsSpan(_accessHeader.Length));
        Append(buffer.AsSpan(0, length));
        ArrayPool<byte>.Shared.Return(buffer);
    }

    protected override string DescribePeer() => _address.ToString();

    protected override void Deliver(ReadOnlySpan<byte> record)
    {
        // A daemon that restarted (a new /dev/log, a closed TCP connection) fails the first send: one reconnect.
        string? problem = null;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            if (_socket == null && !Connect()) break; // said by Connect, or a retry that is not due yet
            problem = Send(record);
            if (problem == null)
            {
                if (_failing)
                {
                    _failing = false;
                    Report($"Syslog: sending to {_address} again");
                }
                return;
            }
            Close();
        }
        if (problem != null) Fail(problem);
    }

    private bool Connect()
    {
        if (Stopwatch.GetTimestamp() < _nextConnectAt) return false;
        _nextConnectAt = Stopwatch.GetTimestamp() + (long)(RetryInterval.TotalSeconds * Stopwatch.Frequency);
        try
        {
            (_socket, _stream) = _address.Transport switch
            {
                SyslogTransport.UnixAny => ConnectUnixEitherKind(),
                SyslogTransport.UnixDatagram => (ConnectUnix(SocketType.Dgram), false),
                SyslogTransport.UnixStream => (ConnectUnix(SocketType.Stream), true),
                SyslogTransport.Udp => (ConnectNetwork(SocketType.Dgram, ProtocolType.Udp), false),
                _ => (ConnectNetwork(SocketType.Stream, ProtocolType.Tcp), true),
            };
            // A daemon that stops reading holds this thread at most this long per message, never a request.
            _socket.SendTimeout = 1000;
            return true;
        }
        catch (SocketException e)
        {
            Fail(e.Message);
            return false;
        }
    }

    private (Socket, bool Stream) ConnectUnixEitherKind()
    {
        try { return (ConnectUnix(SocketType.Dgram), false); }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ProtocolType)
        {
            return (ConnectUnix(SocketType.Stream), true);
        }
    }

    private Socket ConnectUnix(SocketType type)
    {
        var socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(_address.PathOrHost));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private Socket ConnectNetwork(SocketType type, ProtocolType protocol)
    {
        var addresses = Dns.GetHostAddresses(_address.PathOrHost);
        if (addresses.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
        var endpoint = new IPEndPoint(addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                                      ?? addresses[0], _address.Port);
        var socket = new Socket(endpoint.AddressFamily, type, protocol);
        try
        {
            if (type == SocketType.Stream)
            {
                // Connecting to a dead host would otherwise take the kernel's minutes.
                if (!socket.ConnectAsync(endpoint).Wait(TimeSpan.FromSeconds(2)))
                    throw new SocketException((int)SocketError.TimedOut);
            }
            else socket.Connect(endpoint);
            return socket;
        }
        catch (AggregateException e) when (e.InnerException is SocketException inner)
        {
            socket.Dispose();
            throw inner;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Null when sent, else why not. A datagram is the message; on a stream TCP frames it with its
    /// length (RFC 6587 octet counting, so a traceback's newlines stay in one message) and a unix stream ends it
    /// with NUL (as glibc's syslog(3) does).</summary>
    private string? Send(ReadOnlySpan<byte> record)
    {
        var socket = _socket!;
        ReadOnlySpan<byte> data = record;
        if (_stream)
        {
            var tcp = _address.Transport == SyslogTransport.Tcp;
            var needed = record.Length + 12;
            if (_frame.Length < needed) _frame = new byte[Math.Max(needed, _frame.Length * 2)];
            var n = 0;
            if (tcp)
            {
                n = Encoding.ASCII.GetBytes(record.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    _frame);
                _frame[n++] = (byte)' ';
            }
            record.CopyTo(_frame.AsSpan(n));
            n += record.Length;
            if (!tcp) _frame[n++] = 0;
            data = _frame.AsSpan(0, n);
        }
        while (!data.IsEmpty)
        {
            var sent = socket.Send(data, SocketFlags.None, out var error);
            if (error != SocketError.Success) return new SocketException((int)error).Message;
            if (sent <= 0) return "the connection was closed";
            data = data[sent..];
        }
        return null;
    }

    private void Fail(string problem)
    {
        if (_failing) return;
        _failing = true;
        Report($"Syslog: cannot send to {_address} ({problem}); its messages are dropped until it answers");
    }

    private void Close()
    {
        _socket?.Dispose();
        _socket = null;
    }

    public override void Dispose()
    {
        base.Dispose();
        Close();
    }

    private sealed class AccessLineSink : ILogLineSink
    {
        private readonly SyslogSink _sink;
        public AccessLineSink(SyslogSink sink) => _sink = sink;
        public void Write(ReadOnlySpan<byte> line) => _sink.Access(line);
        public void Reopen() { }
        public void Dispose() { } // the sink belongs to the error log's outlets, which end it last
    }
}
