using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>Python interpreters on this machine: pyenv's (under $PYENV_ROOT or ~/.pyenv) and Debian's
/// /usr/bin/python3.</summary>
public static class Interpreters
{
    public const string SystemPython = "/usr/bin/python3";

    public static string PyenvRoot
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("PYENV_ROOT");
            if (!string.IsNullOrEmpty(fromEnv)) return fromEnv;
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".pyenv");
        }
    }

    /// <summary>The newest pyenv CPython 3.minor (versions/3.minor.patch/bin/python3.minor), or null with the
    /// reason.</summary>
    public static string? FindPyenv(int minor, out string reason)
    {
        var versions = Path.Combine(PyenvRoot, "versions");
        if (!Directory.Exists(versions))
        {
            reason = $"no pyenv versions directory at {versions}";
            return null;
        }
        var pattern = new Regex($@"^3\.{minor}\.(\d+)$");
        var best = Directory.GetDirectories(versions)
            .Select(d => (Dir: d, M: pattern.Match(Path.GetFileName(d))))
            .Where(x => x.M.Success)
            .OrderByDescending(x => int.Parse(x.M.Groups[1].Value))
            .Select(x => Path.Combine(x.Dir, "bin", $"python3.{minor}"))
            .FirstOrDefault(File.Exists);
        reason = best == null ? $"no CPython 3.{minor}.x under {versions}" : "";
        return best;
    }

    /// <summary>"3.11.7" for the interpreter at path (asks it).</summary>
    public static string Version(string python)
        => Proc.Run(python, new[] { "-c", "import sys; print(sys.version.split()[0])" }).Stdout.Trim();

    /// <summary>sys.executable of the interpreter (what the server should name on its startup line).</summary>
    public static string Executable(string python)
        => Proc.Run(python, new[] { "-c", "import sys; print(sys.executable)" }).Stdout.Trim();

    public static bool CanImport(string python, string module)
        => Proc.Run(python, new[] { "-c", $"import {module}" }).ExitCode == 0;
}

