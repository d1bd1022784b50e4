using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SharpWsgi.Http;

namespace SharpWsgi.Hosting.Tests.Http;

/// <summary>The delivery rules with made-up samples (src/SharpWsgi.Http/Delivery/DeliveryRule.cs),
/// and the tcp_info fields they read, checked on a real loopback connection.</summary>
public class DeliveryRuleTests
{
    private static readonly DeliveryLimits SendTimeoutOnly = new(SendTimeout: 5, MinRate: 0, Grace: 5);
    private static readonly DeliveryLimits RateOnly = new(SendTimeout: 0, MinRate: 1000, Grace: 3);

    /// <summary>Feeds one sample a second from t=0; returns the first verdict that drops, and when.</summary>
    private static (double At, DeliveryVerdict Verdict)? Run(DeliveryLimits limits,
        IEnumerable<(ulong Acked, bool Waiting)> samples)
    {
        var tracker = new DeliveryTracker();
        double t = 0;
        foreach (var (acked, waiting) in samples)
        {
            var verdict = tracker.Observe(limits, t, acked, waiting);
            if (verdict.Drop) return (t, verdict);
            t += 1;
        }
        return null;
    }

    private static IEnumerable<(ulong, bool)> Repeat(ulong acked, bool waiting, int count) =>
        Enumerable.Repeat((acked, waiting), count);

    [Fact]
    public void Observe_NothingAckedWhileWaiting_DropsForSendTimeoutAfterItsSeconds()
    {
        var drop = Run(SendTimeoutOnly, Repeat(1000, true, 20));
        Assert.NotNull(drop);
        Assert.Equal(5, drop.Value.At); // the first sample that saw data waiting starts the clock
        Assert.Equal(DeliveryRuleBroken.SendTimeout, drop.Value.Verdict.Rule);
        Assert.Equal(5, drop.Value.Verdict.Seconds);
    }

    [Fact]
    public void Observe_TickSlightlyEarly_StillCountsAsTheFullTimeout()
    {
        var tracker = new DeliveryTracker();
        Assert.False(tracker.Observe(SendTimeoutOnly, 10.0, 0, true).Drop);
        Assert.False(tracker.Observe(SendTimeoutOnly, 14.5, 0, true).Drop);
        Assert.True(tracker.Observe(SendTimeoutOnly, 14.95, 0, true).Drop); // a timer tick 50 ms early
    }

    [Fact]
    public void Observe_AckProgressEveryFewSeconds_NeverDropsForSendTimeout()
    {
        var samples = Enumerable.Range(0, 60).Select(i => ((ulong)(i / 4), true)); // a new ack every 4 s
        Assert.Null(Run(SendTimeoutOnly, samples));
    }

    [Fact]
    public void Observe_NothingWaiting_NeverDrops()
    {
        // A slow app or an idle keep-alive connection: nothing is owed to the client.
        Assert.Null(Run(new DeliveryLimits(1, 1_000_000, 2), Repeat(42, false, 100)));
    }

    [Fact]
    public void Observe_WaitInterrupted_ClockStartsOver()
    {
        var samples = Repeat(0, true, 4).Concat(Repeat(0, false, 1)).Concat(Repeat(0, true, 4))
            .Concat(Repeat(0, false, 1)).Concat(Repeat(0, true, 10));
        var drop = Run(SendTimeoutOnly, samples);
        Assert.Equal(10 + 5, drop!.Value.At); // only the last run lasts 5 s
    }

    [Fact]
    public void Observe_SteadyAboveMinRate_Kept()
    {
        var samples = Enumerable.Range(0, 100).Select(i => ((ulong)(i * 1200), true));
        Assert.Null(Run(RateOnly, samples));
    }

