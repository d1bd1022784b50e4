using System.Runtime.InteropServices;

namespace SharpWsgi.Python;

/// <summary>
/// Every libc call of SharpWsgi that .NET does not expose, in one place (the interop room holds the native code):
/// the dynamic loader for libpython, the process calls of the supervisor and workers, and the descriptor calls
/// wsgi.file_wrapper needs. Nothing else declares a P/Invoke.
/// </summary>
public static class Libc
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGABRT = 6, SIGKILL = 9, SIGUSR1 = 10, SIGUSR2 = 12,
        SIGTERM = 15, SIGTTIN = 21, SIGTTOU = 22, SIGWINCH = 28;

    // ---- the dynamic loader (libpython) ----
    internal const int RTLD_NOW = 2, RTLD_GLOBAL = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    internal static extern nint DlOpen(string? path, int flags);

    [DllImport("libc", EntryPoint = "dlsym")]
    internal static extern nint DlSym(nint handle, string symbol);

    [DllImport("libc", EntryPoint = "dlerror")]
    internal static extern nint DlError();

    [StructLayout(LayoutKind.Sequential)]
    private struct DlInfo
    {
        public nint FileName, FileBase, SymbolName, SymbolAddress;
    }

    [DllImport("libc", EntryPoint = "dladdr")]
    private static extern int DlAddr(nint address, out DlInfo info);

    /// <summary>The path of the loaded file (executable or shared library) that holds the address, or null.
    /// </summary>
    public static string? FileOfAddress(nint address) =>
        DlAddr(address, out var info) != 0 && info.FileName != 0 ? Marshal.PtrToStringUTF8(info.FileName) : null;

    /// <summary>A C argv (argc pointers to NUL-terminated UTF-8 strings) as strings.</summary>
    public static string[] ReadArgv(int argc, nint argv)
    {
        var args = new string[argc];
        for (var i = 0; i < argc; i++) args[i] = Marshal.PtrToStringUTF8(Marshal.ReadIntPtr(argv, i * nint.Size))!;
        return args;
    }

    [DllImport("libc", EntryPoint = "setenv")]
    internal static extern int SetEnv(string name, string value, int overwrite);

    // ---- processes and descriptors (supervisor and workers) ----
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "getppid")]
    public static extern int GetParentPid();

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    public static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "dup", SetLastError = true)]
    public static extern int Dup(int fd);

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    public static extern long LSeek(int fd, long offset, int whence);

    public const int SEEK_CUR = 1;

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, int argument);

    private const int F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;

    /// <summary>Lets a descriptor survive exec, so the worker processes inherit it.</summary>
    public static void MakeInheritable(int fd)
    {
        var flags = Fcntl(fd, F_GETFD, 0);
        if (flags < 0 || Fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
            throw new IOException($"cannot make descriptor {fd} inheritable (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>The opposite of <see cref="MakeInheritable"/>: the descriptor is closed in any program exec'd.
    /// </summary>
    public static void MakeCloseOnExec(int fd)
    {
        var flags = Fcntl(fd, F_GETFD, 0);
        if (flags < 0 || Fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
            throw new IOException(
                $"cannot set close-on-exec on descriptor {fd} (errno {Marshal.GetLastPInvokeError()})");
    }

    public static bool IsOpen(int fd) => Fcntl(fd, F_GETFD, 0) >= 0;

    private const int F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0x800;

    /// <summary>O_NONBLOCK on the open file (shared with every process holding it): an accept that loses the race
    /// for a connection to another process returns EAGAIN instead of waiting for the next one.</summary>
    public static void MakeNonBlocking(int fd)
    {
        var flags = Fcntl(fd, F_GETFL, 0);
        if (flags < 0 || Fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
            throw new IOException($"cannot make descriptor {fd} non-blocking (errno {Marshal.GetLastPInvokeError()})");
    }

    // ---- log files: O_APPEND, so several workers' batches never overwrite each other ----
    public const int O_WRONLY = 1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
    public const int EINTR = 4, EAGAIN = 11;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    public static extern int Open(string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern unsafe nint SysWrite(int fd, byte* buffer, nint count);

    /// <summary>write(2) of buffer[offset..offset+count]; -1 with the errno in GetLastPInvokeError.</summary>
    public static unsafe nint Write(int fd, byte[] buffer, int offset, int count)
    {
        fixed (byte* start = buffer) return SysWrite(fd, start + offset, count);
    }

    // ---- paths (static files: a symlink must not lead out of the served directory) ----
    [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static extern nint RealPathNative(string path, nint resolved);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(nint pointer);

    /// <summary>The path with every symlink, "." and ".." resolved (realpath(3)), or null when it does not
    /// exist.</summary>
    public static string? RealPath(string path)
    {
        var resolved = RealPathNative(path, 0);
        if (resolved == 0) return null;
        try { return Marshal.PtrToStringUTF8(resolved); }
        finally { Free(resolved); }
    }

    // ---- accepting only while Python runs (the worker's gated listener) ----
    private const int POLLIN = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000, EFD_CLOEXEC = 0x80000,
        EFD_NONBLOCK = 0x800;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static extern unsafe int PollNative(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>
    /// poll(2) for input on two descriptors, blocking up to timeoutMs (-1: no limit). Returns which are readable
    /// (first, second), or (false, false) on a timeout or EINTR.
    /// </summary>
    public static unsafe (bool First, bool Second) PollReadable(int first, int second, int timeoutMs)
    {
        var fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = first, Events = POLLIN };
        fds[1] = new PollFd { Fd = second, Events = POLLIN };
        if (PollNative(fds, 2, timeoutMs) <= 0) return (false, false);
        return (fds[0].Revents != 0, fds[1].Revents != 0);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "ppoll", SetLastError = true)]
    private static extern unsafe int PPollNative(PollFd* fds, nuint count, TimeSpec* timeout, nint sigmask);

    /// <summary>Waits up to the given microseconds for input on fd (ppoll(2): finer than poll's milliseconds);
    /// true when it is readable.</summary>
    public static unsafe bool WaitReadable(int fd, int microseconds)
    {
        var pollFd = new PollFd { Fd = fd, Events = POLLIN };
        var timeout = new TimeSpec
        {
            Seconds = microseconds / 1_000_000,
            Nanoseconds = microseconds % 1_000_000 * 1000L,
        };
        return PPollNative(&pollFd, 1, &timeout, 0) > 0 && pollFd.Revents != 0;
    }

    [DllImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static extern int Accept4(int fd, nint address, nint addressLength, int flags);

    /// <summary>accept4(2) without blocking: the new descriptor (non-blocking, close-on-exec), or -1 with the errno
    /// (EAGAIN: nothing waiting, another process may have taken it).</summary>
    public static int AcceptNonBlocking(int listenFd) => Accept4(listenFd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);

    [DllImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static extern int EventFdNative(uint initial, int flags);

    /// <summary>A non-blocking eventfd(2): <see cref="Signal"/> makes it readable, <see cref="Drain"/> clears
    /// it.</summary>
    public static int EventFd() => EventFdNative(0, EFD_CLOEXEC | EFD_NONBLOCK);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern unsafe nint SysRead(int fd, byte* buffer, nint count);

    public static unsafe void Signal(int eventFd)
    {
        ulong one = 1;
        SysWrite(eventFd, (byte*)&one, 8);
    }

    public static unsafe void Drain(int eventFd)
    {
        ulong value;
        SysRead(eventFd, (byte*)&value, 8);
    }
}
