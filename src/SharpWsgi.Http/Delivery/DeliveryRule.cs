using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SharpWsgi.Http;

/// <summary>The two delivery rules of --send-timeout and --min-download-rate (after --min-rate-grace); 0 disables
/// a rule.</summary>
public readonly record struct DeliveryLimits(double SendTimeout, double MinRate, double Grace)
{
    public bool Enforced => SendTimeout > 0 || MinRate > 0;
}

/// <summary>Which rule a dropped connection broke (its metrics counter's reason).</summary>
public enum DeliveryRuleBroken { None, SendTimeout, MinRate }

/// <summary>A decision: keep, or drop for a rule, with the figures the log line reports.</summary>
public readonly record struct DeliveryVerdict(DeliveryRuleBroken Rule, double Seconds, double Rate)
{
    public static readonly DeliveryVerdict Keep = default;
    public bool Drop => Rule != DeliveryRuleBroken.None;
}

/// <summary>
/// The delivery rules of one connection, fed with samples of its socket (no I/O here, so it is tested with made-up
/// samples). Only what the client's TCP acknowledged counts, not what the server managed to buffer for it: Kestrel's
/// own MinResponseDataRate counts bytes written into its buffer and so gives a client that never reads bytes/rate
/// seconds for every buffered byte (73 minutes per MiB at 240 B/s). Time runs only while the server has data waiting
/// for the client; a slow app, or an idle keep-alive connection, breaks no rule.
/// </summary>
public struct DeliveryTracker
{
    /// <summary>Timer ticks come a little early or late; a tick this much short of a limit still counts.</summary>
    public const double Slack = 0.1;

    private bool _waiting;
    private double _since;     // first sample of the current waiting run (rule 2's t0)
    private ulong _ackedSince; // acked at _since (rule 2's baseline)
    private double _stallSince; // first sample that saw the current acked value while waiting (rule 1)
    private ulong _lastAcked;

    /// <summary>
    /// One sample: the time (seconds, monotonic), the bytes the client's TCP acknowledged so far, and whether the
    /// server has bytes waiting for it (unsent in the socket buffer, or sent and not yet acknowledged). Times are
    /// taken from the samples themselves, never from before the first one that saw data waiting, so a rule never
    /// fires early; it fires at most one sampling period late.
    /// </summary>
    public DeliveryVerdict Observe(in DeliveryLimits limits, double now, ulong acked, bool waiting)
    {
        if (!waiting)
        {
            _waiting = false; // everything was taken: both rules start over with the next wait
            return DeliveryVerdict.Keep;
        }
        if (!_waiting)
        {
            _waiting = true;
            _since = _stallSince = now;
            _ackedSince = _lastAcked = acked;
            return DeliveryVerdict.Keep;
        }
        if (acked != _lastAcked)
        {
            _lastAcked = acked;
            _stallSince = now;
        }
        var stalled = now - _stallSince;
        if (limits.SendTimeout > 0 && stalled >= limits.SendTimeout - Slack)
            return new DeliveryVerdict(DeliveryRuleBroken.SendTimeout, stalled, 0);
        var elapsed = now - _since;
        if (limits.MinRate > 0 && elapsed > 0 && elapsed >= limits.Grace - Slack)
        {
            var rate = (acked - _ackedSince) / elapsed;
            if (rate < limits.MinRate) return new DeliveryVerdict(DeliveryRuleBroken.MinRate, elapsed, rate);
        }
        return DeliveryVerdict.Keep;
    }
}

/// <summary>What the kernel knows about a TCP connection's sending side (Linux struct tcp_info).</summary>
public readonly record struct TcpDelivery(ulong BytesAcked, uint NotSentBytes, uint UnackedSegments)
{
    private const int IpProtoTcp = 6, TcpInfoOption = 11;
    // Offsets in struct tcp_info (linux/tcp.h): eight u8 fields, then u32 tcpi_rto at 8 ... tcpi_unacked at 24;
    // tcpi_bytes_acked (u64, Linux 4.1) at 120; tcpi_notsent_bytes (u32, Linux 4.6) at 144.
    internal const int UnackedOffset = 24, BytesAckedOffset = 120, NotSentOffset = 144;
    /// <summary>Bytes of tcp_info up to and including tcpi_notsent_bytes: a shorter answer is an older kernel.
    /// </summary>
    public const int NeededLength = NotSentOffset + 4;

    /// <summary>Bytes the server wrote that the client has not taken yet, as far as the socket knows.</summary>
    public bool Waiting => NotSentBytes > 0 || UnackedSegments > 0;

    /// <summary>Null when the socket is closed, not TCP, or the kernel's tcp_info lacks the fields.</summary>
    public static TcpDelivery? Read(Socket socket)
    {
        Span<byte> info = stackalloc byte[256];
        int length;
        try { length = socket.GetRawSocketOption(IpProtoTcp, TcpInfoOption, info); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { return null; }
        return Parse(info[..length]);
    }

    public static TcpDelivery? Parse(ReadOnlySpan<byte> info) =>
        info.Length < NeededLength ? null : new TcpDelivery(
            MemoryMarshal.Read<ulong>(info[BytesAckedOffset..]), // the kernel's own (native) byte order
            MemoryMarshal.Read<uint>(info[NotSentOffset..]),
            MemoryMarshal.Read<uint>(info[UnackedOffset..]));
}
