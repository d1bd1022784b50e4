using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace SharpWsgi.Hosting.Tests.InMemory;

/// <summary>
/// The client end of an in-memory connection, speaking raw HTTP/1.1: the test writes request bytes and reads
/// responses, parsed just enough to frame them (status line, header fields, a body by Content-Length, chunked or to
/// the end). Every read gives up after <see cref="Patience"/>, so a server that never answers fails the test.
/// </summary>
public sealed class InMemoryClient
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly InMemoryConnection _connection;
    private readonly PipeReader _fromServer;
    private byte[] _held = [];
    private bool _ended;

    internal InMemoryClient(InMemoryConnection connection, PipeReader fromServer)
    {
        _connection = connection;
        _fromServer = fromServer;
    }

    /// <summary>Why the server aborted the connection (a refusal before HTTP); null when it did not.</summary>
    public string? AbortReason => _connection.AbortReason;

    /// <summary>Sends latin-1 text; false when the server no longer reads.</summary>
    public bool Send(string latin1) => Send(Encoding.Latin1.GetBytes(latin1));

    public bool Send(byte[] bytes) => _connection.Send(bytes);

    /// <summary>The client closes its sending side.</summary>
    public void EndSending() => _connection.EndInput();

    /// <summary>Sends one request and reads its response.</summary>
    public async Task<RawResponse> RequestAsync(string request)
    {
        Assert.True(Send(request), "the server no longer reads this connection");
        return await ReadResponseAsync(request.StartsWith("HEAD ", StringComparison.Ordinal)).ConfigureAwait(false);
    }

    /// <summary>The next response; <paramref name="toHead"/>: it answers a HEAD request (no body follows).</summary>
    public async Task<RawResponse> ReadResponseAsync(bool toHead = false)
    {
        var headEnd = await FindAsync("\r\n\r\n"u8.ToArray()).ConfigureAwait(false);
        if (headEnd < 0)
            throw new InvalidOperationException("the connection ended before a response head: " +
                (AbortReason ?? Encoding.Latin1.GetString(_held)));
        var head = Encoding.Latin1.GetString(Take(headEnd + 4)).Split("\r\n");
        // Bytes before the status line are a body the previous response should not have had.
        Assert.True(head[0].StartsWith("HTTP/1.1 ", StringComparison.Ordinal), "not a status line: " + head[0]);
        var statusLine = head[0].Split(' ', 3);
        var headers = head.Skip(1).Where(line => line.Length > 0)
            .Select(line => line.Split(':', 2)).Select(pair => (pair[0], pair[1].Trim())).ToList();
        var response = new RawResponse(int.Parse(statusLine[1]), statusLine.Length > 2 ? statusLine[2] : "",
            headers, []);
        if (toHead || response.Status is (>= 100 and < 200) or 204 or 304) return response;
        if (response.Header("Transfer-Encoding") is { } coding && coding.Contains("chunked"))
            return response with { Body = await ReadChunkedAsync().ConfigureAwait(false) };
        if (response.Header("Content-Length") is { } length)
            return response with { Body = await ReadExactlyAsync(int.Parse(length)).ConfigureAwait(false) };
        return response with { Body = await ReadToEndAsync().ConfigureAwait(false) };
    }

    /// <summary>Waits for the server to close the connection; returns what it sent first (nothing, usually).
    /// </summary>
    public async Task<byte[]> ReadToEndAsync()
    {
        while (await FillAsync().ConfigureAwait(false)) { }
        return Take(_held.Length);
    }

    /// <summary>The next <paramref name="count"/> bytes, whatever they are (an HTTP/2 frame, say).</summary>
    public async Task<byte[]> ReadExactlyAsync(int count)
    {
        while (_held.Length < count)
            if (!await FillAsync().ConfigureAwait(false))
                throw new InvalidOperationException($"the connection ended {count - _held.Length} body bytes early");
        return Take(count);
    }

    private async Task<byte[]> ReadChunkedAsync()
    {
        var body = new List<byte>();
        while (true)
        {
            var lineEnd = await FindAsync("\r\n"u8.ToArray()).ConfigureAwait(false);
            Assert.True(lineEnd >= 0, "the connection ended inside a chunked body");
            var size = Convert.ToInt32(Encoding.Latin1.GetString(Take(lineEnd + 2)).Split(';')[0].Trim(), 16);
            if (size == 0)
            {
                // No trailer fields expected: the last chunk's line is followed by the empty line.
                await ReadExactlyAsync(2).ConfigureAwait(false);
                return body.ToArray();
            }
            body.AddRange(await ReadExactlyAsync(size + 2).ConfigureAwait(false));
            body.RemoveRange(body.Count - 2, 2);
        }
    }

    /// <summary>Where <paramref name="marker"/> starts in what is held, reading more as needed; -1 at the end.
    /// </summary>
    private async Task<int> FindAsync(byte[] marker)
    {
        while (true)
        {
            var at = _held.AsSpan().IndexOf(marker);
            if (at >= 0) return at;
            if (!await FillAsync().ConfigureAwait(false)) return -1;
        }
    }

    /// <summary>Reads what the server sent next; false at the end of the connection.</summary>
    private async Task<bool> FillAsync()
    {
        if (_ended) return false;
        using var patience = new CancellationTokenSource(Patience);
        ReadResult result;
        try { result = await _fromServer.ReadAsync(patience.Token).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the server sent nothing for {Patience.TotalSeconds} s; held so far: " +
                Encoding.Latin1.GetString(_held));
        }
        _held = [.. _held, .. result.Buffer.ToArray()];
        _fromServer.AdvanceTo(result.Buffer.End);
        if (result.IsCompleted && result.Buffer.IsEmpty) _ended = true;
        return !_ended;
    }

    private byte[] Take(int count)
    {
        var taken = _held[..count];
        _held = _held[count..];
        return taken;
    }
}

/// <summary>One HTTP/1.1 response as the client read it.</summary>
public sealed record RawResponse(int Status, string Reason, List<(string Name, string Value)> Headers, byte[] Body)
{
    /// <summary>The values of a header field (case-insensitive), joined with ", "; null when absent.</summary>
    public string? Header(string name)
    {
        var values = Headers.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            .Select(h => h.Value).ToList();
        return values.Count == 0 ? null : string.Join(", ", values);
    }

    public string Text => Encoding.Latin1.GetString(Body);

    public override string ToString() =>
        $"{Status} {Reason}\n{string.Join("\n", Headers.Select(h => $"{h.Name}: {h.Value}"))}\n\n{Text}";
}

/// <summary>HTTP/1.1 request text for the tests to send.</summary>
public static class Http1
{
    /// <summary>A request with Host and the given fields ("Name: value"); a body gets its Content-Length unless the
    /// fields frame it.</summary>
    public static string Request(string method, string target, string? body = null, params string[] fields)
    {
        var head = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: test\r\n");
        foreach (var field in fields) head.Append(field).Append("\r\n");
        var framed = fields.Any(f => f.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase) ||
            f.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase));
        if (body != null && !framed) head.Append($"Content-Length: {Encoding.Latin1.GetByteCount(body)}\r\n");
        return head.Append("\r\n").Append(body).ToString();
    }

    public static string Get(string target, params string[] fields) => Request("GET", target, null, fields);
}
