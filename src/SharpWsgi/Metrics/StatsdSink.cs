using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using SharpWsgi.Logging;

namespace SharpWsgi.Metrics;

/// <summary>
/// --statsd-host: gunicorn's statsd metrics, under gunicorn's names (gunicorn/instrument/statsd.py), sent over UDP
/// or a unix datagram socket. Each process has one: a worker counts its requests
/// (<see cref="RequestDone"/>), the supervisor sets the worker gauge (<see cref="Workers"/>), and every process
/// counts its error log's warnings and worse (<see cref="CountLogLine"/>). Callers format a few bytes and queue them
/// (<see cref="RecordBatcher"/>); the writer thread packs the lines into datagrams of at most
/// <see cref="MaxPacketBytes"/>, one per line being what gunicorn sends, so a request costs no system call.
/// </summary>
public sealed class StatsdSink : RecordBatcher
{
    /// <summary>Fits one Ethernet frame with IP and UDP headers (statsd's advice for a LAN); statsd and
    /// DogStatsD split a datagram's lines at '\n'.</summary>
    public const int MaxPacketBytes = 1432;
    /// <summary>Gauges are sent again this often, so a statsd that restarted (and forgot them) learns them again.
    /// </summary>
    private static readonly TimeSpan GaugeRefresh = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly StatsdAddress _address;
    private readonly string _prefix;
    private readonly string _tags;
    private readonly byte[] _durationHead;
    private readonly byte[] _timerTail;
    private readonly byte[] _requestsLine;
    private readonly byte[]?[] _statusLines = new byte[1000][];
    private readonly byte[][] _logLines;
    private int _lastWorkers = -1;
    private long _gaugesSentAt;

    // The writer thread's own state.
    private Socket? _socket;
    private long _nextConnectAt;
    private bool _failing;
    private readonly byte[] _packet = new byte[MaxPacketBytes];
    private int _packetUsed;

    public StatsdSink(StatsdAddress address, string prefix, string? tags, Action<string> report)
        : base("statsd", 64 * 1024, report)
    {
        _address = address;
        _prefix = NormalizePrefix(prefix);
        _tags = string.IsNullOrEmpty(tags) ? "" : "|#" + tags;
        _durationHead = Ascii($"{_prefix}gunicorn.request.duration:");
        _timerTail = Ascii("|ms" + _tags);
        _requestsLine = Counter("gunicorn.requests");
        _logLines = new[] { "critical", "error", "warning", "exception" }
            .Select(kind => Counter("gunicorn.log." + kind)).ToArray();
        Start();
    }

    /// <summary>gunicorn's rule: a prefix gets one '.' after it (and "app..", one too); empty stays empty.</summary>
    public static string NormalizePrefix(string prefix)
    {
        var trimmed = prefix.TrimEnd('.');
        return trimmed.Length == 0 ? "" : trimmed + ".";
    }

    /// <summary>Null when <paramref name="value"/> can be part of a metric name, else why not: statsd's
    /// separators (: | @ #) and anything but printable ASCII would corrupt every line.</summary>
    public static string? ValidatePrefix(string value)
    {
        foreach (var c in value)
            if (c is ':' or '|' or '@' or '#' || c <= ' ' || c > '~')
                return $"a statsd prefix cannot contain '{(c <= ' ' || c > '~' ? $"\\x{(int)c:x2}" : c)}'";
        return null;
    }

    /// <summary>Null for tags DogStatsD reads (tag:value,tag2), else why not.</summary>
    public static string? ValidateTags(string value)
    {
        if (value.Length == 0) return "expected tags such as env:prod,service:shop";
        foreach (var c in value)
            if (c == '|' || c <= ' ' || c > '~')
                return $"dogstatsd tags cannot contain '{(c <= ' ' || c > '~' ? $"\\x{(int)c:x2}" : c)}'";
        return null;
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);
    private byte[] Counter(string name) => Ascii($"{_prefix}{name}:1|c{_tags}");

    // Each caller thread formats its record here; the batcher copies it out.
    [ThreadStatic] private static byte[]? _scratch;

    /// <summary>A finished request (gunicorn's Statsd.access): its duration in ms, the request count and the
    /// count of its status, as one record of three lines.</summary>
    public void RequestDone(int status, long durationTicks)
    {
        var line = new LogLine(_scratch ??= new byte[512]);
        line.Raw(_durationHead);
        line.Milliseconds(durationTicks);
        line.Raw(_timerTail);
        line.Raw((byte)'\n');
        line.Raw(_requestsLine);
        line.Raw((byte)'\n');
        line.Raw(StatusLine(status));
        Append(line.Written);
        line.Release();
    }

