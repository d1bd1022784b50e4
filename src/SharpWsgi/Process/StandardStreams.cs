using System.Runtime.InteropServices;
using SharpWsgi.Configuration;
using SharpWsgi.Python;

namespace SharpWsgi;

/// <summary>
/// Descriptors 1 and 2 (stdout, stderr) of the supervisor and its workers, which every process they start
/// inherits: --capture-output points them at the error log, a daemon at /dev/null once it serves.
/// </summary>
public static class StandardStreams
{
    /// <summary>The file --capture-output sends stdout and stderr to: --error-logfile, or null when the flag is off
    /// or the error log is stderr itself (gunicorn ignores the flag then too).</summary>
    public static string? CaptureTarget(ServerSettings settings) =>
        settings.CaptureOutput && settings.ErrorLogFile != "-" ? Path.GetFullPath(settings.ErrorLogFile) : null;

    /// <summary>Points 1 and 2 at the file, appending (O_APPEND, as the log's own writes, so lines of several
    /// processes never overwrite each other); again on USR1, after log rotation. Null when done, else why not.
    /// </summary>
    public static string? Capture(string path) =>
        PointAt(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC);

    /// <summary>Points 1 and 2 at /dev/null: a daemon's, once nobody reads the terminal it was started from.
    /// </summary>
    public static string? Silence() => PointAt("/dev/null", Libc.O_WRONLY | Libc.O_CLOEXEC);

    private static string? PointAt(string path, int flags)
    {
        var fd = Libc.Open(path, flags, 0x1a4 /* 0644, less the umask */);
        if (fd < 0)
            return $"cannot open {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}";
        // dup2 clears close-on-exec on 1 and 2: the processes started from here inherit them.
        var problem = Libc.Dup2(fd, 1) ?? Libc.Dup2(fd, 2);
        Libc.Close(fd);
        if (problem != null) return $"cannot point stdout and stderr at {path}: {problem}";
        // .NET's Console writes to duplicates of 1 and 2 taken at its first use, which still lead where 1 and 2 led:
        // from now on it writes to the descriptors themselves.
        Console.SetOut(OnDescriptor(1));
        Console.SetError(OnDescriptor(2));
        return null;
    }

    private static TextWriter OnDescriptor(int fd) => TextWriter.Synchronized(new StreamWriter(
        new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: false), FileAccess.Write, 0))
        { AutoFlush = true });
}
