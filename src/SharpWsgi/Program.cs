using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Hosting;
using SharpWsgi.Logging;
using SharpWsgi.Python;
using SharpWsgi.Worker;

// A POSIX server (signals, fork-free workers, libc); CipherSuitesPolicy and friends are not for Windows.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
// The host's rooms are tested in memory (tests/SharpWsgi.Hosting.Tests) through their internal seams.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("SharpWsgi.Hosting.Tests")]

namespace SharpWsgi;

public static class Program
{
    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            .Split('+')[0] ?? "0.0.0";

    /// <summary>The git commit the build came from (the SDK appends it to the informational version).</summary>
    public static string Commit
    {
        get
        {
            var v = typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()
                ?.InformationalVersion ?? "";
            var plus = v.IndexOf('+');
            return plus < 0 ? "unknown" : v[(plus + 1)..][..Math.Min(12, v.Length - plus - 1)];
        }
    }

    /// <summary>--version: what a bug report needs, including the Python the workers would run in. Never fails:
    /// no usable Python is reported as such (exit 0), like --help, which needs no Python at all.</summary>
    private static string VersionText(ServerSettings settings)
    {
        var sb = new System.Text.StringBuilder();
        var build = System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported ? "JIT" : "NativeAOT";
        sb.AppendLine($"sharpwsgi {Version} (commit {Commit}, {RuntimeInformation.FrameworkDescription}, {build})");
        try
        {
            var (interpreter, source) = PythonLocator.Choose(settings.Python);
            var info = PythonLocator.Describe(interpreter, source);
            sb.AppendLine($"python:    {info.Version} {interpreter} (chosen by {source})");
            sb.AppendLine($"worker:    {WorkerLibraryText()}");
        }
        catch (PythonStartupException e)
        {
            sb.AppendLine($"python:    none usable: {e.Message}");
        }
        return sb.ToString();
    }

    private static string WorkerLibraryText()
    {
        try { return WorkerProtocol.WorkerLibrary(); }
        catch (StartupException e) { return e.Message; }
    }

