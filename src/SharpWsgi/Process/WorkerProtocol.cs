using System.Diagnostics;
using SharpWsgi.Python;
using System.Text;

namespace SharpWsgi;

/// <summary>
/// The whole contract between the supervisor and its workers, used by both sides: the environment variables a
/// worker is started with, the lines it writes on its control pipe, and the exit codes the supervisor acts on.
/// A worker is the chosen interpreter's own executable: the supervisor starts `python -c BOOTSTRAP LIBRARY ARGS`
/// (<see cref="StartInfo"/>), the bootstrap loads SharpWsgi's native library (the same file the `sharpwsgi`
/// launcher runs) as the extension module `_sharpwsgi` by its path, never through sys.path, and calls its serve();
/// <see cref="FdsVariable"/> in the environment selects the worker role.
/// </summary>
public static class WorkerProtocol
{
    // The environment of a worker. Each variable is read once (Take) and removed, so the app's own
    // subprocesses do not inherit it (a subprocess running sharpwsgi would otherwise think it is a worker).

    /// <summary>Inherited listening descriptors, "3,4" (may be empty); its presence marks the worker role.</summary>
    public const string FdsVariable = "SHARPWSGI_WORKER_FDS";
    /// <summary>Those of <see cref="FdsVariable"/> that speak TLS (--certfile, https:// binds).</summary>
    public const string TlsFdsVariable = "SHARPWSGI_WORKER_TLS_FDS";
    /// <summary>Addresses the worker binds itself with SO_REUSEPORT (--reuse-port), comma-separated; "https://" in
    /// front of one that speaks TLS.</summary>
    public const string ReusePortVariable = "SHARPWSGI_WORKER_REUSEPORT";
    /// <summary>"1" when more than one worker runs at spawn time (the first value of wsgi.multiprocess).</summary>
    public const string MultiprocessVariable = "SHARPWSGI_WORKER_MULTIPROCESS";
    /// <summary>The request count (jitter added) after which the worker asks to be recycled; absent for none.</summary>
    public const string MaxRequestsVariable = "SHARPWSGI_WORKER_MAX_REQUESTS";
    /// <summary>The write end of the worker's control pipe (an inherited handle, as a string).</summary>
    public const string ControlFdVariable = "SHARPWSGI_CONTROL_FD";
    /// <summary>The shared accept-balance file (<see cref="AcceptBalance"/>) and this worker's slot in it.</summary>
    public const string BalanceFileVariable = "SHARPWSGI_BALANCE_FILE";
    public const string BalanceSlotVariable = "SHARPWSGI_BALANCE_SLOT";
    /// <summary>The shared metrics file (Metrics.MetricsTable) and this worker's slot in it; absent when
    /// --metrics-bind is off.</summary>
    /// <summary>The key a worker's requests handed to a sibling carry (Hosting.StallHandover); one per
    /// supervisor.</summary>
    public const string HandoverKeyVariable = "SHARPWSGI_HANDOVER_KEY";
    public const string MetricsFileVariable = "SHARPWSGI_METRICS_FILE";
    public const string MetricsSlotVariable = "SHARPWSGI_METRICS_SLOT";

    // A binary upgrade (USR2): what the old supervisor hands the new supervisor it starts (Supervisor.BinaryUpgrade).
    // Read once and removed too, so the new supervisor's workers and the app's subprocesses do not see them.

    /// <summary>The listening sockets the new supervisor serves instead of binding --bind, as gunicorn's
    /// GUNICORN_FD: <see cref="HandedDownSocket"/>s, comma-separated.</summary>
    public const string UpgradeFdsVariable = "SHARPWSGI_UPGRADE_FDS";
    /// <summary>The --metrics-bind listener's descriptor, shared the same way.</summary>
    public const string UpgradeMetricsFdVariable = "SHARPWSGI_UPGRADE_METRICS_FD";
    /// <summary>The old supervisor's pid (gunicorn's GUNICORN_PID).</summary>
    public const string UpgradeFromVariable = "SHARPWSGI_UPGRADE_FROM";

    /// <summary>"1" when the worker's stdout and stderr are still the terminal a --daemon was started from: it
    /// points them at /dev/null once it is ready, as the daemon does with its own.</summary>
    public const string ReleaseStdioVariable = "SHARPWSGI_WORKER_RELEASE_STDIO";

    // --daemon: the command the user ran starts the program again in the background (Supervisor.Daemon).

    /// <summary>The write end of the pipe on which the background copy says "ready" once it serves, or "exit N"
    /// when it stops first. Its presence also tells the launcher to detach (packaging/launcher/sharpwsgi.c).
    /// </summary>
    public const string DaemonStatusVariable = "SHARPWSGI_DAEMON_STATUS_FD";

