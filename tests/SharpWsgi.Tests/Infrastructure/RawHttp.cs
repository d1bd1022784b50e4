using System.Net.Sockets;
using System.Text;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>One parsed HTTP/1.x response read off a raw socket, bytes exact.</summary>
public sealed record RawResponse(string StatusLine, int Status, List<(string Name, string Value)> Headers, byte[] Body,
    bool Chunked, byte[] Raw)
{
    public string? Header(string name)
        => Headers.FirstOrDefault(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;
    public IEnumerable<string> HeaderValues(string name)
        => Headers.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);
    public string BodyText => Encoding.Latin1.GetString(Body);
}

/// <summary>
/// A raw TCP client for byte-exact framing tests: writes exactly the bytes given, and parses
/// responses itself (Content-Length, chunked, or close-delimited), so nothing is normalised away.
/// </summary>
public sealed class RawHttp : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly List<byte> _buffer = new();
    private bool _eof;

    public RawHttp(int port, TimeSpan? timeout = null)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect("127.0.0.1", port);
        var ms = (int)(timeout ?? TimeSpan.FromSeconds(30)).TotalMilliseconds;
        _socket.ReceiveTimeout = ms;
        _socket.SendTimeout = ms;
        _stream = new NetworkStream(_socket, ownsSocket: false);
    }

    public Socket Socket => _socket;

    public void Send(string latin1) => Send(Encoding.Latin1.GetBytes(latin1));
    public void Send(byte[] bytes) { _stream.Write(bytes); _stream.Flush(); }

    /// <summary>Sends a request and reads one response.</summary>
    public static RawResponse Exchange(int port, string request, bool isHead = false)
    {
        using var c = new RawHttp(port);
        c.Send(request);
        return c.ReadResponse(isHead);
    }

    private bool Fill()
    {
        if (_eof) return false;
        var chunk = new byte[65536];
        int n;
        try { n = _stream.Read(chunk, 0, chunk.Length); }
        catch (IOException e) when (e.InnerException is SocketException se &&
            se.SocketErrorCode == SocketError.ConnectionReset) { n = 0; }
        if (n == 0) { _eof = true; return false; }
        _buffer.AddRange(chunk.AsSpan(0, n).ToArray());
        return true;
    }

    private int IndexOf(byte[] needle, int start = 0)
    {
        for (int i = start; i <= _buffer.Count - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && _buffer[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    private byte[] Take(int count)
    {
        var taken = _buffer.GetRange(0, count).ToArray();
        _buffer.RemoveRange(0, count);
        return taken;
    }

    private string ReadLine()
    {
        int idx;
        while ((idx = IndexOf("\r\n"u8.ToArray())) < 0)
            if (!Fill()) throw new EndOfStreamException("connection closed while reading a line");
        var line = Encoding.Latin1.GetString(Take(idx));
        Take(2);
        return line;
    }

    /// <summary>True when the server closed the connection (reads return EOF) with no further bytes.</summary>
    public bool IsClosedByServer()
    {
        if (_buffer.Count > 0) return false;
        return !Fill();
    }

    /// <summary>Reads until EOF and returns all bytes that were not consumed yet.</summary>
    public byte[] ReadToEnd()
    {
        while (Fill()) { }
        return Take(_buffer.Count);
    }

    /// <summary>Reads one full response. Interim 1xx responses are returned as their own responses.</summary>
    public RawResponse ReadResponse(bool isHead = false)
    {
        var raw = new List<byte>();
        int headerEnd;
        while ((headerEnd = IndexOf("\r\n\r\n"u8.ToArray())) < 0)
            if (!Fill()) throw new EndOfStreamException(
                "connection closed before the response head was complete; got: " +
                Encoding.Latin1.GetString(_buffer.ToArray()));
        var head = Take(headerEnd + 4);
        raw.AddRange(head);
        var lines = Encoding.Latin1.GetString(head, 0, head.Length - 4).Split("\r\n");
        var statusLine = lines[0];
        var status = int.Parse(statusLine.Split(' ')[1]);
        var headers = lines.Skip(1)
            .Select(l => { var i = l.IndexOf(':'); return (l[..i], l[(i + 1)..].Trim()); }).ToList();
        var resp = new RawResponse(statusLine, status, headers, Array.Empty<byte>(), false, Array.Empty<byte>());
        if (isHead || status is 204 or 304 || (status >= 100 && status < 200))
            return resp with { Raw = raw.ToArray() };

        var te = resp.Header("Transfer-Encoding");
        var cl = resp.Header("Content-Length");
        byte[] body;
        bool chunked = false;
        if (te != null && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            chunked = true;
            var bodyBytes = new List<byte>();
            while (true)
            {
                var sizeLine = ReadLine();
                raw.AddRange(Encoding.Latin1.GetBytes(sizeLine + "\r\n"));
                var size = Convert.ToInt32(sizeLine.Split(';')[0].Trim(), 16);
                if (size == 0)
                {
                    // trailers until empty line
                    string t;
                    do { t = ReadLine(); raw.AddRange(Encoding.Latin1.GetBytes(t + "\r\n")); } while (t.Length > 0);
                    break;
                }
                while (_buffer.Count < size + 2)
                    if (!Fill()) throw new EndOfStreamException("connection closed inside a chunk");
                var data = Take(size);
                bodyBytes.AddRange(data);
                raw.AddRange(data);
                raw.AddRange(Take(2));
            }
            body = bodyBytes.ToArray();
        }
        else if (cl != null)
        {
            var len = int.Parse(cl);
            while (_buffer.Count < len)
                if (!Fill()) throw new EndOfStreamException(
                    $"connection closed after {_buffer.Count} of {len} body bytes");
            body = Take(len);
            raw.AddRange(body);
        }
        else
        {
            body = ReadToEnd();
            raw.AddRange(body);
        }
        return resp with { Body = body, Chunked = chunked, Raw = raw.ToArray() };
    }

    public void Dispose()
    {
        _stream.Dispose();
        _socket.Dispose();
    }
}
