namespace SharpWsgi.Tests.Infrastructure;

/// <summary>The response spool files a server's processes hold open (unlinked, so their /proc links end in
/// "(deleted)"), seen through /proc/PID/fd.</summary>
public static class SpoolFiles
{
    /// <summary>The /proc/PID/fd/N paths of the spool files open in the server and its workers now.</summary>
    public static List<string> Open(ServerProcess server)
    {
        var found = new List<string>();
        foreach (var pid in ProcessTree.WithDescendants(server.Pid))
        {
            string[] fds;
            try { fds = Directory.GetFiles($"/proc/{pid}/fd"); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            foreach (var fd in fds)
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget is { } target && target.Contains("sharpwsgi-spool")) found.Add(fd);
                }
                catch (IOException) { } // closed meanwhile
            }
        }
        return found;
    }
}
