using System.Runtime.InteropServices;

namespace SharpWsgi;

/// <summary>
/// Every libc call of the sharpwsgi program (supervisor and worker roles) that .NET does not expose, and the
/// Linux signal numbers they use. Nothing else in this project declares a P/Invoke.
/// </summary>
internal static class Libc
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGABRT = 6, SIGKILL = 9, SIGUSR1 = 10, SIGTERM = 15,
        SIGTTIN = 21, SIGTTOU = 22;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    public static extern int Close(int fd);

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

    public static bool IsOpen(int fd) => Fcntl(fd, F_GETFD, 0) >= 0;
}
