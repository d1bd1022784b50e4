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

    // ---- who the server runs as (--user, --group), its file mode mask (--umask), its session (--daemon) ----
    [DllImport("libc", EntryPoint = "geteuid")]
    public static extern uint GetEffectiveUid();

    [DllImport("libc", EntryPoint = "getegid")]
    public static extern uint GetEffectiveGid();

    [DllImport("libc", EntryPoint = "getresuid")]
    private static extern int GetResUid(out uint real, out uint effective, out uint saved);

    [DllImport("libc", EntryPoint = "getresgid")]
    private static extern int GetResGid(out uint real, out uint effective, out uint saved);

    /// <summary>True when the real, effective and saved user and group ids are all these: no way back to root.
    /// </summary>
    public static bool RunsOnlyAs(uint uid, uint gid) =>
        GetResUid(out var ru, out var eu, out var su) == 0 && ru == uid && eu == uid && su == uid &&
        GetResGid(out var rg, out var eg, out var sg) == 0 && rg == gid && eg == gid && sg == gid;

    [DllImport("libc", EntryPoint = "initgroups", SetLastError = true)]
    private static extern int InitGroupsNative(string user, uint group);

    [DllImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static extern unsafe int SetGroupsNative(nuint size, uint* groups);

    [DllImport("libc", EntryPoint = "setgid", SetLastError = true)]
    private static extern int SetGidNative(uint gid);

    [DllImport("libc", EntryPoint = "setuid", SetLastError = true)]
    private static extern int SetUidNative(uint uid);

    /// <summary>
    /// Drops root for good, in the only safe order: the supplementary groups (the user's own from the group
    /// database when it has a name, else just the group), then the group, then the user, each for every thread
    /// (glibc applies set*id to all of them). Throws <see cref="IOException"/> naming the call that failed.
    /// </summary>
    public static unsafe void SwitchUser(string? userName, uint uid, uint gid)
    {
        if (userName != null) Check(InitGroupsNative(userName, gid), $"initgroups({userName}, {gid})");
        else Check(SetGroupsNative(1, &gid), $"setgroups([{gid}])");
        Check(SetGidNative(gid), $"setgid({gid})");
        Check(SetUidNative(uid), $"setuid({uid})");
        if (!RunsOnlyAs(uid, gid))
            throw new IOException($"after setuid({uid}) the process still holds other user or group ids");

        static void Check(int result, string call)
        {
            if (result != 0) throw new IOException($"{call} failed: {ErrorText(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>An account of the user database (getpwnam_r, getpwuid_r: /etc/passwd or what nsswitch names).
    /// </summary>
    public sealed record Account(string Name, uint Uid, uint Gid);

    /// <summary>A group of the group database (getgrnam_r, getgrgid_r).</summary>
    public sealed record GroupEntry(string Name, uint Gid);

    [DllImport("libc", EntryPoint = "getpwnam_r")]
    private static extern unsafe int GetPwNam(string name, byte* entry, byte* buffer, nuint size, byte** result);

    [DllImport("libc", EntryPoint = "getpwuid_r")]
    private static extern unsafe int GetPwUid(uint uid, byte* entry, byte* buffer, nuint size, byte** result);

    [DllImport("libc", EntryPoint = "getgrnam_r")]
    private static extern unsafe int GetGrNam(string name, byte* entry, byte* buffer, nuint size, byte** result);

    [DllImport("libc", EntryPoint = "getgrgid_r")]
    private static extern unsafe int GetGrGid(uint gid, byte* entry, byte* buffer, nuint size, byte** result);

    private const int ERANGE = 34;

    public static unsafe Account? AccountByName(string name) =>
        LookUp((entry, buffer, size, result) => GetPwNam(name, entry, buffer, size, result), ReadAccount);

    public static unsafe Account? AccountById(uint uid) =>
        LookUp((entry, buffer, size, result) => GetPwUid(uid, entry, buffer, size, result), ReadAccount);

    public static unsafe GroupEntry? GroupByName(string name) =>
        LookUp((entry, buffer, size, result) => GetGrNam(name, entry, buffer, size, result), ReadGroup);

    public static unsafe GroupEntry? GroupById(uint gid) =>
        LookUp((entry, buffer, size, result) => GetGrGid(gid, entry, buffer, size, result), ReadGroup);

    // struct passwd: char *pw_name, *pw_passwd; uid_t pw_uid; gid_t pw_gid; ... (LP64: uid at 16, gid at 20).
    private static unsafe Account ReadAccount(nint entry) => new(
        Marshal.PtrToStringUTF8(*(nint*)entry)!, *(uint*)(entry + 16), *(uint*)(entry + 20));

    // struct group: char *gr_name, *gr_passwd; gid_t gr_gid; char **gr_mem (LP64: gid at 16).
    private static unsafe GroupEntry ReadGroup(nint entry) =>
        new(Marshal.PtrToStringUTF8(*(nint*)entry)!, *(uint*)(entry + 16));

    private unsafe delegate int Lookup(byte* entry, byte* buffer, nuint size, byte** result);

    /// <summary>The *_r lookups: a buffer that grows while they say ERANGE; null when there is no entry.</summary>
    private static unsafe T? LookUp<T>(Lookup lookup, Func<nint, T> read) where T : class
    {
        var entry = stackalloc byte[64]; // struct passwd is 48 bytes, struct group 32
        for (var size = 1024; size <= 1 << 20; size *= 4)
        {
            var buffer = new byte[size];
            fixed (byte* start = buffer)
            {
                byte* result = null;
                var error = lookup(entry, start, (nuint)size, &result);
                if (error == ERANGE) continue;
                if (error != 0) throw new IOException(ErrorText(error));
                return result == null ? null : read((nint)result);
            }
        }
        throw new IOException("the entry is larger than 1 MiB");
    }

    [DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int ChownNative(string path, uint uid, uint gid);

    /// <summary>chown(2); null when done, else why not.</summary>
    public static string? Chown(string path, uint uid, uint gid) =>
        ChownNative(path, uid, gid) == 0 ? null : ErrorText(Marshal.GetLastPInvokeError());

    private const int W_OK = 2, X_OK = 1;

    [DllImport("libc", EntryPoint = "access", SetLastError = true)]
    private static extern int AccessNative(string path, int mode);

    /// <summary>access(2) for the real user: may this process write there?</summary>
    public static bool CanWrite(string path) => AccessNative(path, W_OK) == 0;

    /// <summary>access(2) for the real user: may this process execute the file?</summary>
    public static bool CanExecute(string path) => AccessNative(path, X_OK) == 0;

    /// <summary>umask(2): sets the file mode mask, returns the previous one.</summary>
    [DllImport("libc", EntryPoint = "umask")]
    public static extern uint SetUmask(uint mask);

    [DllImport("libc", EntryPoint = "setsid", SetLastError = true)]
    public static extern int SetSid();

    [DllImport("libc", EntryPoint = "dup2", SetLastError = true)]
    private static extern int Dup2Native(int from, int to);

    /// <summary>dup2(2), retried on EINTR; null when done, else why not.</summary>
    public static string? Dup2(int from, int to)
    {
        while (true)
        {
            if (Dup2Native(from, to) >= 0) return null;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) return ErrorText(errno);
        }
    }

    /// <summary>strerror's words for an errno.</summary>
    public static string ErrorText(int errno) => new System.ComponentModel.Win32Exception(errno).Message;

    // ---- process titles (--name) ----
    private const int PR_SET_NAME = 15;

    [DllImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static extern unsafe int Prctl(int option, byte* argument, nint unused3, nint unused4, nint unused5);

    /// <summary>
    /// The kernel's name of the calling thread (prctl PR_SET_NAME, 15 bytes kept, cut on a character boundary):
    /// called on the main thread it is the process's name in /proc/PID/comm, ps -o comm, top and pgrep.
    /// </summary>
    public static unsafe bool SetThreadName(string name)
    {
        var bytes = new byte[16];
        var length = Utf8Prefix(name, 15, bytes);
        fixed (byte* start = bytes) return length > 0 && Prctl(PR_SET_NAME, start, 0, 0, 0) == 0;
    }

    /// <summary>
    /// Writes text over this process's argument strings, the memory /proc/PID/cmdline and ps show, NUL-padded
    /// to their end (cut to fit). Safe once nothing reads the original arguments any more: python and .NET copy
    /// them at start-up, as setproctitle relies on. Its bounds come from /proc/self/stat (arg_start, arg_end).
    /// </summary>
    public static unsafe bool OverwriteArguments(string text)
    {
        if (ArgumentArea() is not var (start, end) || end - start < 2) return false;
        var area = new Span<byte>((void*)start, checked((int)(end - start)));
        var length = Utf8Prefix(text, area.Length - 1, area);
        area[length..].Clear();
        return true;
    }

    /// <summary>
    /// The title through the `sharpwsgi` launcher (packaging/launcher/sharpwsgi.c), which owns this process's
    /// argument memory and has made room past it; false in a process it did not start (a worker's python, the
    /// JIT build's dotnet).
    /// </summary>
    public static unsafe bool SetTitleThroughLauncher(string title)
    {
        var setter = DlSym(DlOpen(null, RTLD_NOW), "sharpwsgi_set_title");
        if (setter == 0) return false;
        var bytes = System.Text.Encoding.UTF8.GetBytes(title + "\0");
        fixed (byte* text = bytes) ((delegate* unmanaged<byte*, void>)setter)(text);
        return true;
    }

    /// <summary>[arg_start, arg_end) from /proc/self/stat (fields 48 and 49), or null.</summary>
    private static (long Start, long End)? ArgumentArea()
    {
        try
        {
            var stat = File.ReadAllText("/proc/self/stat");
            // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            const int first = 3; // fields[0] is field 3, the state
            if (fields.Length < 49 - first + 1) return null;
            return (long.Parse(fields[48 - first]), long.Parse(fields[49 - first]));
        }
        catch (Exception e) when (e is IOException or FormatException or OverflowException) { return null; }
    }

    /// <summary>The longest UTF-8 prefix of text that fits in max bytes without cutting a character, written
    /// to destination; returns its length.</summary>
    private static int Utf8Prefix(string text, int max, Span<byte> destination)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var length = Math.Min(bytes.Length, max);
        while (length > 0 && length < bytes.Length && (bytes[length] & 0xC0) == 0x80) length--;
        bytes.AsSpan(0, length).CopyTo(destination);
        return length;
    }

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
    public const int O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
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
