using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Http;
using SharpWsgi.Logging;

namespace SharpWsgi.Hosting;

/// <summary>
/// The access log (--access-logfile, and syslog with --log-syslog): one line per request that got a response,
/// formatted on the Kestrel thread that finished the request into that thread's scratch array and copied into its
/// sink's batch (the file's <see cref="LogSink"/>, syslog's, or both). Text lines follow --access-logformat with
/// gunicorn's atoms; --log-format json writes one object per line instead.
/// </summary>
public sealed class AccessLog : IDisposable
{
    private enum Atom { Literal, h, l, u, t, r, m, U, q, H, s, B, b, f, a, T, D, M, L, p, RequestHeader,
        ResponseHeader, Environ, Unknown }

    private readonly record struct Part(Atom Atom, string Text, byte[]? Literal);

    private readonly Part[] _parts;
    private readonly bool _json;
    private readonly ILogLineSink _sink;
    private readonly AccessLogSkip? _skip;
    private readonly string _pidAtom = $"<{Environment.ProcessId}>";
    private readonly int _pid = Environment.ProcessId;
    private Stamp? _stamp;
    private Stamp? _isoStamp;

    /// <param name="sink">The file, syslog or both (Logging.LogOutlets.AccessLineSink); disposed with this.</param>
    public AccessLog(ILogLineSink sink, string format, bool json, AccessLogSkip? skip = null)
    {
        _parts = Parse(format);
        _json = json;
        _sink = sink;
        _skip = skip;
    }

    public void Reopen() => _sink.Reopen();
    public void Dispose() => _sink.Dispose();

