using SharpWsgi.Hosting;

namespace SharpWsgi.Worker;

/// <summary>
/// What the supervisor hands a worker in its environment besides the settings (see <see cref="WorkerProtocol"/>):
/// the listeners it bound, the addresses to bind with SO_REUSEPORT, whether there are other workers, this worker's
/// --max-requests count (jitter included), whether it only checks the app, and the key of the stall handover.
/// Each variable is taken out of the environment as it is read.
/// </summary>
internal sealed record HandedDown(IReadOnlyList<InheritedListener> Listeners, IReadOnlyList<string> ReusePortAddresses,
    bool Multiprocess, long MaxRequests, bool Check, string? HandoverKey)
{
    public static HandedDown Take()
    {
        var fds = WorkerProtocol.TakeList(WorkerProtocol.FdsVariable).Select(int.Parse).ToList();
        var tlsFds = WorkerProtocol.TakeList(WorkerProtocol.TlsFdsVariable).Select(int.Parse).ToHashSet();
        var reusePort = WorkerProtocol.TakeList(WorkerProtocol.ReusePortVariable).ToList();
        var multiprocess = WorkerProtocol.Take(WorkerProtocol.MultiprocessVariable) == "1";
        long.TryParse(WorkerProtocol.Take(WorkerProtocol.MaxRequestsVariable), out var maxRequests);
        var check = WorkerProtocol.Take(WorkerProtocol.CheckVariable) == "1";
        var handoverKey = WorkerProtocol.Take(WorkerProtocol.HandoverKeyVariable);
        return new HandedDown(fds.Select(fd => new InheritedListener(fd, tlsFds.Contains(fd))).ToList(), reusePort,
            multiprocess, maxRequests, check, handoverKey);
    }
}
