using System.Buffers.Binary;

namespace SharpWsgi.Logging;

/// <summary>
/// Whole records (a syslog message, a group of statsd lines) handed to a network peer off the caller's thread: a
/// caller copies its record into the current batch under a short lock, and one background thread swaps the batch
/// with a spare and delivers each record. The batch is bounded: records past it are dropped and said once per
/// spell, so neither a Kestrel thread nor a Python thread ever waits for the peer.
/// The writer naps between busy batches instead of being woken per record (<see cref="LogSink"/> measured why: a
/// wake-up costs the caller more than the copy).
/// </summary>
public abstract class RecordBatcher : IDisposable
{
    private const int NapMilliseconds = 20;
    private const int Awake = 0, Napping = 1, Idle = 2;
    private readonly object _gate = new();
    private readonly int _wakeAtBytes;
    private byte[] _current;
    private byte[] _spare;
    private int _used;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Thread _thread;
    private int _sleeping;
    private int _overflowSaid;
    private volatile bool _stopping;

    /// <summary>Where the batcher's own trouble is said, once per spell (never back into itself).</summary>
    protected Action<string> Report { get; }

    /// <param name="name">The writer thread's name, and how <see cref="Report"/> names this outlet.</param>
    protected RecordBatcher(string name, int batchBytes, Action<string> report)
    {
        Name = name;
        Report = report;
        _current = new byte[batchBytes];
        _spare = new byte[batchBytes];
        _wakeAtBytes = batchBytes / 4;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    public string Name { get; }

    /// <summary>Starts the writer; called by the subclass once it is fully built.</summary>
    protected void Start() => _thread.Start();

    /// <summary>Copies one record into the batch; false when it was dropped (the batch is full).</summary>
    public bool Append(ReadOnlySpan<byte> record)
    {
        int used;
        lock (_gate)
        {
            if (4 + record.Length > _current.Length - _used) used = -1;
            else
            {
                BinaryPrimitives.WriteInt32LittleEndian(_current.AsSpan(_used), record.Length);
                record.CopyTo(_current.AsSpan(_used + 4));
                used = _used += 4 + record.Length;
            }
        }
        if (used < 0)
        {
            // The writer is stuck, so it cannot say so; it re-arms this once it catches up.
            if (Interlocked.Exchange(ref _overflowSaid, 1) == 0)
                Report($"{Name}: {DescribePeer()} is not keeping up; messages are being dropped");
            return false;
        }
        // An idle writer is woken by the first record; a napping one only when the batch fills up.
        var state = Volatile.Read(ref _sleeping);
        if ((state == Idle || (state == Napping && used >= _wakeAtBytes)) &&
            Interlocked.Exchange(ref _sleeping, Awake) != Awake)
            _wake.Set();
        return true;
    }

    /// <summary>Sends one record (on the writer thread only).</summary>
    protected abstract void Deliver(ReadOnlySpan<byte> record);

    /// <summary>After the records of one batch were delivered (the writer thread).</summary>
    protected virtual void BatchDone() { }

    /// <summary>Called on the writer thread after every batch and every idle wait (periodic work).</summary>
    protected virtual void Tick() { }

    /// <summary>How long an idle writer sleeps before <see cref="Tick"/> runs anyway.</summary>
    protected virtual TimeSpan IdleWait => Timeout.InfiniteTimeSpan;

    /// <summary>The peer, for messages: "udp://127.0.0.1:514".</summary>
    protected abstract string DescribePeer();

    private void Run()
    {
        while (true)
        {
            var used = DeliverBatch();
            if (used == 0) Volatile.Write(ref _overflowSaid, 0);
            Tick();
            if (_stopping)
            {
                DeliverBatch(); // what was appended before the stop goes out too
                return;
            }
            _wake.Reset();
            // Records came: more will; nap and take them as one batch. None came: sleep until the next one.
            Interlocked.Exchange(ref _sleeping, used > 0 ? Napping : Idle); // a fence: the check sees new records
            if (used == 0 && Volatile.Read(ref _used) > 0)
            {
                Volatile.Write(ref _sleeping, Awake);
                continue;
            }
            _wake.Wait(used > 0 ? TimeSpan.FromMilliseconds(NapMilliseconds) : IdleWait);
            Volatile.Write(ref _sleeping, Awake);
        }
    }

    private int DeliverBatch()
    {
        byte[] batch;
        int used;
        lock (_gate)
        {
            (batch, _current, _spare) = (_current, _spare, _current);
            used = _used;
            _used = 0;
        }
        for (var offset = 0; offset < used;)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(batch.AsSpan(offset));
            try { Deliver(batch.AsSpan(offset + 4, length)); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A delivery bug must not end the writer thread: the record is lost, the next ones go on.
                Report($"{Name}: a message could not be sent: {e.GetType().Name}: {e.Message}");
            }
            offset += 4 + length;
        }
        if (used > 0) BatchDone();
        return used;
    }

    /// <summary>Delivers what is queued (waiting at most a second for a stuck peer) and stops the writer.</summary>
    public virtual void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Set();
        if (_thread.IsAlive) _thread.Join(TimeSpan.FromSeconds(1));
    }
}