    [Fact]
    public void Observe_SteadyBelowMinRate_DroppedOnceTheGraceIsOver()
    {
        var samples = Enumerable.Range(0, 100).Select(i => ((ulong)(50_000 + i * 800), true));
        var drop = Run(RateOnly, samples);
        Assert.Equal(3, drop!.Value.At);
        Assert.Equal(DeliveryRuleBroken.MinRate, drop.Value.Verdict.Rule);
        Assert.Equal(800, drop.Value.Verdict.Rate); // counted from the first waiting sample, not from byte 0
        Assert.Equal(3, drop.Value.Verdict.Seconds);
    }

    [Fact]
    public void Observe_FastThenStalled_RateRuleWaitsForTheAverageAndSendTimeoutCatchesTheStall()
    {
        // 100 KB in the first 10 s, then nothing: the average stays at or above 1000 B/s until t=100, so the rate
        // rule alone keeps the client that long; the send timeout drops it 5 s into the stall.
        var samples = Enumerable.Range(0, 10).Select(i => ((ulong)(i * 10_000), true))
            .Concat(Repeat(100_000, true, 200)).ToList();
        Assert.Equal(101, Run(RateOnly, samples)!.Value.At);
        var both = Run(new DeliveryLimits(5, 1000, 3), samples);
        Assert.Equal(DeliveryRuleBroken.SendTimeout, both!.Value.Verdict.Rule);
        Assert.Equal(10 + 5, both.Value.At);
    }

    [Fact]
    public void Observe_BothRulesOff_NeverDrops()
    {
        var off = new DeliveryLimits(0, 0, 5);
        Assert.False(off.Enforced);
        Assert.Null(Run(off, Repeat(0, true, 100)));
    }

    [Fact]
    public void Parse_ShortTcpInfo_IsNullAsOnOldKernels()
    {
        Assert.Null(TcpDelivery.Parse(new byte[TcpDelivery.NeededLength - 1]));
        var info = new byte[TcpDelivery.NeededLength];
        info[24] = 3; // tcpi_unacked
        info[120] = 0x10; // tcpi_bytes_acked = 0x0110
        info[121] = 0x01;
        info[144] = 7; // tcpi_notsent_bytes
        Assert.Equal(new TcpDelivery(0x110, 7, 3), TcpDelivery.Parse(info));
    }

    /// <summary>The offsets against the kernel: a loopback client that does not read leaves bytes not sent; once it
    /// has read them all, bytes_acked is exactly what was written and nothing waits.</summary>
    [Fact]
    public void Read_LoopbackNonReaderThenReader_FieldsFollowTheKernel()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.ReceiveBufferSize = 4096;
        client.Connect(listener.LocalEndPoint!);
        using var server = listener.Accept();

        var before = TcpDelivery.Read(server);
        Assert.NotNull(before);
        Assert.False(before.Value.Waiting);
        var ackedBefore = before.Value.BytesAcked;

        server.Blocking = false;
        var block = new byte[64 * 1024];
        long written = 0;
        while (true)
        {
            var n = server.Send(block, 0, block.Length, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock) break;
            Assert.Equal(SocketError.Success, error);
            written += n;
        }
        var stalled = TcpDelivery.Read(server)!.Value;
        Assert.True(stalled.Waiting);
        Assert.True(stalled.NotSentBytes > 0, $"notsent {stalled.NotSentBytes}");
        Assert.True(stalled.BytesAcked - ackedBefore < (ulong)written, $"acked {stalled.BytesAcked} of {written}");

        var buffer = new byte[64 * 1024];
        long read = 0;
        while (read < written) read += client.Receive(buffer);
        var clock = Stopwatch.StartNew();
        TcpDelivery after;
        // The last ACK is on its way (delayed ACKs): poll briefly, bounded.
        while ((after = TcpDelivery.Read(server)!.Value).Waiting && clock.Elapsed < TimeSpan.FromSeconds(5))
            Thread.Sleep(10); // poll interval: the kernel's counters are what is awaited
        Assert.False(after.Waiting, $"still waiting: {after}");
        Assert.Equal(0u, after.NotSentBytes);
        Assert.Equal(0u, after.UnackedSegments);
        Assert.Equal((ulong)written, after.BytesAcked - ackedBefore);
    }
}