    /// <summary>"1" for --check-config's throwaway worker: it imports the app, reports on stdout with
    /// <see cref="CheckLinePrefix"/> lines and exits (0, or the usual start-up exit codes) without serving.</summary>
    public const string CheckVariable = "SHARPWSGI_WORKER_CHECK";
    /// <summary>Marks the check worker's report lines ("sharpwsgi-check: app REPR", "... python VERSION PATH"), so
    /// whatever the app prints while it is imported is not mistaken for them.</summary>
    public const string CheckLinePrefix = "sharpwsgi-check: ";

    /// <summary>Where the worker library is when the launcher did not say (a JIT build run by dotnet: the
    /// NativeAOT library from ./publish.sh, dist/_sharpwsgi.so).</summary>
    public const string WorkerLibraryVariable = "SHARPWSGI_WORKER_LIBRARY";

    /// <summary>The file name of the native library: the extension module's name, `_sharpwsgi`.</summary>
    public const string WorkerLibraryFileName = "_sharpwsgi.so";

    /// <summary>Set by the launcher's entry point (sharpwsgi_main) to the library it loaded.</summary>
    public static string? LauncherLibrary { get; set; }

    /// <summary>The native library the workers' python loads: the launcher's, else $SHARPWSGI_WORKER_LIBRARY, else
    /// _sharpwsgi.so beside this program, else (a JIT build in a clone) the clone's dist/_sharpwsgi.so.</summary>
    public static string WorkerLibrary()
    {
        var path = LauncherLibrary ?? Environment.GetEnvironmentVariable(WorkerLibraryVariable);
        if (string.IsNullOrEmpty(path)) path = Path.Combine(AppContext.BaseDirectory, WorkerLibraryFileName);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); !File.Exists(path) && dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SharpWsgi.slnx")))
                path = Path.Combine(dir.FullName, "dist", WorkerLibraryFileName);
        if (!File.Exists(path))
            throw new Hosting.StartupException(
                $"SharpWsgi's worker library {path} does not exist: the workers run in python and load it. " +
                "Reinstall sharpwsgi; from a clone, ./publish.sh builds it (dist/_sharpwsgi.so), and a JIT build " +
                $"started by dotnet finds it through {WorkerLibraryVariable}.");
        return Path.GetFullPath(path);
    }

    /// <summary>
    /// The worker's first Python: it runs in any interpreter the user may name (Python 2 included), so it refuses
    /// what cannot run a worker in one paragraph and exit code 1 (<see cref="ExitStartup"/>) before loading the
    /// library, loads it by path as the extension module `_sharpwsgi`, and ends the process with serve()'s exit
    /// code without finalising Python (the server's threads still hold thread states; the app's atexit hooks run
    /// in serve()).
    /// </summary>
    public const string Bootstrap = """
# sharpwsgi worker
import os, sys
def fail(text):
    sys.stderr.write("sharpwsgi: error: %s\n" % text)
    sys.stderr.flush()
    os._exit(1)
lib = sys.argv[1]
impl = getattr(getattr(sys, "implementation", None), "name", "python")
version = sys.version.split()[0]
if impl != "cpython" or sys.version_info[:2] < (3, 9):
    fail("%s is %s %s: SharpWsgi's workers run in CPython 3.9 or newer. Pass --python with a newer "
         "interpreter." % (sys.executable, impl, version))
import sysconfig
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    fail("%s is a free-threaded build of Python %s; SharpWsgi supports the default (GIL) builds." %
         (sys.executable, version))
try:
    from importlib.machinery import ExtensionFileLoader
    from importlib.util import module_from_spec, spec_from_file_location
    loader = ExtensionFileLoader("_sharpwsgi", lib)
    module = module_from_spec(spec_from_file_location("_sharpwsgi", lib, loader=loader))
except BaseException as e:
    fail("%s (Python %s) cannot load SharpWsgi's worker library %s: %s: %s. Reinstall sharpwsgi." %
         (sys.executable, version, lib, type(e).__name__, e))
del sys.argv[1:2]
code = module.serve(sys.argv[1:])
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except Exception:
        pass
os._exit(code)
""";

    /// <summary>How a worker is started: the interpreter's own executable running <see cref="Bootstrap"/> with the
    /// library and the server's arguments (each worker parses them again, as it always did).</summary>
    public static ProcessStartInfo StartInfo(string python, string library, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(python) { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Bootstrap);
        psi.ArgumentList.Add(library);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    public static bool IsWorker => Environment.GetEnvironmentVariable(FdsVariable) != null;
    public static bool IsCheckWorker => IsWorker && Environment.GetEnvironmentVariable(CheckVariable) == "1";

    /// <summary>Reads a variable of the worker's environment and removes it.</summary>
    public static string? Take(string variable)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        Environment.SetEnvironmentVariable(variable, null);
        return value;
    }

    /// <summary>A comma-separated variable as its items (none when absent), removed from the environment.</summary>
    public static string[] TakeList(string variable) =>
        (Take(variable) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);

    // Exit codes of the program. The supervisor does not respawn a worker that exits with ExitAppLoad or
    // ExitStartup before it was ready (the next one would fail the same way); it halts with that code instead.
    public const int ExitStartup = 1, ExitUsage = 2, ExitAppLoad = 4;
    /// <summary>A worker's exit on SIGABRT, the supervisor's heartbeat kill (128 + signal, as a shell says).</summary>
    public const int ExitHeartbeatAbort = 128 + Libc.SIGABRT;
}

