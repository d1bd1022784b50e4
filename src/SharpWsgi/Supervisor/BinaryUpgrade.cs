using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SharpWsgi.Hosting;
using SharpWsgi.Python;

namespace SharpWsgi.Supervisor;

/// <summary>
/// USR2, gunicorn's binary upgrade. The old supervisor starts a new supervisor from the executable it was itself
/// started from (the `sharpwsgi` launcher, which loads whatever library is installed now; or `dotnet` and the JIT
/// build in a clone), with the same arguments and working directory, and hands it its listening sockets (and the
/// metrics listener) as inherited descriptors. The new one reads the configuration afresh, starts its own workers
/// (the app imported afresh) and serves beside the old one; WINCH then retires the old one's workers (it stays, so
/// HUP can bring them back: a rollback) and TERM retires the old supervisor. Both sides live here: the old one's
/// successor, the new one's predecessor, and what they may do to what they share: nothing is closed for the other
/// (each holds its own descriptors), and a unix socket's path is unlinked only by the last of them to stop.
/// </summary>
internal sealed class BinaryUpgrade
{
    private readonly string _executable;
    private readonly string[] _leadingArguments;
    private readonly string _workingDirectory;

    private BinaryUpgrade(string executable, string[] leadingArguments, string workingDirectory, int predecessor)
    {
        _executable = executable;
        _leadingArguments = leadingArguments;
        _workingDirectory = workingDirectory;
        PredecessorPid = predecessor;
    }

    /// <summary>How this supervisor was started, captured at start: once an upgrade has replaced the executable,
    /// /proc/self/exe names "PATH (deleted)".</summary>
    public static BinaryUpgrade Capture()
    {
        var (executable, leading) = HowThisProgramRuns();
        var predecessor = int.TryParse(WorkerProtocol.Take(WorkerProtocol.UpgradeFromVariable), out var pid) ? pid : 0;
        return new BinaryUpgrade(executable, leading, Directory.GetCurrentDirectory(), predecessor);
    }

    /// <summary>What starts this program again (USR2, and --daemon's background copy): the executable, and the
    /// arguments that come before the program's own.</summary>
    public static (string Executable, string[] LeadingArguments) HowThisProgramRuns()
    {
        var executable = Environment.ProcessPath ?? "";
        // `dotnet sharpwsgi.dll` (a JIT build): the host, then the program's assembly (what .NET reports as the
        // first command-line argument there).
        var leading = Path.GetFileNameWithoutExtension(executable) == "dotnet"
            ? new[] { Path.GetFullPath(Environment.GetCommandLineArgs()[0]) } : Array.Empty<string>();
        return (executable, leading);
    }

    /// <summary>The old supervisor, when USR2 started this one; 0 otherwise, and once it has exited.</summary>
    public int PredecessorPid { get; private set; }

    /// <summary>The old supervisor is this one's parent: when it exits, this process is re-parented.</summary>
    public bool PredecessorAlive => PredecessorPid != 0 && Libc.GetParentPid() == PredecessorPid;

    /// <summary>Called once the predecessor is gone: this supervisor is the only one.</summary>
    public void ForgetPredecessor() => PredecessorPid = 0;

    /// <summary>The new supervisor this one started on USR2, until it exits.</summary>
    public Process? Successor { get; private set; }

    public bool SuccessorAlive => Successor is { HasExited: false };

    public void ForgetSuccessor() => Successor = null;

    /// <summary>Another supervisor serves the same sockets: closing them is fine (each holds its own descriptors),
    /// unlinking a unix socket's path or answering health probes while stopping is not.</summary>
    public bool PartnerAlive => SuccessorAlive || PredecessorAlive;

