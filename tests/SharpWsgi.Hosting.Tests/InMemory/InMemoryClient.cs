using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Text;

namespace SharpWsgi.Hosting.Tests.InMemory;

/// <summary>
/// The client end of an in-memory connection, speaking raw HTTP/1.1 (over TLS after <see cref="StartTlsAsync"/>):
/// the test writes request bytes and reads responses, parsed just enough to frame them (status line, header fields,
/// a body by Content-Length, chunked or to the end). Every read gives up after <see cref="Patience"/>, so a server
/// that never answers fails the test.
/// </summary>
public sealed class InMemoryClient
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly InMemoryConnection _connection;
    private readonly Stream _stream;
    private byte[] _held = [];
    private bool _ended;

    internal InMemoryClient(InMemoryConnection connection, PipeReader fromServer)
        : this(connection, new ConnectionStream(connection, fromServer.AsStream())) { }

    private InMemoryClient(InMemoryConnection connection, Stream stream)
    {
        _connection = connection;
        _stream = stream;
    }

    /// <summary>Why the server aborted the connection (a refusal before HTTP); null when it did not.</summary>
    public string? AbortReason => _connection.AbortReason;

    /// <summary>The protocol ALPN chose, after <see cref="StartTlsAsync"/>.</summary>
    public string? Alpn => (_stream as SslStream)?.NegotiatedApplicationProtocol.ToString();

    /// <summary>Sends latin-1 text; false when the server no longer reads.</summary>
    public bool Send(string latin1) => Send(Encoding.Latin1.GetBytes(latin1));

    public bool Send(byte[] bytes)
    {
        try
        {
            _stream.Write(bytes);
            _stream.Flush();
            return true;
        }
        catch (IOException) { return false; }
    }

    /// <summary>The client closes its sending side.</summary>
    public void EndSending() => _connection.EndInput();

    /// <summary>A TLS handshake on this connection (any server certificate is accepted); the client it returns
    /// speaks through it.</summary>
    public async Task<InMemoryClient> StartTlsAsync(params string[] alpn)
    {
        var tls = new SslStream(_stream, leaveInnerStreamOpen: true, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = alpn.Select(name => new SslApplicationProtocol(name)).ToList(),
        }).WaitAsync(Patience);
        return new InMemoryClient(_connection, tls);
    }

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
        var buffer = new byte[16 << 10];
        int read;
        try { read = await _stream.ReadAsync(buffer, patience.Token).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the server sent nothing for {Patience.TotalSeconds} s; held so far: " +
                Encoding.Latin1.GetString(_held));
        }
        catch (IOException) { read = 0; } // TLS cut short by an abort: the end, as far as the client can tell
        _held = [.. _held, .. buffer.AsSpan(0, read)];
        _ended = read == 0;
        return !_ended;
    }

    private byte[] Take(int count)
    {
        var taken = _held[..count];
        _held = _held[count..];
        return taken;
    }
}

/// <summary>The connection as a stream, for TLS to run over: reads come from the server's pipe, writes go to
/// Kestrel's input (an IOException once the server no longer reads, as a reset would be).</summary>
internal sealed class ConnectionStream(InMemoryConnection connection, Stream fromServer) : Stream
{
    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;

    public override int Read(byte[] buffer, int offset, int count) => fromServer.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        fromServer.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        fromServer.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (!connection.Send(buffer)) throw new IOException("the server no longer reads this connection");
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer, offset, count);
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush() { }
    public override long Length => throw new NotSupportedException();
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
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