    /// <summary>%(name)s atoms as Python's % formatting reads them; %% is a percent sign; anything else is
    /// literal.</summary>
    private static Part[] Parse(string format)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        void Flush()
        {
            if (literal.Length == 0) return;
            parts.Add(new Part(Atom.Literal, "", Encoding.UTF8.GetBytes(literal.ToString())));
            literal.Clear();
        }
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] == '%' && i + 1 < format.Length && format[i + 1] == '%')
            {
                literal.Append('%');
                i++;
                continue;
            }
            var close = format[i] == '%' && i + 1 < format.Length && format[i + 1] == '('
                ? format.IndexOf(")s", i + 2, StringComparison.Ordinal) : -1;
            if (close < 0) { literal.Append(format[i]); continue; }
            Flush();
            parts.Add(ParseAtom(format[(i + 2)..close]));
            i = close + 1;
        }
        Flush();
        return parts.ToArray();
    }

    private static Part ParseAtom(string key)
    {
        if (key.Length > 3 && key[0] == '{' && key[^2] == '}')
        {
            var name = key[1..^2];
            return key[^1] switch
            {
                'i' => new Part(Atom.RequestHeader, name, null),
                'o' => new Part(Atom.ResponseHeader, name, null),
                'e' => new Part(Atom.Environ, name, null),
                _ => new Part(Atom.Unknown, key, null),
            };
        }
        // gunicorn's missing atoms print '-'.
        return Enum.TryParse<Atom>(key, ignoreCase: false, out var atom) && key.Length == 1
            ? new Part(atom, key, null) : new Part(Atom.Unknown, key, null);
    }

    /// <summary>Called once per answered request, after the response (the exchange is still valid); a request
    /// --access-log-skip names is left out here (the metrics count it elsewhere).</summary>
    public void Log(KestrelExchange x)
    {
        if (_skip != null && _skip.Skips(x.RawTarget, x.Response.StatusCode)) return;
        var line = new LogLine(Scratch);
        try
        {
            var now = Stopwatch.GetTimestamp();
            if (_json) WriteJson(ref line, x, now);
            else WriteText(ref line, x, now);
            line.Raw((byte)'\n');
            _sink.Write(line.Written);
        }
        catch (Exception)
        {
            // A log line must never fail a request; what was built is dropped.
        }
        finally
        {
            line.Release();
        }
    }

    /// <summary>A request Kestrel refused itself (malformed, or past its own limits) before any exchange
    /// existed: the atoms it has (peer, time, status) are filled in, the rest are '-' (JSON: null).</summary>
    public void LogRefusal(string remote, int status, string reason)
    {
        var line = new LogLine(Scratch);
        try
        {
            if (_json) WriteRefusalJson(ref line, remote, status, reason);
            else WriteRefusalText(ref line, remote, status);
            line.Raw((byte)'\n');
            _sink.Write(line.Written);
        }
        finally
        {
            line.Release();
        }
    }

    // Each Kestrel thread formats its lines in its own array; the sink copies them out.
    [ThreadStatic] private static byte[]? _scratch;
    private static byte[] Scratch => _scratch ??= new byte[1024];

    private void WriteRefusalJson(ref LogLine line, string remote, int status, string reason)
    {
        var utc = DateTime.UtcNow;
        line.Ascii("{\"time\":\""); line.Raw(IsoSecond(utc));
        line.Digits(utc.Ticks / TimeSpan.TicksPerMillisecond % 1000, 3);
        line.Ascii("Z\",\"remote\":"); line.Json(remote);
        line.Ascii(",\"method\":null,\"path\":null,\"query\":null,\"protocol\":null,\"status\":");
        line.Number(status);
        line.Ascii(",\"bytes\":0,\"duration_ms\":null,\"queue_ms\":null,\"app_ms\":null,\"referer\":null");
        line.Ascii(",\"user_agent\":null,\"request_id\":null,\"error\":"); line.Json(reason);
        line.Ascii(",\"pid\":"); line.Number(_pid);
        line.Raw((byte)'}');
    }

    private void WriteRefusalText(ref LogLine line, string remote, int status)
    {
        foreach (var part in _parts)
            switch (part.Atom)
            {
                case Atom.Literal: line.Raw(part.Literal); break;
                case Atom.h: line.Text(remote); break;
                case Atom.t: line.Raw(Timestamp()); break;
                case Atom.s: line.Number(status); break;
                case Atom.B: line.Raw((byte)'0'); break;
                case Atom.p: line.Ascii(_pidAtom); break;
                default: line.Raw((byte)'-'); break;
            }
    }

    private void WriteText(ref LogLine line, KestrelExchange x, long now)
    {
        var elapsed = now - x.StartedAt;
        var micros = elapsed * 1_000_000 / Stopwatch.Frequency;
        foreach (var part in _parts)
        {
            switch (part.Atom)
            {
                case Atom.Literal: line.Raw(part.Literal); break;
                case Atom.h: line.Text(x.RemoteAddress); break;
                case Atom.l: line.Raw((byte)'-'); break;
                case Atom.u: Dash(ref line, BasicUser(x)); break;
                case Atom.t: line.Raw(Timestamp()); break;
                case Atom.r:
                    line.Text(x.Method); line.Raw((byte)' '); line.Text(x.RawTarget); line.Raw((byte)' ');
                    line.Text(x.Protocol);
                    break;
                case Atom.m: line.Text(x.Method); break;
                case Atom.U: line.Text(RequestTarget.PercentDecode(RequestTarget.RawPath(x.RawTarget))); break;
                case Atom.q: line.Text(RequestTarget.Query(x.RawTarget)); break;
                case Atom.H: line.Text(x.Protocol); break;
                case Atom.s: line.Number(x.Response.StatusCode); break;
                case Atom.B: line.Number(x.BodyBytes); break;
                case Atom.b:
                    if (x.BodyBytes > 0) line.Number(x.BodyBytes); else line.Raw((byte)'-');
                    break;
                case Atom.f: Dash(ref line, Header(x.KestrelRequestHeaders, "Referer")); break;
                case Atom.a: Dash(ref line, Header(x.KestrelRequestHeaders, "User-Agent")); break;
                case Atom.T: line.Number(micros / 1_000_000); break;
                case Atom.D: line.Number(micros); break;
                case Atom.M: line.Number(micros / 1000); break;
                case Atom.L:
                    line.Number(micros / 1_000_000); line.Raw((byte)'.');
                    line.Digits(micros % 1_000_000, 6);
                    break;
                case Atom.p: line.Ascii(_pidAtom); break;
                case Atom.RequestHeader: Dash(ref line, Header(x.KestrelRequestHeaders, part.Text)); break;
                case Atom.ResponseHeader: Dash(ref line, Header(x.Response.Headers, part.Text)); break;
                case Atom.Environ: Dash(ref line, Environ(x, part.Text)); break;
                default: line.Raw((byte)'-'); break;
            }
        }
    }

    private void WriteJson(ref LogLine line, KestrelExchange x, long now)
    {
        var target = x.RawTarget;
        line.Ascii("{\"time\":\"");
        var utc = DateTime.UtcNow;
        line.Raw(IsoSecond(utc));
        line.Digits(utc.Ticks / TimeSpan.TicksPerMillisecond % 1000, 3);
        line.Ascii("Z\",\"remote\":"); line.Json(x.RemoteAddress);
        line.Ascii(",\"method\":"); line.Json(x.Method);
        line.Ascii(",\"path\":"); line.Json(RequestTarget.RawPath(target));
        line.Ascii(",\"query\":"); line.Json(RequestTarget.Query(target));
        line.Ascii(",\"protocol\":"); line.Json(x.Protocol);
        line.Ascii(",\"status\":"); line.Number(x.Response.StatusCode);
        line.Ascii(",\"bytes\":"); line.Number(x.BodyBytes);
        line.Ascii(",\"duration_ms\":"); line.Milliseconds(now - x.StartedAt);
        var t = x.Timings;
        line.Ascii(",\"queue_ms\":");
        if (t.QueuedAt != 0 && t.StartedAt != 0) line.Milliseconds(t.StartedAt - t.QueuedAt); else line.Ascii("null");
        line.Ascii(",\"app_ms\":");
        if (t.StartedAt != 0 && t.AppDoneAt != 0) line.Milliseconds(t.AppDoneAt - t.StartedAt); else line.Ascii("null");
        line.Ascii(",\"referer\":"); JsonOrNull(ref line, Header(x.KestrelRequestHeaders, "Referer"));
        line.Ascii(",\"user_agent\":"); JsonOrNull(ref line, Header(x.KestrelRequestHeaders, "User-Agent"));
        line.Ascii(",\"request_id\":"); JsonOrNull(ref line, x.RequestId);
        line.Ascii(",\"pid\":"); line.Number(_pid);
        line.Raw((byte)'}');
    }

    private static void JsonOrNull(ref LogLine line, string? value)
    {
        if (value == null) line.Ascii("null"); else line.Json(value);
    }

    private static void Dash(ref LogLine line, string? value)
    {
        if (string.IsNullOrEmpty(value)) line.Raw((byte)'-'); else line.Text(value);
    }

    private static string? Header(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var values) && values.Count > 0 ? values.ToString() : null;



    /// <summary>u: the user of a Basic Authorization header, as gunicorn reads it (base64, UTF-8, up to the
    /// colon).</summary>
    private static string? BasicUser(KestrelExchange x)
    {
        var auth = Header(x.KestrelRequestHeaders, "Authorization");
        if (auth == null || auth.Length < 7 || !auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
            return null;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth[6..].Trim()));
            var colon = decoded.IndexOf(':');
            return colon < 0 ? decoded : decoded[..colon];
        }
        catch (FormatException) { return null; }
    }

    /// <summary>{VAR}e: the environ keys the host knows (CGI variables, HTTP_* headers, server variables).</summary>
    private static string? Environ(KestrelExchange x, string name)
    {
        switch (name)
        {
            case "REQUEST_METHOD": return x.Method;
            case "PATH_INFO": return RequestTarget.PercentDecode(RequestTarget.RawPath(x.RawTarget));
            case "QUERY_STRING": return RequestTarget.Query(x.RawTarget).ToString();
            case "RAW_URI": case "REQUEST_URI": return x.RawTarget;
            case "SERVER_PROTOCOL": return x.Protocol;
            case "REMOTE_ADDR": return x.RemoteAddress;
            case "REMOTE_PORT": return x.RemotePort.ToString();
            case "wsgi.url_scheme": return x.Scheme;
        }
        if (x.ServerVariables is { } variables)
            foreach (var (key, value) in variables)
                if (key == name) return value;
        if (name.StartsWith("HTTP_", StringComparison.Ordinal))
            return Header(x.KestrelRequestHeaders, name[5..].Replace('_', '-'));
        if (name == "CONTENT_TYPE") return Header(x.KestrelRequestHeaders, "Content-Type");
        if (name == "CONTENT_LENGTH") return Header(x.KestrelRequestHeaders, "Content-Length");
        return null;
    }

    /// <summary>t: "[02/Dec/2026:00:08:43 +0000]" in local time, formatted once a second.</summary>
    private byte[] Timestamp()
    {
        var now = DateTime.UtcNow;
        var second = now.Ticks / TimeSpan.TicksPerSecond;
        var stamp = _stamp;
        if (stamp != null && stamp.Second == second) return stamp.Text;
        var local = new DateTimeOffset(now).ToLocalTime();
        var offset = local.Offset;
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        var text = local.ToString("[dd/MMM/yyyy:HH:mm:ss ", System.Globalization.CultureInfo.InvariantCulture) +
            $"{sign}{Math.Abs(offset.Hours):00}{Math.Abs(offset.Minutes):00}]";
        stamp = new Stamp(second, Encoding.ASCII.GetBytes(text));
        _stamp = stamp;
        return stamp.Text;
    }

    /// <summary>JSON's time up to the milliseconds' dot, "2026-12-02T00:08:43.", formatted once a second.</summary>
    private byte[] IsoSecond(DateTime utc)
    {
        var second = utc.Ticks / TimeSpan.TicksPerSecond;
        var stamp = _isoStamp;
        if (stamp != null && stamp.Second == second) return stamp.Text;
        stamp = new Stamp(second, Encoding.ASCII.GetBytes(
            utc.ToString("yyyy-MM-dd'T'HH:mm:ss.", System.Globalization.CultureInfo.InvariantCulture)));
        _isoStamp = stamp;
        return stamp.Text;
    }

    private sealed record Stamp(long Second, byte[] Text);
}
