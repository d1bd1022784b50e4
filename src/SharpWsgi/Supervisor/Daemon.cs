using System.Diagnostics;
using System.IO.Pipes;
using System.Text;
using SharpWsgi.Configuration;
using SharpWsgi.Python;

namespace SharpWsgi.Supervisor;

/// <summary>
/// -D/--daemon. The command the user ran (the foreground) starts the program again with a status pipe in
/// <see cref="WorkerProtocol.DaemonStatusVariable"/>; the launcher sees it and detaches before .NET starts (fork,
/// setsid, fork, stdin from /dev/null), and that copy is the server. Its stdout and stderr stay the caller's while it
/// starts, so start-up problems reach the terminal; once every worker serves it points them at /dev/null (the error
/// log with --capture-output) and says "ready", and the foreground exits 0. If it stops before that, it says
/// "exit N" and the foreground exits N. gunicorn detaches at once and returns 0 whatever follows; a script (or
/// systemd's Type=forking) here learns whether the server started, and --pid FILE names the daemon when it returns.
/// </summary>
internal static class Daemon
{
    private static int _statusFd = -1;

    /// <summary>--daemon, in the command the user ran: not yet the background copy, and not a binary upgrade's new
    /// supervisor (started by a daemon, detached already; gunicorn skips it too).</summary>
    public static bool ShouldStartInBackground(ServerSettings settings) =>
        settings.Daemon && Environment.GetEnvironmentVariable(WorkerProtocol.DaemonStatusVariable) == null &&
        Environment.GetEnvironmentVariable(WorkerProtocol.UpgradeFromVariable) == null;

    /// <summary>The foreground: starts the background copy, waits for its word, returns the exit code.</summary>
    public static int RunInForeground(IReadOnlyList<string> args)
    {
        using var status = new AnonymousPipeServerStream(PipeDirection.In, HandleInheritability.Inheritable);
        var (executable, leading) = BinaryUpgrade.HowThisProgramRuns();
        var psi = new ProcessStartInfo(executable) { UseShellExecute = false };
        foreach (var a in leading.Concat(args)) psi.ArgumentList.Add(a);
        psi.Environment[WorkerProtocol.DaemonStatusVariable] = status.GetClientHandleAsString();
        try
        {
            // With the launcher this child exits at once (its grandchild is the daemon); without it (a JIT build)
            // the child is the daemon itself.
            using var child = Process.Start(psi);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"sharpwsgi: error: --daemon: cannot start {executable}: {e.Message}");
            return WorkerProtocol.ExitStartup;
        }
        status.DisposeLocalCopyOfClientHandle(); // the daemon holds the only write end: its end is our EOF
        using var reader = new StreamReader(status, Encoding.ASCII);
        var line = reader.ReadLine();
        if (line == "ready") return 0;
        if (line != null && line.StartsWith("exit ", StringComparison.Ordinal) &&
            int.TryParse(line.AsSpan(5), out var code))
            return code;
        Console.Error.WriteLine("sharpwsgi: error: --daemon: the server in the background ended before it was " +
            "ready, without saying why (killed, or crashed); its error log may tell more.");
        return WorkerProtocol.ExitStartup;
    }

    /// <summary>The background copy, first thing: takes the status pipe out of the environment (neither its
    /// workers nor a USR2 successor may hold it) and, when no launcher detached it (a JIT build), detaches the
    /// little that is still safe here: a new session, stdin from /dev/null.</summary>
    public static void TakeStatusPipe()
    {
        if (!int.TryParse(WorkerProtocol.Take(WorkerProtocol.DaemonStatusVariable), out var fd) || fd < 0) return;
        Libc.MakeCloseOnExec(fd);
        _statusFd = fd;
        if (WorkerProtocol.LauncherLibrary != null) return;
        Libc.SetSid();
        var devNull = Libc.Open("/dev/null", Libc.O_RDWR, 0);
        if (devNull >= 0)
        {
            Libc.Dup2(devNull, 0);
            Libc.Close(devNull);
        }
    }

    /// <summary>True in the background copy until it is ready: its stdout and stderr are still the caller's, and
    /// so are those of the workers it starts now, which are told to let go of them once ready.</summary>
    public static bool OutputIsCallers(ServerSettings settings) =>
        _statusFd >= 0 && StandardStreams.CaptureTarget(settings) == null;

    /// <summary>Every worker serves: stdout and stderr leave the caller's terminal, then the foreground is told.
    /// </summary>
    public static void ReportReady(ServerSettings settings)
    {
        if (_statusFd < 0) return;
        if (OutputIsCallers(settings)) StandardStreams.Silence();
        Say("ready");
    }

    /// <summary>The server stops before it was ready (or after: then nobody listens, and nothing is said).</summary>
    public static void ReportExit(int code)
    {
        if (_statusFd >= 0) Say($"exit {code}");
    }

    private static void Say(string line)
    {
        var bytes = Encoding.ASCII.GetBytes(line + "\n");
        Libc.Write(_statusFd, bytes, 0, bytes.Length); // one short write to a pipe: atomic
        Libc.Close(_statusFd);
        _statusFd = -1;
    }
}
