using System.Runtime.InteropServices;
using SharpWsgi.Python;

namespace SharpWsgi.Worker;

/// <summary>
/// The signals a serving worker obeys: TERM stops it gracefully, QUIT and INT at once (a fast stop wins over a
/// graceful one), HUP is ignored (the supervisor reloads) and USR1 reopens the logs. Registered after Python's own
/// handlers, so these are what runs.
/// </summary>
internal sealed class WorkerSignals : IDisposable
{
    private readonly ManualResetEventSlim _stop = new();
    private readonly List<PosixSignalRegistration> _registrations = new();
    private bool _graceful = true;

    public WorkerSignals(Action reopenLogs)
    {
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, gracefully: true)));
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => Stop(c, gracefully: false)));
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, gracefully: false)));
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true));
        _registrations.Add(PosixSignalRegistration.Create((PosixSignal)Libc.SIGUSR1, c =>
        {
            c.Cancel = true;
            reopenLogs();
        }));
    }

    /// <summary>Blocks until a stop signal arrives; true when the stop is graceful.</summary>
    public bool WaitForStop()
    {
        _stop.Wait();
        return _graceful;
    }

    private void Stop(PosixSignalContext context, bool gracefully)
    {
        context.Cancel = true;
        if (!gracefully) _graceful = false;
        _stop.Set();
    }

    /// <summary>Unregisters in the reverse order, then the event.</summary>
    public void Dispose()
    {
        for (int i = _registrations.Count - 1; i >= 0; i--) _registrations[i].Dispose();
        _stop.Dispose();
    }
}
