using Microsoft.Extensions.Logging;
using SharpWsgi.Hosting;

namespace SharpWsgi.Supervisor;

/// <summary>
/// --pid FILE: the supervisor's process id. During a binary upgrade (USR2) the old supervisor moves its file to
/// FILE.oldbin and the new one writes FILE, as nginx does, so FILE always names the supervisor that will stay; a new
/// supervisor that exits before the old one gives FILE back. A supervisor only ever removes a file that still holds
/// its own pid.
/// </summary>
internal sealed class PidFile
{
    private readonly string _path;
    private readonly ILogger _log;
    private string _current;

    public PidFile(string path, ILogger log)
    {
        _path = Path.GetFullPath(path);
        _log = log;
        _current = _path;
    }

    public string OldBinPath => _path + ".oldbin";

    public void Write()
    {
        try { File.WriteAllText(_path, Environment.ProcessId + "\n"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"--pid {_path}: cannot write the pid file: {e.Message}");
        }
    }

    /// <summary>USR2: FILE becomes FILE.oldbin, before the new supervisor writes FILE.</summary>
    public void MoveToOldBin()
    {
        if (_current != _path || !HoldsPid(_path, Environment.ProcessId)) return;
        if (Move(_path, OldBinPath)) _current = OldBinPath;
    }

    /// <summary>The new supervisor exited first (failed, or stopped to roll back): FILE names this one again, unless
    /// a third process has written it meanwhile.</summary>
    public void MoveBack(int successorPid)
    {
        if (_current != OldBinPath) return;
        if (File.Exists(_path) && !HoldsPid(_path, successorPid)) return;
        if (Move(OldBinPath, _path)) _current = _path;
    }

    public void Remove()
    {
        if (!HoldsPid(_current, Environment.ProcessId)) return;
        try { File.Delete(_current); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private bool Move(string from, string to)
    {
        try
        {
            File.Move(from, to, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("--pid: cannot rename {From} to {To}: {Message}", from, to, e.Message);
            return false;
        }
    }

    private static bool HoldsPid(string path, int pid)
    {
        try { return File.ReadAllText(path).Trim() == pid.ToString(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
