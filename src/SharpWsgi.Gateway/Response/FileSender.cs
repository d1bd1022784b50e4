using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Sends a regular file given by descriptor (wsgi.file_wrapper over a real file) straight from the
/// file into the response pipe, with the GIL released for the whole transfer. Kestrel owns the
/// socket and its framing, so the bytes pass through its pipe buffers once rather than through
/// the kernel's sendfile; no Python object is created per block.
/// </summary>
internal sealed class FileSender : IDisposable
{
    private const int BlockSize = 64 * 1024;
    private readonly SafeFileHandle _handle;
    public long Length { get; }

    [DllImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static extern int Dup(int fd);

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long LSeek(int fd, long offset, int whence);

    private FileSender(SafeFileHandle handle, long length) { _handle = handle; Length = length; }

    /// <summary>A sender for a regular file, or null when fd is a pipe, socket or anything else.</summary>
    public static FileSender? TryOpen(int fd)
    {
        if (fd < 0) return null;
        if (LSeek(fd, 0, 1 /* SEEK_CUR */) < 0) return null; // pipes, sockets, ttys: not a file we can send by offset
        var copy = Dup(fd); // our own descriptor, so the app closing its file cannot pull it away mid-send
        if (copy < 0) return null;
        var handle = new SafeFileHandle(copy, ownsHandle: true);
        try
        {
            return new FileSender(handle, RandomAccess.GetLength(handle));
        }
        catch (Exception)
        {
            handle.Dispose();
            return null;
        }
    }

    public void Send(ResponseState response, long offset, long count)
    {
        if (!response.BodyAllowed) { response.CountSkippedBody(count); return; }
        var writer = response.Writer;
        long sent = 0;
        bool clientGone = false;
        response.Enter();
        using (Gil.Release())
        try
        {
            while (count > 0)
            {
                var span = writer.GetSpan((int)Math.Min(count, BlockSize));
                var n = RandomAccess.Read(_handle, span[..(int)Math.Min(count, span.Length)], offset);
                if (n == 0) break; // the file shrank: the length check after the send reports it
                writer.Advance(n);
                offset += n; count -= n; sent += n;
                FlushResult flushed;
                try
                {
                    var pending = writer.FlushAsync();
                    flushed = pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                }
                catch (Exception) { flushed = new FlushResult(false, true); }
                if (flushed.IsCompleted || flushed.IsCanceled) { clientGone = true; break; }
            }
        }
        finally { response.Exit(); }
        response.CountSentBody(sent);
        if (clientGone) response.MarkClientGone();
    }

    public void Dispose() => _handle.Dispose();
}
