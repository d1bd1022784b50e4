using SharpWsgi.Configuration;
using SharpWsgi.Python;

namespace SharpWsgi;

/// <summary>
/// -n/--name, gunicorn's proc_name: what ps shows of the supervisor and its workers, "sharpwsgi: master [NAME]"
/// and "sharpwsgi: worker [NAME]" as gunicorn's titles read, and with --name the kernel's process name too (15
/// bytes: /proc/PID/comm, ps -o comm, top, pgrep). The supervisor's title goes through the launcher, which owns
/// its argument memory; a worker overwrites python's argument strings, which python copied at start-up.
/// </summary>
public static class ProcessTitle
{
    public const string Master = "master", Worker = "worker";

    /// <summary>--name, else gunicorn's default_proc_name: the app as given (the file for --paste).</summary>
    public static string NameOf(ServerSettings settings) =>
        settings.ProcessName ?? settings.Get("paste") ?? settings.App ?? "sharpwsgi";

    /// <summary>Titles this process; called on its main thread (the kernel's name is the main thread's).</summary>
    /// <param name="nameSuffix">".2" for a new supervisor while the old one of a binary upgrade runs, as gunicorn.
    /// </param>
    public static void Apply(string role, ServerSettings settings, string nameSuffix = "")
    {
        var title = $"sharpwsgi: {role} [{NameOf(settings)}{nameSuffix}]";
        if (!Libc.SetTitleThroughLauncher(title)) Libc.OverwriteArguments(title);
        // Without --name the kernel's name stays the program's (sharpwsgi, python3.x), which pgrep users expect.
        if (settings.ProcessName is { } name) Libc.SetThreadName(name);
    }
}
