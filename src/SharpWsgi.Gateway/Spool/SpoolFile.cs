using Microsoft.Win32.SafeHandles;

namespace SharpWsgi.Gateway;

/// <summary>
/// A temporary file for bytes that wait for a slow client (response overflow) or for a Python thread (large request
/// bodies). It is unlinked as soon as it is open, so its blocks go back to the file system when the handle is closed,
/// whether the request ended, the client went away, or the process died.
/// </summary>
public static class SpoolFile
{
    private static long _counter;

    public static SafeFileHandle Create(string directory)
    {
        var path = Path.Combine(directory,
            $"sharpwsgi-spool-{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}");
        // DeleteOnClose is the fallback should the unlink right after opening fail.
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
            FileOptions.DeleteOnClose);
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return handle;
    }
}

/// <summary>
/// A worker-wide byte budget (spooled response bytes not yet sent, or request bodies held in memory).
/// Reservations that would pass the cap are refused; the caller waits, spools or streams instead.
/// </summary>
public sealed class ByteBudget
{
    private long _used, _released;
    private readonly long _capacity;
    public ByteBudget(long capacity) => _capacity = capacity;
    /// <summary>Bytes reserved now (a metrics gauge; the unit tests check every path gives its reservation back).
    /// </summary>
    public long Used => Interlocked.Read(ref _used);

    public bool TryReserve(long bytes)
    {
        while (true)
        {
            var used = Interlocked.Read(ref _used);
            if (used + bytes > _capacity && used > 0) return false;
            if (Interlocked.CompareExchange(ref _used, used + bytes, used) == used) return true;
        }
    }

    public void Release(long bytes)
    {
        Interlocked.Add(ref _used, -bytes);
        Interlocked.Add(ref _released, bytes);
    }

    /// <summary>Bytes given back since the start: a waiter sees from it that room is being made, by anyone.
    /// </summary>
    public long Released => Interlocked.Read(ref _released);
}
