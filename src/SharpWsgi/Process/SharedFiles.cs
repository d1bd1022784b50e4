using System.Text.RegularExpressions;

namespace SharpWsgi;

/// <summary>
/// The files a supervisor shares with its workers (accept balance, metrics) are named after its pid and deleted
/// when it exits; a supervisor that was killed (SIGKILL, a crash) leaves them behind. Each new supervisor removes
/// those of supervisors that no longer run, so they do not pile up in /dev/shm.
/// </summary>
public static partial class SharedFiles
{
    [GeneratedRegex(@"^sharpwsgi-(\d+)\.(balance|metrics)$")]
    private static partial Regex Name();

    /// <summary>The directory for them: /dev/shm (memory) where it exists, else the temp directory.</summary>
    public static string Directory => System.IO.Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();

    public static void RemoveStale()
    {
        try
        {
            foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "sharpwsgi-*"))
            {
                var match = Name().Match(Path.GetFileName(path));
                if (!match.Success || !int.TryParse(match.Groups[1].Value, out var pid)) continue;
                if (pid == Environment.ProcessId || System.IO.Directory.Exists($"/proc/{pid}")) continue;
                try { File.Delete(path); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
