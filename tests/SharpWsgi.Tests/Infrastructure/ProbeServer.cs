using System.Net;
using System.Text;
using System.Text.Json;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>
/// Class fixture: one sharpwsgi process serving tests/apps/probe.py with 4 Python threads, plus an HttpClient
/// bound to it, and helpers for the probe's per-request records (/closes).
/// </summary>
public class ProbeServer : IDisposable
{
    private readonly Lazy<ServerProcess> _server;
    private readonly Lazy<HttpClient> _client;

    public ProbeServer() : this("probe.py") { }

    protected ProbeServer(string appFile, params string[] extraArgs) : this(appFile, null, extraArgs) { }

    protected ProbeServer(string appFile, IDictionary<string, string?>? environment, params string[] extraArgs)
    {
        _server = new(() => ServerProcess.Start(
            new[] { "--threads", "4" }.Concat(extraArgs).Append(Path.Combine(ServerProcess.AppsDir, appFile)),
            environment));
        _client = new(() => NewClient(Server));
    }

    public ServerProcess Server => _server.Value;
    public int Port => Server.Port;
    public HttpClient Client => _client.Value;

    public static HttpClient NewClient(ServerProcess server) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(10),
    })
    {
        BaseAddress = server.BaseUri,
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>GET /closes?id=ID, waiting (inside the app) until EVENT was recorded COUNT times.</summary>
    public JsonElement Record(string id, string? waitFor = null, int count = 1, int timeoutSeconds = 15)
    {
        var target = $"/closes?id={Uri.EscapeDataString(id)}&timeout={timeoutSeconds}";
        if (waitFor != null) target += $"&wait={Uri.EscapeDataString(waitFor)}&count={count}";
        var r = Http.Get(Port, target);
        Assert.Equal(200, r.Status);
        return Http.Json(r);
    }

    /// <summary>The probe record after waiting for one close(); fails if the wait timed out.</summary>
    public JsonElement WaitClosed(string id, int timeoutSeconds = 15)
    {
        var rec = Record(id, "close", 1, timeoutSeconds);
        Assert.False(rec.GetProperty("timed_out").GetBoolean(),
            $"close() was not called on the response iterable of request {id} within {timeoutSeconds}s; record: {rec}");
        return rec;
    }

    public static string NewId() => Guid.NewGuid().ToString("N");

    public virtual void Dispose()
    {
        if (_client.IsValueCreated) _client.Value.Dispose();
        if (_server.IsValueCreated) _server.Value.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The probe wrapped in wsgiref.validate.validator (tests/apps/validated_probe.py).</summary>
public sealed class ValidatedProbeServer : ProbeServer
{
    public ValidatedProbeServer() : base("validated_probe.py") { }
}

/// <summary>A fixture whose server may not be startable here (an absent interpreter): its tests are then reported
/// as skipped, with this reason.</summary>
public interface ISkippableFixture
{
    string? SkipReason { get; }
}

/// <summary>
/// The validated probe under --interpreters 2 with pyenv's CPython 3.MINOR: each interpreter has its own module
/// state, so the complaints and closed tags go through a shared directory (VALIDATED_PROBE_SHARED).
/// </summary>
public abstract class ValidatedProbeInterpretersServer : ProbeServer, ISkippableFixture
{
    private readonly string _shared;

    protected ValidatedProbeInterpretersServer(int minor, string shared, string? python)
        : base("validated_probe.py", new Dictionary<string, string?> { ["VALIDATED_PROBE_SHARED"] = shared },
            "--python", python ?? "absent", "--interpreters", "2")
    {
        _shared = shared;
    }

    protected static string NewSharedDirectory() =>
        Directory.CreateTempSubdirectory("sharpwsgi-validator-").FullName;

    public string? SkipReason { get; protected init; }

    public override void Dispose()
    {
        base.Dispose();
        try { Directory.Delete(_shared, recursive: true); } catch (IOException) { }
    }
}

public sealed class ValidatedProbeInterpreters312Server : ValidatedProbeInterpretersServer
{
    public ValidatedProbeInterpreters312Server() : this(Interpreters.FindPyenv(12, out var reason), reason) { }
    private ValidatedProbeInterpreters312Server(string? python, string reason)
        : base(12, NewSharedDirectory(), python) => SkipReason = python == null ? reason : null;
}

public sealed class ValidatedProbeInterpreters313Server : ValidatedProbeInterpretersServer
{
    public ValidatedProbeInterpreters313Server() : this(Interpreters.FindPyenv(13, out var reason), reason) { }
    private ValidatedProbeInterpreters313Server(string? python, string reason)
        : base(13, NewSharedDirectory(), python) => SkipReason = python == null ? reason : null;
}

/// <summary>The probe mounted under --root-path /mount.</summary>
public sealed class MountedProbeServer : ProbeServer
{
    public MountedProbeServer() : base("probe.py", "--root-path", "/mount") { }
}

/// <summary>Expected bytes of the probe's file_wrapper data file (probe.FILE_DATA).</summary>
public static class ProbeData
{
    public const int FileSize = 300000;

    public static byte[] File { get; } = Enumerable.Range(0, FileSize).Select(i => (byte)((i * 7 + 3) % 256)).ToArray();

    public static string Latin1(byte[] b) => Encoding.Latin1.GetString(b);

    public static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();
}
