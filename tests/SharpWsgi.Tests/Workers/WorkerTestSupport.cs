using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Workers;

/// <summary>
/// The worker tests start and signal real supervisors, kill workers and measure recovery times, so they run
/// one at a time and not alongside other test classes (a busy 2-core machine would blur the timings).
/// </summary>
[CollectionDefinition("Workers", DisableParallelization = true)]
public sealed class WorkersCollection { }

/// <summary>Base of the worker test classes: servers started through <see cref="Start"/> have their whole output
/// written to the test output when the test ends, passed or failed.</summary>
public abstract class WorkerTestBase : IDisposable
{
    private readonly List<ServerProcess> _servers = new();
    protected readonly Xunit.Abstractions.ITestOutputHelper Out;

    protected WorkerTestBase(Xunit.Abstractions.ITestOutputHelper output) => Out = output;

    protected ServerProcess Start(IEnumerable<string> args, IDictionary<string, string?>? environment = null,
        bool waitForListening = true)
    {
        try
        {
            var server = ServerProcess.Start(args, environment, waitForListening: waitForListening);
            _servers.Add(server);
            return server;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            Out.WriteLine($"$ sharpwsgi {string.Join(' ', args)}: {e.Message}");
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var s in _servers)
        {
            try { Out.WriteLine($"--- output of the server (supervisor pid {s.Pid}):\n{s.Output}"); }
            catch (InvalidOperationException) { Out.WriteLine($"--- output of the server:\n{s.Output}"); }
        }
    }
}

/// <summary>Helpers shared by the worker tests: the apps, the supervisor's log lines, and the app's answers.</summary>
public static class WorkerTestSupport
{
    public static string AppsDir => Path.Combine(ServerProcess.AppsDir, "workers");
    public static string PidApp => Path.Combine(AppsDir, "pid_app.py");
    public static string BrokenApp => Path.Combine(AppsDir, "broken_app.py");

    public static readonly TimeSpan LogTimeout = TimeSpan.FromSeconds(20);

    private static readonly Regex ReadyLine = new(@"Ready: (\d+) worker\(s\) serving, pids ([\d,]+)");

    /// <summary>The worker pids the supervisor named in its "Ready: N worker(s) serving, pids a,b" line.</summary>
    public static List<int> ReadyPids(ServerProcess server)
    {
        var line = server.WaitForOutput(ReadyLine, LogTimeout);
        var m = ReadyLine.Match(line);
        var pids = m.Groups[2].Value.Split(',').Select(int.Parse).ToList();
        Assert.Equal(int.Parse(m.Groups[1].Value), pids.Count);
        return pids;
    }

    /// <summary>A regex for "Worker ready (pid: X)" with X not among the given pids; group 1 is X.</summary>
    public static Regex ReadyExcept(IEnumerable<int> known)
    {
        var list = known.ToList();
        var exclude = list.Count == 0 ? "" : $"(?!(?:{string.Join("|", list)})\\))";
        return new Regex($@"Worker ready \(pid: {exclude}(\d+)\)");
    }

    /// <summary>Waits for a worker not among the known pids to report ready; returns its pid.</summary>
    public static int WaitForNewReadyWorker(ServerProcess server, IEnumerable<int> known, TimeSpan? timeout = null)
    {
        var pattern = ReadyExcept(known);
        var line = server.WaitForOutput(pattern, timeout ?? LogTimeout);
        return int.Parse(pattern.Match(line).Groups[1].Value);
    }

    /// <summary>GET / on a fresh connection (Connection: close): the app's JSON (pid, version, import_id,
    /// multiprocess).</summary>
    public static JsonElement Info(ServerProcess server)
    {
        var r = Http.Get(server.Port, "/");
        Assert.True(r.Status == 200, $"GET /: {r.StatusLine} {r.BodyText}\nserver output:\n{server.Output}");
        return Http.Json(r);
    }

    public static int PidOf(JsonElement info) => info.GetProperty("pid").GetInt32();

