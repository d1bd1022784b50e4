using Microsoft.Extensions.Logging;
using SharpWsgi.Configuration;
using SharpWsgi.Python;

namespace SharpWsgi.Worker;

/// <summary>
/// What --name, --capture-output and --daemon ask of a worker itself. --user, --group, --umask and --env need
/// nothing here: the supervisor applied them to itself before starting the worker, which inherits them.
/// </summary>
public static class WorkerProcessFlags
{
    private static bool _releaseOutputWhenReady;

    /// <summary>At boot, on python's main thread with Python attached, before the app is imported.</summary>
    public static void Apply(ServerSettings settings)
    {
        _releaseOutputWhenReady = WorkerProtocol.Take(WorkerProtocol.ReleaseStdioVariable) == "1";
        ProcessTitle.Apply(ProcessTitle.Worker, settings);
        // The supervisor pointed stdout and stderr at the log; a file makes Python buffer sys.stdout by blocks, so
        // print()s would show up kilobytes late and out of step with the log's lines: one line, one write.
        if (StandardStreams.CaptureTarget(settings) != null)
            PythonRuntime.RunOnMainThreadState(() =>
            {
                using var globals = Py.Dict();
                Py.Exec("""
                    import sys
                    for stream in (sys.stdout, sys.stderr):
                        try:
                            stream.reconfigure(line_buffering=True)
                        except Exception:
                            pass
                    """, globals.Borrow());
            });
    }

    /// <summary>Serving, right before the worker tells the supervisor so: a daemon's caller may stop reading.
    /// </summary>
    public static void BeforeReady()
    {
        if (_releaseOutputWhenReady) StandardStreams.Silence();
    }

    /// <summary>USR1: a rotated error log is captured anew, as the log itself is reopened.</summary>
    public static void ReopenCapturedOutput(ServerSettings settings, ILogger log)
    {
        if (StandardStreams.CaptureTarget(settings) is { } path && StandardStreams.Capture(path) is { } problem)
            log.LogError("--capture-output: {Problem}", problem);
    }
}
