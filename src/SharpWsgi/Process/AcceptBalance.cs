using System.IO.MemoryMappedFiles;

namespace SharpWsgi;

/// <summary>
/// Evens out connections across workers that accept from the same shared socket. Without it the first
/// worker to wake takes a whole burst of keep-alive connections (measured: 53,831 requests to one worker,
/// 0 to the other). Each worker publishes its open-connection count in a slot of a small shared memory
/// file the supervisor creates (which also publishes the worker count), or -1 while it does not accept
/// (retiring, or paused because its heartbeat is late); a worker that is ahead of the least loaded
/// accepting one by more than one connection lets the others take a waiting connection first, for 200 µs
/// (Hosting.ResponsiveListener).
/// </summary>
public sealed class AcceptBalance : IDisposable
{
    public const int Slots = 1024;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly int _slot;

    private AcceptBalance(MemoryMappedFile file, MemoryMappedViewAccessor view, int slot)
    {
        _file = file;
        _view = view;
        _slot = slot;
    }

    /// <summary>The supervisor's side: a file of <see cref="Slots"/> counters, all unused (-1).</summary>
    public static (AcceptBalance Table, string Path) Create()
    {
        var path = Path.Combine(SharedFiles.Directory, $"sharpwsgi-{Environment.ProcessId}.balance");
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.ReadWrite))
            fs.SetLength(Size);
        var table = Open(path, -1)!;
        for (int i = 0; i < Slots; i++) table.Set(i, -1);
        return (table, path);
    }

    /// <summary>A worker's side, from the environment the supervisor set; null when there is none.</summary>
    public static AcceptBalance? FromEnvironment()
    {
        var path = WorkerProtocol.Take(WorkerProtocol.BalanceFileVariable);
        var slotText = WorkerProtocol.Take(WorkerProtocol.BalanceSlotVariable);
        if (path == null || !int.TryParse(slotText, out var slot)) return null;
        try { return Open(path, slot); }
        catch (IOException) { return null; }
    }

    private static AcceptBalance Open(string path, int slot)
    {
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, Size, MemoryMappedFileAccess.ReadWrite);
        return new AcceptBalance(file, file.CreateViewAccessor(0, Size), slot);
    }

    // Layout: Slots per-worker connection counters, then the supervisor's target number of workers.
    private const int Size = (Slots + 1) * sizeof(int);
    private const int WorkersOffset = Slots * sizeof(int);

    public void Set(int slot, int value) => _view.Write(slot * sizeof(int), value);

    /// <summary>The number of workers the supervisor runs (for wsgi.multiprocess; TTIN/TTOU/HUP change it).</summary>
    public int Workers
    {
        get => _view.ReadInt32(WorkersOffset);
        set => _view.Write(WorkersOffset, value);
    }

    /// <summary>This worker's open connections changed.</summary>
    public void Publish(int open) => Set(_slot, open);

    /// <summary>Another accepting worker has clearly fewer connections (more than one fewer).</summary>
    public bool IsAhead(int open) => open > LeastOther() + 1;

    private int LeastOther()
    {
        var least = int.MaxValue;
        for (int i = 0; i < Slots; i++)
        {
            if (i == _slot) continue;
            var v = _view.ReadInt32(i * sizeof(int));
            if (v >= 0 && v < least) least = v;
        }
        return least == int.MaxValue ? int.MaxValue - 1 : least;
    }

    public void Dispose()
    {
        _view.Dispose();
        _file.Dispose();
    }
}
