using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>What one load-loop response said about who served it.</summary>
public sealed record PidStats(int Pid, string Version, int Count, long FirstSeenMs, long LastSeenMs);

/// <summary>
/// A bounded HTTP/1.1 load loop for the worker tests: a few dedicated threads, each with one keep-alive
/// connection to 127.0.0.1, sending GET requests back to back (optionally paced to a rate) until stopped,
/// until a total request count, or until a deadline, whichever comes first.
/// A request counts as failed when connecting, sending or reading fails (reset, EOF, timeout) or the status
/// is not 200; the connection is then reopened. A response carrying "Connection: close" is honoured like a
/// real client does: the connection is closed and the next request opens a new one (that is not a failure).
/// With freshConnections every request asks for "Connection: close", so each one connects anew (nginx's default
/// proxy_pass).
/// Response bodies are the worker app's JSON; its "pid" and "version" are recorded per pid.
/// </summary>
public sealed class LoadLoop : IDisposable
{
    private static readonly Regex PidField = new("\"pid\": (\\d+)", RegexOptions.Compiled);
    private static readonly Regex VersionField = new("\"version\": \"([^\"]*)\"", RegexOptions.Compiled);

    private readonly int _port;
    private readonly string _target;
    private readonly int _maxRequests;
    private readonly TimeSpan _maxDuration;
    private readonly double _perConnectionRate;
    private readonly TimeSpan _ioTimeout;
    private readonly bool _freshConnections;
    private readonly List<Thread> _threads = new();
    private readonly Stopwatch _clock = new();
    private readonly ConcurrentDictionary<int, PidStats> _pids = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private volatile bool _stop;
    private int _started, _succeeded, _failed, _connections;

    /// <param name="connections">concurrent keep-alive connections (one thread each)</param>
    /// <param name="maxRequests">total requests (all connections) after which the loop stops by itself</param>
    /// <param name="maxDuration">the loop stops by itself after this long</param>
    /// <param name="perConnectionRate">requests per second per connection; 0 for back to back</param>
    /// <param name="freshConnections">a new connection for every request instead of keep-alive</param>
    public LoadLoop(int port, int connections, int maxRequests, TimeSpan maxDuration, string target = "/",
        double perConnectionRate = 0, TimeSpan? ioTimeout = null, bool freshConnections = false)
    {
        _freshConnections = freshConnections;
        _port = port;
        _target = target;
        _maxRequests = maxRequests;
        _maxDuration = maxDuration;
        _perConnectionRate = perConnectionRate;
        _ioTimeout = ioTimeout ?? TimeSpan.FromSeconds(10);
        _clock.Start();
        for (int i = 0; i < connections; i++)
        {
            var id = i;
            var t = new Thread(() => Run(id)) { IsBackground = true, Name = $"load-{i}" };
            _threads.Add(t);
            t.Start();
        }
    }

    public int Succeeded => Volatile.Read(ref _succeeded);
    public int Failed => Volatile.Read(ref _failed);
    public int Completed => Succeeded + Failed;
    /// <summary>Connections opened (the first of each thread, and every reconnect).</summary>
    public int ConnectionsOpened => Volatile.Read(ref _connections);
    public bool Finished => _threads.All(t => !t.IsAlive);
    public long ElapsedMs => _clock.ElapsedMilliseconds;
    public IReadOnlyCollection<string> Errors => _errors.ToArray();
    public IReadOnlyDictionary<int, PidStats> Pids => new Dictionary<int, PidStats>(_pids);

    /// <summary>Successful responses served by the pid after the given loop time (ms since the loop started).</summary>
    public bool ServedSince(int pid, long sinceMs) => _pids.TryGetValue(pid, out var s) && s.LastSeenMs >= sinceMs;

