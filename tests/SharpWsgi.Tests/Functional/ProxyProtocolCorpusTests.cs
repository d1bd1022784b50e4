using System.Net;
using System.Text;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The gunicorn corpus cases written for proxy_protocol (pp_*), replayed against --proxy-protocol optional (what
/// gunicorn's proxy_protocol = True does: use the header when present, valid/pp_03 has none) and on (required). Each
/// run prints a table of case and outcome. Valid cases must reach the app with the fixture's request and the
/// header's source as REMOTE_ADDR/REMOTE_PORT; invalid ones must be closed without reaching the app.
/// </summary>
public sealed class ProxyProtocolCorpusTests : IClassFixture<ProxiedServers>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>What each valid fixture's PROXY header says (the corpus states no address); null: no header.</summary>
    private static readonly Dictionary<string, (string Address, int Port, string DestAddress, int DestPort)?>
        Headers = new()
        {
            ["valid/pp_01"] = ("192.168.0.1", 56324, "192.168.0.11", 443),
            ["valid/pp_02"] = ("192.168.0.1", 56324, "192.168.0.11", 443),
            ["valid/pp_03"] = null,
            ["valid/pp_04"] = ("192.168.1.10", 12345, "192.168.1.1", 443),
            ["valid/pp_05"] = ("2001:db8::1", 54321, "2001:db8::2", 80),
        };

    private readonly ProxiedServers _servers;
    private readonly ITestOutputHelper _out;

    public ProxyProtocolCorpusTests(ProxiedServers servers, ITestOutputHelper output)
    {
        _servers = servers;
        _out = output;
    }

    private static List<CorpusCase> ProxyCases => RequestCorpus.Cases
        .Where(c => c.GunicornConfig.Contains("\"proxy_protocol\"", StringComparison.Ordinal)).ToList();

    [SkippableFact]
    public void Corpus_ProxyCases_AllKnown()
    {
        RequestCorpus.RequirePresent();
        var names = ProxyCases.Select(c => c.Name).ToList();
        Assert.Equal(8, names.Count);
        foreach (var valid in names.Where(n => n.StartsWith("valid/"))) Assert.True(Headers.ContainsKey(valid), valid);
    }

    [SkippableTheory]
    [InlineData("optional")]
    [InlineData("on")]
    public void Replay_ProxyCases_OutcomesAsExpected(string mode)
    {
        RequestCorpus.RequirePresent();
        var server = _servers.Get("--proxy-protocol", mode);
        var rows = new List<(string Case, string Expect, string Outcome, string? Problem)>();
        foreach (var c in ProxyCases)
        {
            var (outcome, problem) = Replay(server, c, mode);
            rows.Add((c.Name, c.Valid ? "accept" : "reject (" + c.GunicornError + ")", outcome, problem));
        }
        _out.WriteLine($"--proxy-protocol {mode}");
        _out.WriteLine("| case | gunicorn expects | SharpWsgi | ok |");
        _out.WriteLine("| --- | --- | --- | --- |");
        foreach (var row in rows)
            _out.WriteLine($"| {row.Case} | {row.Expect} | {row.Outcome} | {(row.Problem == null ? "yes" : "NO")} |");
        var problems = rows.Where(r => r.Problem != null).Select(r => $"{r.Case}: {r.Problem}").ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static (string Outcome, string? Problem) Replay(ProxiedServer server, CorpusCase c, string mode)
    {
        if (!c.Valid)
        {
            var closed = ClosedWithoutApp(server, c.Raw, out var seen);
            return (seen, closed ? null : "expected a close without reaching the app");
        }
        var header = Headers[c.Name];
        if (header == null && mode == "on")
        {
            // Required mode: a connection without the header never reaches HTTP.
            var closed = ClosedWithoutApp(server, c.Raw, out var seen);
            return (seen + " (header required)", closed ? null : "on: a connection without a header must close");
        }
        var raw = ServeAll(server, c, c.Raw, header, out var rawOutcome, out var rawProblem);
        if (raw) return (rawOutcome, rawProblem);
        // Kestrel answers 400 to an HTTP/1.1 request without Host (RFC 9112); with one inserted the rest must hold.
        if (!c.Requests.Any(MissesHost)) return (rawOutcome, rawProblem ?? "not served");
        ServeAll(server, c, InsertHost(c), header, out var repaired, out var problem, hostInserted: true);
        return ($"{rawOutcome}; with Host inserted: {repaired}", problem);
    }

    private static bool MissesHost(CorpusRequest r) => r.Version[1] == 1 && !r.Has("HOST");

    /// <summary>Sends the bytes and reads one response per fixture request; true when all came back 200 (then
    /// problem says whether the environ matched). False at the first other answer, described in outcome.</summary>
    private static bool ServeAll(ProxiedServer server, CorpusCase c, byte[] bytes,
        (string Address, int Port, string DestAddress, int DestPort)? header, out string outcome, out string? problem,
        bool hostInserted = false)
    {
        var callsBefore = server.Calls;
        using var conn = new RawHttp(server.Port, Timeout);
        var clientPort = ((IPEndPoint)conn.Socket.LocalEndPoint!).Port;
        conn.Send(bytes);
        var seen = new List<string>();
        var problems = new List<string>();
        foreach (var request in c.Requests)
        {
            RawResponse response;
            try { response = conn.ReadResponse(); }
            catch (EndOfStreamException) { seen.Add("closed"); break; }
            if (response.Status != 200)
            {
                seen.Add(response.StatusLine[9..]);
                break;
            }
            var env = Http.Environ(response);
            var address = header?.Address ?? "127.0.0.1";
            var port = header?.Port ?? clientPort;
            seen.Add($"200 REMOTE_ADDR={env.Str("REMOTE_ADDR")} REMOTE_PORT={env.Str("REMOTE_PORT")}");
            Check(problems, "REMOTE_ADDR", address, env.Str("REMOTE_ADDR"));
            Check(problems, "REMOTE_PORT", port.ToString(), env.Str("REMOTE_PORT"));
            Check(problems, "REQUEST_METHOD", request.Method, env.Str("REQUEST_METHOD"));
            Check(problems, "PATH_INFO", request.Path, env.Str("PATH_INFO"));
            Check(problems, "QUERY_STRING", request.Query, env.Str("QUERY_STRING"));
            var body = Convert.FromBase64String(Http.Json(response).GetProperty("body_b64").GetString()!);
            Check(problems, "body", Encoding.Latin1.GetString(request.Body), Encoding.Latin1.GetString(body));
            // Without Host, SERVER_NAME/SERVER_PORT fall back to the local address: the PROXY destination.
            if (!request.Has("HOST") && !hostInserted && header is { } h)
            {
                seen[^1] += $" SERVER_NAME={env.Str("SERVER_NAME")} SERVER_PORT={env.Str("SERVER_PORT")}";
                Check(problems, "SERVER_NAME", h.DestAddress, env.Str("SERVER_NAME"));
                Check(problems, "SERVER_PORT", h.DestPort.ToString(), env.Str("SERVER_PORT"));
            }
        }
        var served = seen.Count(s => s.StartsWith("200"));
        var calls = server.Calls - callsBefore;
        if (calls != served) problems.Add($"the app ran {calls} times for {served} responses");
        outcome = string.Join(", ", seen);
        problem = problems.Count == 0 ? null : string.Join("; ", problems);
        return served == c.Requests.Count;
    }

    private static void Check(List<string> problems, string key, string expected, string? actual)
    {
        if (expected != actual) problems.Add($"{key}: expected {expected}, got {actual ?? "(absent)"}");
    }

    /// <summary>True when the server closed the connection with no response and the app did not run.</summary>
    private static bool ClosedWithoutApp(ProxiedServer server, byte[] bytes, out string outcome)
    {
        var callsBefore = server.Calls;
        using var conn = new RawHttp(server.Port, Timeout);
        conn.Send(bytes);
        var answer = conn.ReadToEnd();
        var calls = server.Calls - callsBefore;
        outcome = answer.Length == 0
            ? $"closed, no response, app calls {calls}"
            : "answered: " + Encoding.Latin1.GetString(answer).Split("\r\n")[0];
        return answer.Length == 0 && calls == 0;
    }

    private static byte[] InsertHost(CorpusCase c)
    {
        var raw = Encoding.Latin1.GetString(c.Raw);
        var position = 0;
        foreach (var r in c.Requests)
        {
            var line = $"{r.Method} {r.Target} {r.Protocol}\r\n";
            position = raw.IndexOf(line, position, StringComparison.Ordinal) + line.Length;
            if (!MissesHost(r)) continue;
            raw = raw.Insert(position, "Host: localhost\r\n");
            position += "Host: localhost\r\n".Length;
        }
        return Encoding.Latin1.GetBytes(raw);
    }
}
