using SharpWsgi.Python;
using Microsoft.Win32.SafeHandles;

namespace SharpWsgi.Gateway;

/// <summary>
/// A regular file given to wsgi.file_wrapper, opened as a descriptor of our own (dup), so the host can send it after
/// the Python thread is done and the app has closed its file. Pipes, sockets and ttys are not files we can send by
/// offset: those go through Python's read().
/// </summary>
internal static class FileSender
{
    /// <summary>Our own handle on fd and the file's length, or null when fd is not a regular file.</summary>
    public static (SafeFileHandle Handle, long Length)? TryOpen(int fd)
    {
        if (fd < 0) return null;
        if (Libc.LSeek(fd, 0, Libc.SEEK_CUR) < 0) return null;
        var copy = Libc.Dup(fd);
        if (copy < 0) return null;
        var handle = new SafeFileHandle(copy, ownsHandle: true);
        try
        {
            return (handle, RandomAccess.GetLength(handle));
        }
        catch (Exception)
        {
            handle.Dispose();
            return null;
        }
    }
}
