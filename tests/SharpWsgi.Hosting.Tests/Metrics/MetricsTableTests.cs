using System.Diagnostics;
using SharpWsgi.Metrics;

namespace SharpWsgi.Hosting.Tests.Metrics;

/// <summary>The shared table without processes: bucket edges and folding an exited worker. The page
/// itself is checked by the functional MetricsTests.</summary>
public sealed class MetricsTableTests
{
    private static long Ticks(double seconds) => (long)(seconds * Stopwatch.Frequency);

    [Fact]
    public void Layout_CountersGaugesHistograms_InOrderAndWithinTheSlot()
    {
        Assert.True(MetricsTable.StaticSendfileBytes < MetricsTable.SlowClientsSendTimeout);
        Assert.True(MetricsTable.SlowClientsMinRate < MetricsTable.CounterEnd);
        Assert.Equal(MetricsTable.CounterEnd, MetricsTable.BusyThreads);
        Assert.True(MetricsTable.BufferedResponseBytes < MetricsTable.GaugeEnd);
        Assert.True(MetricsTable.GaugeEnd <= MetricsTable.Histograms);
        Assert.True(MetricsTable.Histograms + MetricsTable.HistogramCount * MetricsTable.HistogramLongs
            <= MetricsTable.SlotLongs);
    }

    [Fact]
    public void Observe_AtAndPastBounds_LandsInTheInclusiveBucketAndNegativeIsIgnored()
    {
        var (table, path) = MetricsTable.Create();
        try
        {
            using var worker = MetricsTable.Open(path, 3);
            worker.Observe(MetricsTable.QueueWait, Ticks(0.0005)); // le="0.0005" holds exactly 0.5 ms
            worker.Observe(MetricsTable.QueueWait, Ticks(0.0005) + 1);
            worker.Observe(MetricsTable.QueueWait, Ticks(31)); // past 30 s: +Inf only
            worker.Observe(MetricsTable.QueueWait, -1); // a stage that was not reached
            var totals = new long[MetricsTable.SlotLongs];
            table.AddCountsTo(3, totals);
            var h = MetricsTable.Histograms + MetricsTable.QueueWait * MetricsTable.HistogramLongs;
            Assert.Equal(1, totals[h]);
            Assert.Equal(1, totals[h + 1]);
            Assert.Equal(1, totals[h + MetricsTable.Buckets - 1]);
            Assert.Equal(3, Enumerable.Range(h, MetricsTable.Buckets).Sum(i => totals[i]));
            Assert.InRange(totals[h + MetricsTable.Buckets], 31_000_000 + 1000 - 2, 31_000_000 + 1000 + 2); // µs
        }
        finally
        {
            table.Dispose();
            File.Delete(path);
        }
    }

    [Fact]
    public void Fold_ExitedWorker_KeepsCountersDropsGaugesAndClearsTheSlot()
    {
        var (table, path) = MetricsTable.Create();
        try
        {
            using (var worker = MetricsTable.Open(path, 0))
            {
                worker.Add(MetricsTable.RequestIndex("PATCH", 204));
                worker.Add(MetricsTable.RequestIndex("BREW", 418));
                worker.Add(MetricsTable.ResponseBytes, 42);
                worker.Set(MetricsTable.OpenConnections, 7);
            }
            var totals = new long[MetricsTable.SlotLongs];
            table.Fold(0, totals);
            Assert.Equal(1, totals[MetricsTable.RequestIndex("PATCH", 200)]);
            Assert.Equal(1, totals[MetricsTable.RequestIndex("other", 404)]);
            Assert.Equal(42, totals[MetricsTable.ResponseBytes]);
            Assert.Equal(0, totals[MetricsTable.OpenConnections]); // a dead worker holds no connections
            var after = new long[MetricsTable.SlotLongs];
            table.AddCountsTo(0, after);
            table.AddGaugesTo(0, after);
            Assert.All(after, v => Assert.Equal(0, v)); // the next worker in this slot starts from zero
        }
        finally
        {
            table.Dispose();
            File.Delete(path);
        }
    }
}
