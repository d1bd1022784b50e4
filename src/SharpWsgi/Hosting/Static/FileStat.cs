using System.Runtime.InteropServices;
using System.Text;

namespace SharpWsgi.Hosting;

/// <summary>
/// One statx(2) of a path: what a cached static file is checked against on every request (a file replaced by a
/// rename has a new inode; one written in place a new mtime or ctime). statx, not stat: its layout is the same on
/// every architecture.
/// </summary>
public readonly record struct FileStat(long Inode, long Size, long MtimeSeconds, uint MtimeNanoseconds,
    long CtimeSeconds, uint CtimeNanoseconds, bool IsRegularFile)
{
    private const int AtFdCwd = -100;
    private const uint StatxBasicStats = 0x7ff;

    [DllImport("libc", EntryPoint = "statx", SetLastError = false)]
    private static extern unsafe int Statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    /// <summary>The path as statx wants it: UTF-8 with a NUL, made once per cached file.</summary>
    public static byte[] PathBytes(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    /// <summary>Null when there is nothing there (or it cannot be read).</summary>
    public static unsafe FileStat? Of(byte[] pathZ)
    {
        var buffer = stackalloc byte[256]; // struct statx
        fixed (byte* path = pathZ)
            if (Statx(AtFdCwd, path, 0, StatxBasicStats, buffer) != 0) return null;
        var mode = *(ushort*)(buffer + 28);
        return new FileStat(
            Inode: *(long*)(buffer + 32),
            Size: *(long*)(buffer + 40),
            MtimeSeconds: *(long*)(buffer + 112), MtimeNanoseconds: *(uint*)(buffer + 120),
            CtimeSeconds: *(long*)(buffer + 96), CtimeNanoseconds: *(uint*)(buffer + 104),
            IsRegularFile: (mode & 0xF000) == 0x8000);
    }

    /// <summary>Milliseconds since 1970, as the ETag has them (what FileInfo.LastWriteTimeUtc gave).</summary>
    public long MtimeMilliseconds => MtimeSeconds * 1000 + MtimeNanoseconds / 1_000_000;
}