    /// <summary>The launcher's entry point (packaging/launcher/sharpwsgi.c): the program's arguments without argv[0],
    /// and the path of this library, which the workers' python loads.</summary>
    [UnmanagedCallersOnly(EntryPoint = "sharpwsgi_main")]
    public static int LauncherMain(int argc, nint argv, nint library)
    {
        try
        {
            WorkerProtocol.LauncherLibrary = Marshal.PtrToStringUTF8(library);
            return Main(Libc.ReadArgv(argc, argv));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"sharpwsgi: internal error: {e}");
            Supervisor.Daemon.ReportExit(WorkerProtocol.ExitStartup);
            return WorkerProtocol.ExitStartup;
        }
    }

    public static int Main(string[] args)
    {
        var code = RunCommand(args);
        // A --daemon that stops before it serves tells the command that started it (nothing otherwise).
        Supervisor.Daemon.ReportExit(code);
        return code;
    }

    private static int RunCommand(string[] args)
    {
        ServerSettings settings;
        try
        {
            var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
            settings = ServerSettings.Parse(args, env);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"sharpwsgi: error: {e.Message}");
            Console.Error.WriteLine("usage: sharpwsgi [OPTIONS] [APP]   (sharpwsgi --help for the options)");
            return WorkerProtocol.ExitUsage;
        }
        if (settings.ShowHelp) { Console.Out.Write(HelpText.Usage(Version)); return 0; }
        if (settings.ShowVersion) { Console.Out.Write(VersionText(settings)); return 0; }
        if (settings.PrintSettingsMarkdown) { Console.Out.Write(HelpText.Markdown()); return 0; }
        if (settings.PrintManPage) { Console.Out.Write(HelpText.ManPage(Version)); return 0; }
        if (settings.PrintConfig) { Console.Out.Write(ConfigReport.Print(settings, Version)); return 0; }

        // The supervisor's process flags that must come before any file is created: --daemon starts the copy that
        // will serve in the background (it comes back here with the status pipe), --umask covers the error log.
        if (!WorkerProtocol.IsWorker && !settings.CheckConfig)
        {
            if (Supervisor.Daemon.ShouldStartInBackground(settings)) return Supervisor.Daemon.RunInForeground(args);
            Supervisor.Daemon.TakeStatusPipe();
            if (settings.Umask is { } mask) Libc.SetUmask((uint)mask);
        }

        var level = ErrorLogProvider.ParseLevel(settings.LogLevel);
        var errorLog = settings.ErrorLogFile;
        if (settings.CheckConfig || WorkerProtocol.IsCheckWorker)
        {
            // A check reports on the terminal (or the CI log): problems only, never into the server's log file.
            if (level < LogLevel.Warning) level = LogLevel.Warning;
            errorLog = "-";
        }
        // Disposed at exit: what the outlets (syslog, statsd) still hold is sent then.
        using var loggers = OpenErrorLog(level, errorLog, settings);
        if (loggers == null) return WorkerProtocol.ExitStartup;
        var log = loggers.CreateLogger("sharpwsgi");
        if (!WorkerProtocol.IsWorker) settings.LogConfigMessages(log);
        try
        {
            return Serve(args, settings, loggers, log);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"sharpwsgi: error: {e.Message}");
            return WorkerProtocol.ExitUsage;
        }
        catch (PythonStartupException e)
        {
            log.LogCritical("{Message}", e.Message);
            return WorkerProtocol.ExitStartup;
        }
        catch (AppLoadException e)
        {
            log.LogCritical("{Message}",
                e.Message + (e.PythonTraceback != null ? "\n" + e.PythonTraceback.TrimEnd() : ""));
            return WorkerProtocol.ExitAppLoad;
        }
        catch (StartupException e)
        {
            log.LogCritical("{Message}", e.Message);
            return WorkerProtocol.ExitStartup;
        }
    }

    /// <summary>The error log, or null after saying in one line why it cannot be opened.</summary>
    private static ErrorLogProvider? OpenErrorLog(LogLevel level, string? errorLog, ServerSettings settings)
    {
        try { return new ErrorLogProvider(level, errorLog, settings.JsonLogs, LogOutlets.From(settings)); }
        catch (IOException e)
        {
            Console.Error.WriteLine($"sharpwsgi: error: --error-logfile: {e.Message}.");
            return null;
        }
    }

    private static int Serve(string[] args, ServerSettings settings, ErrorLogProvider loggers, ILogger log)
    {
        if (WorkerProtocol.IsWorker) return WorkerMain.Run(settings, loggers, log, Version);
        // Before the interpreter is chosen and the app imported (-e VIRTUAL_ENV=..., -e DJANGO_SETTINGS_MODULE=...).
        Supervisor.RawEnvironment.Apply(settings.RawEnv);
        // The check worker is started with the same arguments, --check-config among them: IsWorker comes first.
        if (settings.CheckConfig) return Supervisor.ConfigCheck.Run(args, settings, Version);
        log.LogInformation("Starting sharpwsgi {Version}", Version);
        CheckSettings(settings);
        CaptureOutput(settings, log);
        if (settings.Interpreters > 1)
            log.LogInformation("Using {Workers} worker(s) with {Interpreters} interpreters of {Threads} Python " +
                "thread(s) each", settings.Workers, settings.Interpreters, settings.Threads);
        else
            log.LogInformation("Using {Workers} worker(s) with {Threads} Python thread(s) each",
                settings.Workers, settings.Threads);
        return new Supervisor.Supervisor(args, settings, loggers, log).Run();
    }

    /// <summary>--capture-output: stdout and stderr into the error log, for the supervisor and the workers it
    /// starts (they inherit descriptors 1 and 2).</summary>
    private static void CaptureOutput(ServerSettings settings, ILogger log)
    {
        if (StandardStreams.CaptureTarget(settings) is { } path)
        {
            if (StandardStreams.Capture(path) is { } problem)
                throw new StartupException($"--capture-output: {problem}.");
        }
        else if (settings.CaptureOutput)
            log.LogWarning("--capture-output does nothing without --error-logfile FILE: stdout and stderr stay as " +
                "they are");
    }

    /// <summary>The supervisor's checks of settings that parse but cannot work (also run by --check-config).
    /// </summary>
    internal static void CheckSettings(ServerSettings settings)
    {
        if (settings.Chdir != null && !Directory.Exists(settings.Chdir))
            throw new StartupException($"--chdir {settings.Chdir}: no such directory.");
        // A user or group that does not exist, or one this process may not become, stops the start here.
        Supervisor.RunAs.Resolve(settings);
        CheckTempDirectory(settings.TempDirectory);
        foreach (var spec in settings.StaticMounts)
        {
            var dir = Hosting.StaticFiles.ParseMount(spec).Directory;
            if (!Directory.Exists(dir))
                throw new StartupException(Hosting.StaticFiles.DescribeBadDirectory(spec, dir));
        }
        CheckFileLocations(settings);
        if (settings.MinRateGrace <= 1 && (settings.MinUploadRate > 0 || settings.MinDownloadRate > 0))
            throw new UsageException($"--min-rate-grace must be more than 1 second, got {settings.MinRateGrace}");
    }

    /// <summary>--internal and --x-sendfile-root directories exist, and no --internal prefix shadows a --static one
    /// (a request from outside under an internal prefix gets 404, so the static files would never be reached).
    /// </summary>
    private static void CheckFileLocations(ServerSettings settings)
    {
        foreach (var spec in settings.InternalLocations)
        {
            var (prefix, dir) = Hosting.StaticFiles.ParseMount(spec);
            if (!Directory.Exists(dir))
                throw new StartupException(Hosting.FileRedirects.DescribeBadDirectory("--internal " + spec, dir));
            foreach (var staticSpec in settings.StaticMounts)
            {
                var staticPrefix = Hosting.StaticFiles.ParseMount(staticSpec).Prefix;
                if (prefix.StartsWith(staticPrefix, StringComparison.Ordinal) ||
                    staticPrefix.StartsWith(prefix, StringComparison.Ordinal))
                    throw new UsageException($"--internal {spec} overlaps --static {staticSpec}: a location is " +
                        "either public (--static) or reachable only through the app's X-Accel-Redirect " +
                        "(--internal); give them prefixes that do not contain each other");
            }
        }
        foreach (var dir in settings.XSendfileRoots)
            if (!Directory.Exists(dir))
                throw new StartupException(Hosting.FileRedirects.DescribeBadDirectory("--x-sendfile-root " + dir, dir));
    }

    /// <summary>Spool files go to --tmp-dir: it must exist and take a file, or the first slow client would find
    /// out.</summary>
    internal static void CheckTempDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new StartupException(
                $"--tmp-dir {directory}: no such directory (spool files for slow clients go there).");
        try { SpoolFile.Create(directory).Dispose(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"--tmp-dir {directory}: cannot create a spool file there: {e.Message}");
        }
    }
}