    private byte[] StatusLine(int status)
    {
        if (status is < 100 or > 999) status = 999;
        return _statusLines[status] ??= Counter($"gunicorn.request.status.{status}");
    }

    /// <summary>A line of the error log at warning or worse (gunicorn's Statsd counts its own logger's calls):
    /// gunicorn.log.critical, .error, .warning; an error that carries a traceback is gunicorn's log.exception.
    /// </summary>
    public void CountLogLine(LogLevel level, bool traceback)
    {
        var index = level switch
        {
            LogLevel.Critical => 0,
            LogLevel.Error => traceback ? 3 : 1,
            LogLevel.Warning => 2,
            _ => -1,
        };
        if (index >= 0) Append(_logLines[index]);
    }

    /// <summary>The supervisor's worker processes (gunicorn.workers, a gauge): sent when the number changes, and
    /// again every <see cref="GaugeRefresh"/>.</summary>
    public void Workers(int count)
    {
        if (Interlocked.Exchange(ref _lastWorkers, count) == count) return;
        SendGauges();
    }

    private void SendGauges()
    {
        var workers = Volatile.Read(ref _lastWorkers);
        if (workers < 0) return;
        Volatile.Write(ref _gaugesSentAt, Stopwatch.GetTimestamp());
        Append(Ascii($"{_prefix}gunicorn.workers:{workers}|g{_tags}"));
    }

    protected override TimeSpan IdleWait =>
        Volatile.Read(ref _lastWorkers) >= 0 ? GaugeRefresh : Timeout.InfiniteTimeSpan;

    protected override void Tick()
    {
        if (Volatile.Read(ref _lastWorkers) >= 0 &&
            Stopwatch.GetElapsedTime(Volatile.Read(ref _gaugesSentAt)) >= GaugeRefresh)
            SendGauges();
    }

    protected override string DescribePeer() => _address.ToString();

    protected override void Deliver(ReadOnlySpan<byte> record)
    {
        if (_packetUsed > 0 && _packetUsed + 1 + record.Length > MaxPacketBytes) SendPacket();
        if (record.Length > MaxPacketBytes)
        {
            SendDatagram(record); // one line longer than a packet (a very long prefix): alone
            return;
        }
        if (_packetUsed > 0) _packet[_packetUsed++] = (byte)'\n';
        record.CopyTo(_packet.AsSpan(_packetUsed));
        _packetUsed += record.Length;
    }

    protected override void BatchDone()
    {
        if (_packetUsed > 0) SendPacket();
    }

    private void SendPacket()
    {
        SendDatagram(_packet.AsSpan(0, _packetUsed));
        _packetUsed = 0;
    }

    private void SendDatagram(ReadOnlySpan<byte> datagram)
    {
        if (_socket == null && !Connect()) return;
        var sent = _socket!.Send(datagram, SocketFlags.None, out var error);
        // Nobody listening yet (ECONNREFUSED from an earlier datagram's ICMP) or a full receive queue: statsd is
        // lossy by design; the metrics of this packet are lost, the next packet tries again.
        if (error == SocketError.Success && sent == datagram.Length)
        {
            if (_failing)
            {
                _failing = false;
                Report($"Statsd: sending to {_address} again");
            }
            return;
        }
        Fail(error == SocketError.Success ? "a short send" : new SocketException((int)error).Message);
        if (error is not (SocketError.ConnectionRefused or SocketError.WouldBlock
            or SocketError.NoBufferSpaceAvailable))
        {
            _socket.Dispose();
            _socket = null;
        }
    }

    private bool Connect()
    {
        if (Stopwatch.GetTimestamp() < _nextConnectAt) return false;
        _nextConnectAt = Stopwatch.GetTimestamp() + (long)(RetryInterval.TotalSeconds * Stopwatch.Frequency);
        Socket? socket = null;
        try
        {
            EndPoint endpoint;
            if (_address.IsUnix)
            {
                socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                endpoint = new UnixDomainSocketEndPoint(_address.PathOrHost);
            }
            else
            {
                var addresses = Dns.GetHostAddresses(_address.PathOrHost);
                if (addresses.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
                var ip = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses[0];
                socket = new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                endpoint = new IPEndPoint(ip, _address.Port);
            }
            socket.Connect(endpoint);
            socket.Blocking = false; // a full queue drops the packet instead of holding the writer
            _socket = socket;
            return true;
        }
        catch (SocketException e)
        {
            socket?.Dispose();
            Fail(e.Message);
            return false;
        }
    }

    private void Fail(string problem)
    {
        if (_failing) return;
        _failing = true;
        Report($"Statsd: cannot send to {_address} ({problem}); metrics are dropped until it answers");
    }

    public override void Dispose()
    {
        base.Dispose();
        _socket?.Dispose();
        _socket = null;
    }
}
