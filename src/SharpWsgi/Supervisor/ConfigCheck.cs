using System.Diagnostics;
using System.Text;
using SharpWsgi.Configuration;
using SharpWsgi.Hosting;

namespace SharpWsgi.Supervisor;

/// <summary>
/// --check-config: the supervisor's start-up checks (settings, TLS files, bind syntax) without binding or
/// writing a pid file, then one throwaway worker that imports the app and exits. Failures surface as the
/// same exceptions and exit codes as a real start; success prints what would be served.
/// </summary>
public static class ConfigCheck
{
    public static int Run(string[] args, ServerSettings settings, string version)
    {
        Program.CheckSettings(settings);
        var tls = TlsSetup.Load(settings);
        var listen = settings.Binds.Select(b => ListenSockets.Describe(b, settings)).ToList();
        // Files the server would write: only their directories are checked (a check writes nothing).
        if (settings.PidFile != null) CheckDirectoryOf("--pid", settings.PidFile);
        if (settings.ErrorLogFile != "-") CheckDirectoryOf("--error-logfile", settings.ErrorLogFile);

        var interpreter = Supervisor.ChoosePython(settings, null);
        // --user: this throwaway supervisor becomes the account too, so the worker imports the app as it will.
        var account = RunAs.Resolve(settings);
        if (account is { IsCurrent: false })
        {
            account.SwitchTo(null, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            account.CheckWorkersCanStart(settings, interpreter);
        }
        var (code, report) = RunCheckWorker(args, interpreter);
        if (code is WorkerProtocol.ExitStartup or WorkerProtocol.ExitUsage or WorkerProtocol.ExitAppLoad)
            return code; // the worker printed the problem, as a failing real worker would
        if (code != 0)
            throw new StartupException($"The check worker died while loading the app (exit code {code}" +
                (code > 128 ? $", signal {code - 128}" : "") + "): a crash in the interpreter or an extension.");

        var sb = new StringBuilder();
        sb.AppendLine($"sharpwsgi {version}: configuration OK");
        Row(sb, "config file", settings.ConfigFile ?? "none");
        Row(sb, "app", (settings.App ?? "(the built-in welcome app)") +
                       (report.TryGetValue("app", out var app) ? " -> " + app : ""));
        if (report.TryGetValue("python", out var python)) Row(sb, "python", python);
        if (report.TryGetValue("libpython", out var lib)) Row(sb, "libpython", lib);
        foreach (var url in listen) Row(sb, "listen", url);
        if (account != null) Row(sb, "run as", account.Description);
        Row(sb, "workers", settings.Interpreters > 1
            ? $"{settings.Workers} x {settings.Interpreters} interpreters x {settings.Threads} Python thread(s)"
            : $"{settings.Workers} x {settings.Threads} Python thread(s)");
        if (settings.PythonConfig is { Hooks.Count: > 0 } config) Row(sb, "hooks", string.Join(", ", config.Hooks));
        Row(sb, "tls", tls == null ? "off" :
            $"{tls.Certificate.Subject}, valid until {tls.Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
        sb.AppendLine("(nothing was bound: a port already in use is not detected)");
        Console.Out.Write(sb.ToString());
        return 0;
    }

    private static void CheckDirectoryOf(string option, string file)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(file))!;
        if (!Directory.Exists(directory))
            throw new StartupException($"{option} {file}: no such directory {directory}.");
    }

    private static void Row(StringBuilder sb, string name, string value) => sb.AppendLine($"  {name + ":",-13}{value}");

    /// <summary>Starts a worker (python with the bootstrap) with no listeners and the check variable, waits for
    /// it, and returns its exit code and report lines (anything else the app printed passes through).</summary>
    private static (int Code, Dictionary<string, string> Report) RunCheckWorker(string[] args, string python)
    {
        var psi = WorkerProtocol.StartInfo(python, WorkerProtocol.WorkerLibrary(), args);
        psi.RedirectStandardOutput = true;
        psi.Environment[WorkerProtocol.FdsVariable] = "";
        psi.Environment[WorkerProtocol.CheckVariable] = "1";
        using var process = Supervisor.StartWorkerProcess(psi);
        var report = new Dictionary<string, string>();
        while (process.StandardOutput.ReadLine() is { } line)
        {
            if (!line.StartsWith(WorkerProtocol.CheckLinePrefix, StringComparison.Ordinal))
            {
                Console.Out.WriteLine(line);
                continue;
            }
            var rest = line[WorkerProtocol.CheckLinePrefix.Length..];
            var space = rest.IndexOf(' ');
            if (space > 0) report[rest[..space]] = rest[(space + 1)..];
        }
        process.WaitForExit();
        return (process.ExitCode, report);
    }
}