/// <summary>
/// One listening socket in <see cref="WorkerProtocol.UpgradeFdsVariable"/>: "FD" and flags after a colon, t (it speaks
/// TLS), u (a unix socket bound from --bind: whichever supervisor stops last unlinks its path), r (a --reuse-port
/// holder: bound, not listening, its address bound by each worker itself). "4:tu" is never sent (unix is cleartext).
/// </summary>
public readonly record struct HandedDownSocket(int Fd, bool Tls, bool UnlinkAtExit, bool ReusePortHolder)
{
    public override string ToString()
    {
        var flags = (Tls ? "t" : "") + (UnlinkAtExit ? "u" : "") + (ReusePortHolder ? "r" : "");
        return flags.Length == 0 ? Fd.ToString() : $"{Fd}:{flags}";
    }

    /// <summary>One item, or null when it is not "FD[:FLAGS]" with known flags.</summary>
    public static HandedDownSocket? Parse(string item)
    {
        var colon = item.IndexOf(':');
        var number = colon < 0 ? item : item[..colon];
        var flags = colon < 0 ? "" : item[(colon + 1)..];
        if (!int.TryParse(number, out var fd) || fd < 0 || flags.Trim('t', 'u', 'r').Length > 0) return null;
        return new HandedDownSocket(fd, flags.Contains('t'), flags.Contains('u'), flags.Contains('r'));
    }
}

public enum WorkerMessageKind { Unknown, Ready, Beat, Recycle }

/// <summary>Why a worker is stopped or replaced: the reason label of sharpwsgi_worker_exits_total.</summary>
public enum StopCause { Stuck, MaxRequests, MaxLifetime, MaxRss, Reload, Shutdown, ScaleDown }

public static class StopCauses
{
    private static readonly string[] Labels =
        { "stuck", "max-requests", "max-lifetime", "max-rss", "reload", "shutdown", "scale-down" };

    public static string Label(this StopCause cause) => Labels[(int)cause];

    /// <summary>A label read off the control pipe; an unknown one is a stuck worker's (the worker's own
    /// request).</summary>
    public static StopCause Parse(string label)
    {
        var i = Array.IndexOf(Labels, label);
        return i < 0 ? StopCause.Stuck : (StopCause)i;
    }
}

/// <summary>
/// One line a worker writes on its control pipe: "ready" (serving), "beat" (its Python is responsive; every
/// heartbeat interval) or "recycle CAUSE REASON" (replace me: CAUSE is a <see cref="StopCause"/> label such as
/// max-requests or stuck, REASON the words for the log). UTF-8, '\n'-ended.
/// </summary>
public readonly record struct WorkerMessage(WorkerMessageKind Kind, string? Reason = null,
    StopCause Cause = StopCause.Stuck)
{
    public static readonly WorkerMessage Ready = new(WorkerMessageKind.Ready);
    public static readonly WorkerMessage Beat = new(WorkerMessageKind.Beat);
    public static WorkerMessage Recycle(StopCause cause, string reason) =>
        new(WorkerMessageKind.Recycle, reason, cause);

    private static readonly byte[] ReadyLine = "ready\n"u8.ToArray(), BeatLine = "beat\n"u8.ToArray();
    private static ReadOnlySpan<byte> RecyclePrefix => "recycle "u8;

    /// <summary>The line as sent, '\n' included; ready and beat are preallocated (a beat goes every second).</summary>
    public byte[] Encode() => Kind switch
    {
        WorkerMessageKind.Ready => ReadyLine,
        WorkerMessageKind.Beat => BeatLine,
        // A reason is one line: a newline in it would split the message.
        WorkerMessageKind.Recycle => Encoding.UTF8.GetBytes(
            $"recycle {Cause.Label()} {Reason!.ReplaceLineEndings(" ")}\n"),
        _ => throw new InvalidOperationException("an unknown message is not sent"),
    };

    /// <summary>Parses one line (without its '\n'); allocates only for a recycle reason or an unknown line.</summary>
    public static WorkerMessage Parse(ReadOnlySpan<byte> line)
    {
        if (line.SequenceEqual(BeatLine.AsSpan(0, BeatLine.Length - 1))) return Beat;
        if (line.SequenceEqual(ReadyLine.AsSpan(0, ReadyLine.Length - 1))) return Ready;
        if (line.StartsWith(RecyclePrefix))
        {
            var rest = Encoding.UTF8.GetString(line[RecyclePrefix.Length..]);
            var space = rest.IndexOf(' ');
            return space < 0 ? Recycle(StopCauses.Parse(rest), rest)
                : Recycle(StopCauses.Parse(rest[..space]), rest[(space + 1)..]);
        }
        return new WorkerMessage(WorkerMessageKind.Unknown, Encoding.UTF8.GetString(line));
    }
}
