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
    public string ServerSoftware { get; init; } = "sharpwsgi";
}
