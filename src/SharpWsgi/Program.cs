using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Hosting;
using SharpWsgi.Logging;
using SharpWsgi.Python;

namespace SharpWsgi;

public static class Program
{
    public const int ExitUsage = 2, ExitStartup = 1, ExitAppLoad = 4;

    public static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static int Main(string[] args)
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
            return ExitUsage;
        }
        if (settings.ShowHelp) { Console.Out.Write(HelpText.Usage(Version)); return 0; }
        if (settings.ShowVersion) { Console.Out.WriteLine($"sharpwsgi {Version}"); return 0; }
        if (settings.PrintSettingsMarkdown) { Console.Out.Write(HelpText.Markdown()); return 0; }

        var loggers = new ErrorLogProvider(ErrorLogProvider.ParseLevel(settings.LogLevel));
        var log = loggers.CreateLogger("sharpwsgi");
        try
        {
            return Serve(settings, loggers, log);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"sharpwsgi: error: {e.Message}");
            return ExitUsage;
        }
        catch (PythonStartupException e)
        {
            log.LogCritical("{Message}", e.Message);
            return ExitStartup;
        }
        catch (AppLoadException e)
        {
            log.LogCritical("{Message}", e.Message + (e.PythonTraceback != null ? "\n" + e.PythonTraceback.TrimEnd() : ""));
            return ExitAppLoad;
        }
        catch (StartupException e)
        {
            log.LogCritical("{Message}", e.Message);
            return ExitStartup;
        }
    }

    private static int Serve(ServerSettings settings, ErrorLogProvider loggers, ILogger log)
    {
        log.LogInformation("Starting sharpwsgi {Version}", Version);
        if (settings.Chdir != null)
        {
            if (!Directory.Exists(settings.Chdir)) throw new StartupException($"--chdir {settings.Chdir}: no such directory.");
            Directory.SetCurrentDirectory(settings.Chdir);
        }
        var cwd = Directory.GetCurrentDirectory();
        var (interpreter, source) = PythonLocator.Choose(settings.Python);
        var info = PythonLocator.Describe(interpreter, source);
        var leading = new List<string> { cwd };
        leading.AddRange(settings.PythonPath.Select(Path.GetFullPath));
        PythonRuntime.Initialize(info, leading, new[] { "sharpwsgi" });
        log.LogInformation("Python {Version} ({Executable}), libpython {Library}", PythonRuntime.LoadedVersion(), info.Executable, info.LibPythonPath);

        var options = new WsgiOptions
        {
            Threads = settings.Threads,
            QueueSize = settings.QueueSize,
            RootPath = settings.RootPath,
            Multiprocess = false,
            ServerSoftware = $"sharpwsgi/{Version}",
        };
        var gateway = PythonRuntime.RunOnMainThreadState(() =>
        {
            var app = AppLoader.Load(settings.App, Version);
            return WsgiGateway.Create(app, options, loggers);
        });
        log.LogInformation("Serving {App} with {Threads} Python threads", settings.App ?? "the built-in welcome app", settings.Threads);

        var host = ServerHost.StartAsync(settings, gateway, loggers).GetAwaiter().GetResult();
        foreach (var address in host.Addresses)
            log.LogInformation("Listening at: {Address} ({Pid})", address, Environment.ProcessId);

        using var stop = new ManualResetEventSlim();
        var signal = "";
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; signal = "TERM"; stop.Set(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; signal = "INT"; stop.Set(); });
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => { c.Cancel = true; signal = "QUIT"; stop.Set(); });
        stop.Wait();
        log.LogInformation("Handling signal: {Signal}; shutting down", signal);
        host.StopAsync(signal == "TERM" ? TimeSpan.FromSeconds(30) : TimeSpan.Zero).GetAwaiter().GetResult();
        log.LogInformation("Shutdown complete");
        return 0;
    }
}