    /// <summary>Polls (bounded by the timeout and by the loop itself ending) until the condition holds.</summary>
    public bool WaitUntil(Func<LoadLoop, bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (condition(this)) return true;
            if (Finished) return condition(this);
            Thread.Sleep(20); // polling interval of a bounded wait on an observed condition, not a synchronisation
        }
        return condition(this);
    }

    /// <summary>Stops the loop and waits for every connection thread to finish its current request.</summary>
    public void Stop()
    {
        _stop = true;
        foreach (var t in _threads) t.Join(_ioTimeout + TimeSpan.FromSeconds(5));
    }

    public string Summary()
    {
        var sb = new StringBuilder();
        sb.Append($"{Succeeded} ok, {Failed} failed, {ConnectionsOpened} connections opened in {ElapsedMs} ms; " +
            $"by pid: ");
        sb.Append(string.Join(", ", _pids.Values.OrderBy(p => p.FirstSeenMs)
            .Select(p => $"{p.Pid} (version {p.Version}): {p.Count} [{p.FirstSeenMs}..{p.LastSeenMs} ms]")));
        var errors = _errors.ToArray();
        if (errors.Length > 0) sb.Append("\nerrors:\n  ").Append(string.Join("\n  ", errors.Take(20)));
        return sb.ToString();
    }

    private bool ShouldStop() => _stop || _clock.Elapsed >= _maxDuration || Volatile.Read(ref _started) >= _maxRequests;

    private void Run(int id)
    {
        var request = Encoding.ASCII.GetBytes(
            $"GET {_target} HTTP/1.1\r\nHost: 127.0.0.1:{_port}\r\nUser-Agent: loadloop-{id}\r\n" +
            (_freshConnections ? "Connection: close\r\n" : "") + "\r\n");
        LoadConnection? connection = null;
        var paced = _perConnectionRate > 0 ? Stopwatch.StartNew() : null;
        long sent = 0;
        try
        {
            while (!ShouldStop())
            {
                if (paced != null)
                {
                    // Pacing of the load generator (a steady rate), not a synchronisation.
                    var due = TimeSpan.FromSeconds(sent / _perConnectionRate) - paced.Elapsed;
                    if (due > TimeSpan.Zero) Thread.Sleep(due);
                }
                if (Interlocked.Increment(ref _started) > _maxRequests) break;
                sent++;
                var phase = "connecting";
                var reused = connection != null;
                try
                {
                    if (connection == null)
                    {
                        connection = new LoadConnection(_port, _ioTimeout);
                        Interlocked.Increment(ref _connections);
                    }
                    phase = "sending";
                    connection.Send(request);
                    phase = "reading";
                    var (status, close, body) = connection.ReadResponse();
                    var text = Encoding.ASCII.GetString(body);
                    if (status != 200)
                    {
                        Fail(id, $"status {status}: {text.Trim()}");
                    }
                    else
                    {
                        Interlocked.Increment(ref _succeeded);
                        var pidMatch = PidField.Match(text);
                        if (pidMatch.Success)
                        {
                            var pid = int.Parse(pidMatch.Groups[1].Value);
                            var version = VersionField.Match(text) is { Success: true } v ? v.Groups[1].Value : "";
                            var now = _clock.ElapsedMilliseconds;
                            _pids.AddOrUpdate(pid, _ => new PidStats(pid, version, 1, now, now),
                                (_, s) => s with { Count = s.Count + 1, LastSeenMs = now, Version = version });
                        }
                    }
                    if (close || status != 200)
                    {
                        connection.Dispose();
                        connection = null;
                    }
                }
                catch (Exception e) // a failed exchange of any kind is counted, never thrown on the load thread
                {
                    Fail(id, $"{phase} ({(reused ? "reused" : "new")} connection): {e.GetType().Name}: {e.Message}");
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }

    private void Fail(int id, string what)
    {
        Interlocked.Increment(ref _failed);
        _errors.Enqueue($"[{_clock.ElapsedMilliseconds} ms] connection {id}: {what}");
    }

    public void Dispose() => Stop();

    /// <summary>One keep-alive connection: Content-Length responses only (the worker app always sends one).</summary>
    private sealed class LoadConnection : IDisposable
    {
        private readonly Socket _socket;
        private readonly byte[] _buf = new byte[64 * 1024];
        private int _start, _end;

        public LoadConnection(int port, TimeSpan timeout)
        {
            _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            _socket.ReceiveTimeout = _socket.SendTimeout = (int)timeout.TotalMilliseconds;
            _socket.Connect("127.0.0.1", port);
        }

        public void Send(byte[] request)
        {
            int sent = 0;
            while (sent < request.Length) sent += _socket.Send(request, sent, request.Length - sent, SocketFlags.None);
        }

        public (int Status, bool Close, byte[] Body) ReadResponse()
        {
            int headerEnd;
            while ((headerEnd = Find("\r\n\r\n"u8)) < 0) Fill();
            var head = Encoding.Latin1.GetString(_buf, _start, headerEnd - _start);
            _start = headerEnd + 4;
            var lines = head.Split("\r\n");
            var status = int.Parse(lines[0].Split(' ')[1]);
            int length = -1;
            var close = false;
            foreach (var line in lines.Skip(1))
            {
                var i = line.IndexOf(':');
                var name = line[..i].Trim();
                var value = line[(i + 1)..].Trim();
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) length = int.Parse(value);
                else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase) &&
                    value.Contains("close", StringComparison.OrdinalIgnoreCase))
                    close = true;
            }
            if (length < 0) throw new InvalidDataException("response without Content-Length: " + head);
            while (_end - _start < length) Fill();
            var body = _buf.AsSpan(_start, length).ToArray();
            _start += length;
            return (status, close, body);
        }

        private int Find(ReadOnlySpan<byte> needle)
        {
            var i = _buf.AsSpan(_start, _end - _start).IndexOf(needle);
            return i < 0 ? -1 : _start + i;
        }

        private void Fill()
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buf.Length) throw new InvalidDataException("response larger than the load client's buffer");
            var n = _socket.Receive(_buf, _end, _buf.Length - _end, SocketFlags.None);
            if (n == 0) throw new EndOfStreamException("the server closed the connection" +
                (_end > 0 ? " mid-response" : " before answering"));
            _end += n;
        }

        public void Dispose() => _socket.Dispose();
    }
}
