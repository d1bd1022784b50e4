namespace SharpWsgi.Gateway;

/// <summary>What the gateway needs from the configuration.</summary>
public sealed record WsgiOptions
{
    /// <summary>Python threads that run requests in this process.</summary>
    public int Threads { get; init; } = 4;
    /// <summary>Requests that may wait for a Python thread; past it the host answers 503.</summary>
    public int QueueSize { get; init; } = 1024;
    /// <summary>SCRIPT_NAME: the URL prefix the app is mounted at ("" for the root).</summary>
    public string RootPath { get; init; } = "";
    public bool Multiprocess { get; init; }
    /// <summary>When set, asked on each request: wsgi.multiprocess follows it (the worker count can change).</summary>
    public Func<bool>? MultiprocessProbe { get; init; }
    public string ServerSoftware { get; init; } = "sharpwsgi";
    /// <summary>Seconds a request may run before the client gets 504 and the thread an exception (0: never).</summary>
    public double RequestTimeout { get; init; }
    /// <summary>Seconds a timed-out thread has to come back before the process asks to be recycled.</summary>
    public double RequestTimeoutGrace { get; init; } = 5;
    /// <summary>Seconds a request may wait for a Python thread before it is refused with 503 (0: no limit).</summary>
    public double QueueTimeout { get; init; }
    /// <summary>Seconds with every thread busy, requests waiting and none finished before the process is
    /// stuck.</summary>
    public double NoProgressTimeout { get; init; }
    /// <summary>How often the monitor thread proves (by taking the GIL) that Python is responsive.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>sys.setswitchinterval: how long a thread waiting for the GIL waits before it forces a switch.</summary>
    public double SwitchInterval { get; init; } = 0.005;
    /// <summary>Where spool files go.</summary>
    public string TempDirectory { get; init; } = Path.GetTempPath();
    /// <summary>Response bytes of one response that may be spooled; past it the Python thread waits.</summary>
    public long ResponseSpoolSize { get; init; } = 1L << 30;
    /// <summary>Spooled response bytes of the whole process.</summary>
    public long ResponseSpoolTotal { get; init; } = 4L << 30;
    /// <summary>Seconds a Python thread waits for a client that takes nothing before it is dropped.</summary>
    public double SendTimeout { get; init; } = 30;
    /// <summary>Made once in each interpreter (its GIL held, after the app's import): the code run around every
    /// request there, or null for none (the default, which costs a request nothing).</summary>
    public Func<IRequestHooks?>? RequestHooks { get; init; }
}
