using System.Diagnostics;
using System.IO.Pipes;

namespace SharpWsgi.Supervisor;

/// <summary>The supervisor's view of one worker process.</summary>
internal sealed class WorkerHandle
{
    public required Process Process { get; init; }
    public required AnonymousPipeServerStream Control { get; init; }
    public int Pid => Process.Id;
    /// <summary>Its counter in the shared accept-balance table.</summary>
    public required int BalanceSlot { get; init; }
    public DateTime Started { get; } = DateTime.UtcNow;
    private long _lastBeat = DateTime.UtcNow.Ticks;
    /// <summary>Set by the worker's control-pipe reader thread, read by the supervisor's loop.</summary>
    public DateTime LastBeat
    {
        get => new(Volatile.Read(ref _lastBeat), DateTimeKind.Utc);
        set => Volatile.Write(ref _lastBeat, value.Ticks);
    }
    public bool Ready { get; set; }
    /// <summary>Sent TERM: finishing its in-flight requests; no longer counts toward the worker target.</summary>
    public bool Retiring { get; set; }
    public DateTime RetireDeadline { get; set; }
    /// <summary>Timed out and sent SIGABRT; SIGKILL follows at KillAt.</summary>
    public bool Killed { get; set; }
    public DateTime KillAt { get; set; }
    /// <summary>The worker this one will replace once it is ready (recycling, reload).</summary>
    public WorkerHandle? Replaces { get; set; }
    /// <summary>The worker that will replace this one once it is ready.</summary>
    public WorkerHandle? ReplacedBy { get; set; }
    /// <summary>Why it was asked to stop (max-requests, reload, ...), for the exit counter; null: not asked.</summary>
    public string? StopReason { get; set; }

    /// <summary>Counts toward the target number of workers.</summary>
    public bool IsLive => !Retiring && !Killed && ReplacedBy == null;
}