    /// <summary>
    /// Starts the new supervisor with the sockets handed down. The shared listeners are inheritable already (the
    /// workers inherit them); a --reuse-port holder and the metrics listener are not (workers must not hold them),
    /// so each is handed down as a duplicate, closed here once the new process has it.
    /// </summary>
    public Process StartSuccessor(IReadOnlyList<string> arguments, IReadOnlyList<ListenSocket> sockets,
        Socket? metricsListener)
    {
        var duplicates = new List<int>();
        int Duplicate(Socket socket)
        {
            var fd = Libc.Dup((int)socket.Handle);
            if (fd < 0) throw new StartupException("cannot duplicate a listening socket for the new supervisor.");
            duplicates.Add(fd);
            return fd;
        }
        try
        {
            var handedDown = new List<HandedDownSocket>();
            foreach (var s in sockets)
            {
                if (s.Fd >= 0) handedDown.Add(new HandedDownSocket(s.Fd, s.Tls, s.UnixPath != null, false));
                else if (s.Socket != null)
                    handedDown.Add(new HandedDownSocket(Duplicate(s.Socket), s.Tls, false, true));
            }
            var psi = new ProcessStartInfo(_executable)
            {
                UseShellExecute = false,
                WorkingDirectory = _workingDirectory,
            };
            foreach (var a in _leadingArguments.Concat(arguments)) psi.ArgumentList.Add(a);
            psi.Environment[WorkerProtocol.UpgradeFdsVariable] = string.Join(",", handedDown);
            psi.Environment[WorkerProtocol.UpgradeFromVariable] = Environment.ProcessId.ToString();
            if (metricsListener != null)
                psi.Environment[WorkerProtocol.UpgradeMetricsFdVariable] = Duplicate(metricsListener).ToString();
            Successor = Process.Start(psi) ?? throw new StartupException($"cannot start {_executable}.");
            return Successor;
        }
        catch (Win32Exception e)
        {
            throw new StartupException($"cannot start {_executable}: {e.Message}.");
        }
        finally
        {
            foreach (var fd in duplicates) Libc.Close(fd);
        }
    }

    /// <summary>The new supervisor's side: what the old one handed down, taken out of the environment.</summary>
    public sealed record HandedDown(List<ListenSocket> Sockets, Socket? MetricsListener);

    /// <summary>The sockets a USR2 handed this supervisor, or null when it was started otherwise.</summary>
    public static HandedDown? TakeHandedDown()
    {
        var list = WorkerProtocol.Take(WorkerProtocol.UpgradeFdsVariable);
        var metricsText = WorkerProtocol.Take(WorkerProtocol.UpgradeMetricsFdVariable);
        if (list == null) return null;
        var sockets = new List<ListenSocket>();
        foreach (var item in list.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (HandedDownSocket.Parse(item) is not { } handed)
                throw new StartupException($"{WorkerProtocol.UpgradeFdsVariable}: '{item}' is not a descriptor " +
                    "number with its flags.");
            if (!Libc.IsOpen(handed.Fd))
                throw new StartupException($"{WorkerProtocol.UpgradeFdsVariable}: descriptor {handed.Fd} is not " +
                    "open in this process.");
            sockets.Add(Adopt(handed));
        }
        Socket? metrics = null;
        if (int.TryParse(metricsText, out var metricsFd) && Libc.IsOpen(metricsFd))
        {
            Libc.MakeCloseOnExec(metricsFd); // not for this supervisor's workers
            metrics = new Socket(new SafeSocketHandle(metricsFd, ownsHandle: true));
        }
        return new HandedDown(sockets, metrics);
    }

    private static ListenSocket Adopt(HandedDownSocket handed)
    {
        if (handed.ReusePortHolder)
        {
            Libc.MakeCloseOnExec(handed.Fd); // as in the old supervisor: the workers bind the address themselves
            var holder = new Socket(new SafeSocketHandle(handed.Fd, ownsHandle: true));
            var held = (IPEndPoint)holder.LocalEndPoint!;
            return new ListenSocket(-1, ListenSockets.Url(held, handed.Tls),
                (handed.Tls ? "https://" : "") + ListenSockets.Format(held), holder, null, handed.Tls);
        }
        using var probe = new Socket(new SafeSocketHandle(handed.Fd, ownsHandle: false));
        return probe.LocalEndPoint switch
        {
            IPEndPoint ip => new ListenSocket(handed.Fd, ListenSockets.Url(ip, handed.Tls), null, null, null,
                handed.Tls),
            UnixDomainSocketEndPoint unix => new ListenSocket(handed.Fd, "unix:" + unix, null, null,
                handed.UnlinkAtExit ? unix.ToString() : null),
            var other => new ListenSocket(handed.Fd, other?.ToString() ?? $"fd://{handed.Fd}", null, null, null),
        };
    }
}