    /// <summary>Fresh-connection GETs until one is served by the pid (bounded); returns how many it took.</summary>
    public static int PollUntilServedBy(ServerProcess server, int pid, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var seen = new HashSet<int>();
        for (int n = 1; clock.Elapsed < timeout; n++)
        {
            var got = PidOf(Info(server));
            if (got == pid) return n;
            seen.Add(got);
        }
        throw new TimeoutException(
            $"no response from pid {pid} within {timeout}; served by {string.Join(",", seen)}\n{server.Output}");
    }

    /// <summary>The supervisor's live child processes (its workers).</summary>
    public static List<int> WorkerProcesses(ServerProcess server)
        => ProcessTree.WithDescendants(server.Pid).Where(p => p != server.Pid && Signals.IsAlive(p)).ToList();

    /// <summary>Polls (bounded) until the supervisor has exactly this many live worker processes.</summary>
    public static List<int> WaitForWorkerCount(ServerProcess server, int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        List<int> now;
        while ((now = WorkerProcesses(server)).Count != count && clock.Elapsed < timeout)
            Thread.Sleep(20); // polling interval of a bounded wait on the process table
        Assert.True(now.Count == count,
            $"expected {count} worker processes, found {now.Count} ({string.Join(",", now)})\n{server.Output}");
        return now;
    }

    /// <summary>Polls (bounded) until the process is gone.</summary>
    public static bool WaitForProcessGone(int pid, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (Signals.IsAlive(pid) && clock.Elapsed < timeout) Thread.Sleep(20); // bounded poll on /proc
        return !Signals.IsAlive(pid);
    }

    public static string TempDir(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharpwsgi-{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static int CountMatches(string output, string regex)
        => Regex.Matches(output, regex, RegexOptions.Multiline).Count;
}

/// <summary>One GET on its own connection, sent from a background thread; the answer, or why it failed.
/// With keepAlive the request does not ask for Connection: close, and the time from the response to the server's
/// closing of the connection is measured (null if it did not close within the I/O timeout).</summary>
public sealed class BackgroundRequest
{
    private readonly Task<(RawResponse? Response, string? Error, TimeSpan Took, TimeSpan? ClosedAfter)> _task;

    public BackgroundRequest(ServerProcess server, string target, TimeSpan? ioTimeout = null, bool keepAlive = false)
    {
        _task = Task.Factory.StartNew(() =>
        {
            var clock = Stopwatch.StartNew();
            RawResponse? response = null;
            try
            {
                using var c = new RawHttp(server.Port, ioTimeout ?? TimeSpan.FromSeconds(30));
                c.Send($"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{(keepAlive ? "" : "Connection: close\r\n")}\r\n");
                response = c.ReadResponse();
                var took = clock.Elapsed;
                TimeSpan? closedAfter = null;
                if (keepAlive)
                {
                    try { if (c.IsClosedByServer()) closedAfter = clock.Elapsed - took; }
                    catch (IOException) { } // the read timed out: still open
                }
                return (response, (string?)null, took, closedAfter);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                return (response, $"{e.GetType().Name}: {e.Message}", clock.Elapsed, (TimeSpan?)null);
            }
        }, TaskCreationOptions.LongRunning);
    }

    /// <summary>Waits (bounded) for the exchange to end; false if it has not.</summary>
    public bool Wait(TimeSpan timeout) => _task.Wait(timeout);

    /// <summary>The response (null when the exchange failed); waits up to 30 s for it.</summary>
    public RawResponse? Response => Result.Response;
    public string? Error => Result.Error;
    public TimeSpan Took => Result.Took;
    public TimeSpan? ClosedAfter => Result.ClosedAfter;

    private (RawResponse? Response, string? Error, TimeSpan Took, TimeSpan? ClosedAfter) Result
    {
        get
        {
            if (!_task.Wait(TimeSpan.FromSeconds(40)))
                throw new TimeoutException("the background request is still waiting");
            return _task.Result;
        }
    }

    /// <summary>"HTTP/1.1 200 OK" or "failed: why".</summary>
    public string Describe() => Response?.StatusLine ?? "failed: " + Error;
}
