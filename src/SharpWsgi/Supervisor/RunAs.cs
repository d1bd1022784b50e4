using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Hosting;
using SharpWsgi.Python;

namespace SharpWsgi.Supervisor;

/// <summary>
/// -u/--user and -g/--group: the account the server runs as once it has bound. Started as root, the supervisor
/// opens the listening sockets, the pid file and the log files, hands the files it created to the account
/// (<see cref="HandOver"/>), then switches to it for good (<see cref="SwitchTo"/>); its workers are started as that
/// account and never were root. Unlike gunicorn, whose master stays root and whose workers switch, nothing of the
/// server runs as root after start-up; and the group defaults to the user's own, not the starter's (root's).
/// </summary>
internal sealed record RunAs(uint Uid, uint Gid, string? UserName, string Description)
{
    /// <summary>The account --user/--group name, or null when neither is given. Throws
    /// <see cref="UsageException"/> for a user or group the system does not know, <see cref="StartupException"/>
    /// when this process may not switch to it (not root).</summary>
    public static RunAs? Resolve(ServerSettings settings)
    {
        if (settings.User == null && settings.Group == null) return null;
        uint uid = Libc.GetEffectiveUid(), gid;
        string? userName = null;
        Libc.Account? account = null;
        if (settings.User is { } user)
        {
            account = IsNumber(user, out var number) ? Libc.AccountById(number) : Libc.AccountByName(user);
            if (account == null && !IsNumber(user, out _))
                throw new UsageException($"--user {user}: no such user on this system (not in the user " +
                    "database: /etc/passwd, or what nsswitch.conf names). Give an existing user's name or number.");
            uid = account?.Uid ?? number;
            userName = account?.Name;
        }
        if (settings.Group is { } group)
        {
            var entry = IsNumber(group, out var number) ? Libc.GroupById(number) : Libc.GroupByName(group);
            if (entry == null && !IsNumber(group, out _))
                throw new UsageException($"--group {group}: no such group on this system (not in the group " +
                    "database: /etc/group, or what nsswitch.conf names). Give an existing group's name or number.");
            gid = entry?.Gid ?? number;
        }
        else if (account != null) gid = account.Gid;
        else if (settings.User != null)
            throw new UsageException($"--user {settings.User}: no user has that number in the user database, so " +
                "it has no primary group to run as: give --group too.");
        else gid = Libc.GetEffectiveGid();

        var description = $"user {userName ?? uid.ToString()} (uid {uid}), group " +
            $"{Libc.GroupById(gid)?.Name ?? gid.ToString()} (gid {gid})";
        var runAs = new RunAs(uid, gid, userName, description);
        if (!runAs.IsCurrent && Libc.GetEffectiveUid() != 0)
            throw new StartupException($"--user/--group: switching to {description} needs root, and sharpwsgi " +
                $"runs as uid {Libc.GetEffectiveUid()}, gid {Libc.GetEffectiveGid()}. Start it as root (it binds, " +
                "then switches), or leave out --user and --group to run as the current user.");
        return runAs;
    }

    private static bool IsNumber(string text, out uint number) =>
        uint.TryParse(text, System.Globalization.NumberStyles.None, null, out number);

    /// <summary>This process runs as the account already (a binary upgrade's new supervisor, or a user naming
    /// itself): nothing to hand over or switch.</summary>
    public bool IsCurrent => Libc.RunsOnlyAs(Uid, Gid);

    /// <summary>
    /// Files the server created as root and must still use as the account: the pid file (read back before it is
    /// removed), log files (workers open them, USR1 reopens them), unix sockets (the account's to accept on and
    /// unlink), the shared memory files (workers map them). Directories are never changed: removing or renaming
    /// a file there needs the account to be allowed to write the directory.
    /// </summary>
    public void HandOver(IEnumerable<string?> paths, ILogger log)
    {
        foreach (var path in paths)
        {
            if (path == null || !File.Exists(path)) continue;
            if (Libc.Chown(path, Uid, Gid) is { } problem)
                log.LogWarning("--user: cannot hand {Path} to {Account}: {Problem}", path, Description, problem);
        }
    }

    /// <summary>Switches this process to the account for good; the pid file's directory is checked, since the
    /// account must be able to remove and rename the file there.</summary>
    public void SwitchTo(string? pidFile, ILogger log)
    {
        if (IsCurrent) return;
        try { Libc.SwitchUser(UserName, Uid, Gid); }
        catch (IOException e)
        {
            throw new StartupException($"--user/--group: cannot switch to {Description}: {e.Message} (a " +
                "container may lack CAP_SETUID and CAP_SETGID).");
        }
        log.LogInformation("Running as {Account}", Description);
        if (pidFile != null && Path.GetDirectoryName(Path.GetFullPath(pidFile)) is { } directory &&
            !Libc.CanWrite(directory))
            log.LogWarning("--pid {File}: {Directory} is not writable by {Account}, so the pid file is not " +
                "removed at exit and a binary upgrade (USR2) cannot rename it; give it a directory the account owns",
                pidFile, directory, Description);
    }

    /// <summary>Once switched: what the workers will need as the account, checked now rather than by a worker that
    /// fails to boot. The interpreter's directories (pyenv under /root), --tmp-dir, the TLS files.</summary>
    public void CheckWorkersCanStart(ServerSettings settings, string python)
    {
        if (!Libc.CanExecute(python))
            throw new StartupException($"The workers' interpreter {python} cannot be run by {Description} " +
                "(--user): the file, or a directory on its path, is closed to that account (pyenv under /root " +
                "is). Give --python an interpreter the account can run, such as /usr/bin/python3 or a virtualenv " +
                "it can read.");
        try
        {
            Program.CheckTempDirectory(settings.TempDirectory);
            TlsSetup.Load(settings);
        }
        catch (StartupException e)
        {
            throw new StartupException($"{e.Message.TrimEnd('.')}, as {Description} (--user): the workers run " +
                "as that account.");
        }
    }
}