/// <summary>Runs a helper command to completion (with a timeout) and captures its output.</summary>
public static class Proc
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(string exe, IEnumerable<string> args, TimeSpan? timeout = null,
        string? workingDirectory = null, IDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? ServerProcess.RepoRoot,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (environment != null)
            foreach (var (k, v) in environment)
                if (v == null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(120)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} {string.Join(' ', args)} did not finish");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>Small request helpers over RawHttp (every read has the socket timeout RawHttp sets).</summary>
public static class Http
{
    public static RawResponse Get(int port, string target, string? extraHeaders = null)
        => RawHttp.Exchange(port,
            $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extraHeaders}Connection: close\r\n\r\n");

    public static RawResponse Post(int port, string target, byte[] body,
        string contentType = "application/octet-stream")
    {
        using var c = new RawHttp(port);
        c.Send($"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {contentType}\r\n" +
            $"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        c.Send(body);
        return c.ReadResponse();
    }

    public static RawResponse PostChunked(int port, string target, byte[] body, int chunkSize = 4096)
    {
        using var c = new RawHttp(port);
        var ms = new MemoryStream();
        ms.Write(Encoding.Latin1.GetBytes($"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" +
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"));
        for (int i = 0; i < body.Length; i += chunkSize)
        {
            var n = Math.Min(chunkSize, body.Length - i);
            ms.Write(Encoding.Latin1.GetBytes($"{n:x}\r\n"));
            ms.Write(body, i, n);
            ms.Write("\r\n"u8);
        }
        ms.Write("0\r\n\r\n"u8);
        c.Send(ms.ToArray());
        return c.ReadResponse();
    }

    public static JsonElement Json(RawResponse r) => JsonDocument.Parse(r.Body).RootElement.Clone();

    /// <summary>The echo_environ app's environ dictionary from a response.</summary>
    public static JsonElement Environ(RawResponse r) => Json(r).GetProperty("environ");

    public static string? Str(this JsonElement obj, string name)
        => obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>Checks on what a failed start printed.</summary>
public static class StartupOutput
{
    private static readonly Regex DotNetFrame = new(@"^\s+at [\w.`<>\[\]]+[.(]", RegexOptions.Multiline);

    /// <summary>Asserts the output carries no .NET stack trace ("   at SharpWsgi.Foo.Bar(...)",
    /// "Unhandled exception.").</summary>
    public static void AssertNoDotNetStackTrace(string output)
    {
        Assert.False(DotNetFrame.IsMatch(output), "output contains a .NET stack frame:\n" + output);
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.DoesNotContain("--- End of stack trace", output);
    }
}

/// <summary>
/// A lean keep-alive HTTP/1.1 client for load loops (leak tests): sends one request, reads exactly one
/// Content-Length or chunked response, reusing one buffer. Every read has the socket's receive timeout.
/// </summary>
public sealed class KeepAliveClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buf = new byte[256 * 1024];
    private int _start, _end;

    public KeepAliveClient(int port, TimeSpan timeout)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect("127.0.0.1", port);
        _socket.ReceiveTimeout = _socket.SendTimeout = (int)timeout.TotalMilliseconds;
    }

    public void Send(byte[] request)
    {
        int sent = 0;
        while (sent < request.Length) sent += _socket.Send(request, sent, request.Length - sent, SocketFlags.None);
    }

    /// <summary>Reads one response; returns the status and the body (copied).</summary>
    public (int Status, byte[] Body) ReadResponse()
    {
        int headerEnd;
        while ((headerEnd = Find("\r\n\r\n"u8, _start)) < 0) FillOrThrow();
        var head = Encoding.Latin1.GetString(_buf, _start, headerEnd - _start);
        _start = headerEnd + 4;
        var lines = head.Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1]);
        long contentLength = -1;
        bool chunked = false;
        foreach (var line in lines.Skip(1))
        {
            var i = line.IndexOf(':');
            var name = line[..i].Trim();
            var value = line[(i + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) contentLength = long.Parse(value);
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) &&
                value.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                chunked = true;
        }
        if (chunked)
        {
            var body = new MemoryStream();
            while (true)
            {
                int lineEnd;
                while ((lineEnd = Find("\r\n"u8, _start)) < 0) FillOrThrow();
                var sizeText = Encoding.Latin1.GetString(_buf, _start, lineEnd - _start).Split(';')[0].Trim();
                var size = Convert.ToInt32(sizeText, 16);
                _start = lineEnd + 2;
                if (size == 0)
                {
                    while (true) // trailers up to the empty line
                    {
                        while ((lineEnd = Find("\r\n"u8, _start)) < 0) FillOrThrow();
                        var empty = lineEnd == _start;
                        _start = lineEnd + 2;
                        if (empty) break;
                    }
                    return (status, body.ToArray());
                }
                while (_end - _start < size + 2) FillOrThrow();
                body.Write(_buf, _start, size);
                _start += size + 2;
            }
        }
        if (contentLength < 0) throw new InvalidDataException(
            "response without Content-Length or chunked framing on a keep-alive connection: " + head);
        while (_end - _start < contentLength) FillOrThrow();
        var result = _buf.AsSpan(_start, (int)contentLength).ToArray();
        _start += (int)contentLength;
        return (status, result);
    }

    private int Find(ReadOnlySpan<byte> needle, int from)
    {
        var i = _buf.AsSpan(from, _end - from).IndexOf(needle);
        return i < 0 ? -1 : from + i;
    }

    private void FillOrThrow()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buf.Length) throw new InvalidDataException("response larger than the client buffer");
        var n = _socket.Receive(_buf, _end, _buf.Length - _end, SocketFlags.None);
        if (n == 0) throw new EndOfStreamException("server closed the keep-alive connection");
        _end += n;
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>Memory of a process and all its descendants (a supervisor and its workers), read from /proc.</summary>
public static class ProcessTree
{
    /// <summary>The pid itself and every descendant's pid.</summary>
    public static List<int> WithDescendants(int pid)
    {
        var parents = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var child)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ppid = int.Parse(fields[1]);
            if (!parents.TryGetValue(ppid, out var list)) parents[ppid] = list = new List<int>();
            list.Add(child);
        }
        var result = new List<int> { pid };
        for (int i = 0; i < result.Count; i++)
            if (parents.TryGetValue(result[i], out var children)) result.AddRange(children);
        return result;
    }

    /// <summary>Resident set size in bytes of one process (0 if it is gone).</summary>
    public static long ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:"))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        return 0;
    }

    /// <summary>Summed RSS of the process and its descendants, with the per-process figures for messages.</summary>
    public static (long Total, string Detail) TreeResidentBytes(int pid)
    {
        var parts = WithDescendants(pid).Select(p => (Pid: p, Rss: ResidentBytes(p))).ToList();
        return (parts.Sum(p => p.Rss),
            string.Join(", ", parts.Select(p => $"{p.Pid}: {p.Rss / (1024.0 * 1024.0):F1} MB")));
    }
}
