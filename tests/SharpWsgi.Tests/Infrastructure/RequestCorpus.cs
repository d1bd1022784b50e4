using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpWsgi.Tests.Infrastructure;

/// <summary>One request a valid corpus case expects the server to parse.</summary>
public sealed record CorpusRequest(string Method, string Target, string Path, string Query, string Form,
    int[] Version, List<(string Name, string Value)> Headers, byte[] Body)
{
    public string Protocol => $"HTTP/{Version[0]}.{Version[1]}";
    public bool Has(string header) => Headers.Any(h => h.Name.Equals(header, StringComparison.OrdinalIgnoreCase));
    public string? Value(string header)
        => Headers.FirstOrDefault(h => h.Name.Equals(header, StringComparison.OrdinalIgnoreCase)).Value;
}

/// <summary>A case of ../shared/corpus/gunicorn-requests (see its NOTICE.md): raw bytes plus expectations.</summary>
public sealed record CorpusCase(string Name, string Expect, bool ConfigDependent, string GunicornConfig,
    string? GunicornError, byte[] Raw, List<CorpusRequest> Requests)
{
    public bool Valid => Expect == "accept";
}

/// <summary>Loads the gunicorn request corpus (read-only data shared beside the repo).</summary>
public static class RequestCorpus
{
    public static string Directory
        => Path.GetFullPath(Path.Combine(ServerProcess.RepoRoot, "..", "shared", "corpus", "gunicorn-requests"));

    /// <summary>The corpus is data beside the repository (../shared, as CI provides it), not part of it.</summary>
    public static bool Present => File.Exists(Path.Combine(Directory, "index.json"));

    /// <summary>Why a corpus test is skipped in a clone without it.</summary>
    public static string MissingReason =>
        $"the gunicorn request corpus is not at {Directory}: it comes from ../shared/corpus beside the repository " +
        "(see ../shared/corpus/NOTICE.md); the corpus tests need it";

    /// <summary>Skips the calling test when the corpus is not there.</summary>
    public static void RequirePresent() => Skip.IfNot(Present, MissingReason);

    private static readonly Lazy<List<CorpusCase>> All = new(() => Present ? Load() : new List<CorpusCase>());

    public static IReadOnlyList<CorpusCase> Cases => All.Value;

    public static CorpusCase Get(string name) => All.Value.Single(c => c.Name == name);

    private static List<CorpusCase> Load()
    {
        var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Directory, "index.json"))).RootElement;
        var cases = new List<CorpusCase>();
        foreach (var entry in index.GetProperty("cases").EnumerateArray())
        {
            var name = entry.GetProperty("name").GetString()!;
            var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Directory, name + ".json"))).RootElement;
            var config = doc.GetProperty("gunicorn_config");
            var configDependent = entry.TryGetProperty("config_dependent", out var cd) && cd.GetBoolean()
                                  || config.EnumerateObject().Any();
            var requests = new List<CorpusRequest>();
            if (doc.TryGetProperty("requests", out var reqs))
                foreach (var r in reqs.EnumerateArray())
                    requests.Add(new CorpusRequest(
                        r.GetProperty("method").GetString()!,
                        r.GetProperty("target").GetString()!,
                        r.GetProperty("path").GetString()!,
                        r.GetProperty("query").GetString()!,
                        r.GetProperty("form").GetString()!,
                        r.GetProperty("version").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
                        r.GetProperty("headers").EnumerateArray()
                            .Select(h => (h[0].GetString()!, h[1].GetString()!)).ToList(),
                        Convert.FromBase64String(r.GetProperty("body_b64").GetString()!)));
            cases.Add(new CorpusCase(name, doc.GetProperty("expect").GetString()!, configDependent, config.GetRawText(),
                doc.TryGetProperty("gunicorn_error", out var ge) ? ge.GetString() : null,
                Convert.FromBase64String(doc.GetProperty("raw_b64").GetString()!), requests));
        }
        return cases;
    }
}

/// <summary>
/// One documented difference between Kestrel's HTTP/1.1 policy and a gunicorn fixture, from
/// tests/requests/kestrel-differences.md: the kind of behaviour, optional environ expectations
/// (KEY=VALUE with %XX escapes, -KEY for "absent"), and flags (close, calls&lt;=N, body=VALUE, status=NNN).
/// </summary>
public sealed record KestrelDifference(string Case, string Kind, int? Status, Dictionary<string, string?> Environ,
    string? Body, bool Close, int? MaxCalls, string Reason);

public static class KestrelDifferences
{
    public static string File => Path.Combine(ServerProcess.RepoRoot, "tests", "requests", "kestrel-differences.md");

    public static readonly string[] Kinds = { "missing-host", "invalid-host", "non-ascii-target", "truncated-body",
        "reject", "accept", "body-error", "incomplete" };

    private static readonly Lazy<Dictionary<string, KestrelDifference>> All = new(Load);

    public static IReadOnlyDictionary<string, KestrelDifference> Entries => All.Value;

    private static readonly Regex Row = new(@"^\|\s*((?:in)?valid/[^\s|]+)\s*\|\s*`([^`]*)`\s*\|\s*(.*?)\s*\|\s*$");

    private static Dictionary<string, KestrelDifference> Load()
    {
        var result = new Dictionary<string, KestrelDifference>();
        foreach (var line in System.IO.File.ReadLines(File))
        {
            var m = Row.Match(line);
            if (!m.Success) continue;
            var tokens = m.Groups[2].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var kind = tokens[0];
            if (!Kinds.Contains(kind)) throw new InvalidDataException($"{File}: unknown kind '{kind}' in: {line}");
            int? status = null, maxCalls = null;
            string? body = null;
            bool close = false;
            var environ = new Dictionary<string, string?>();
            foreach (var t in tokens.Skip(1))
            {
                if (Regex.IsMatch(t, @"^\d{3}$")) status = int.Parse(t);
                else if (t == "close") close = true;
                else if (t.StartsWith("calls<=")) maxCalls = int.Parse(t["calls<=".Length..]);
                else if (t.StartsWith("body=")) body = Unescape(t["body=".Length..]);
                else if (t.StartsWith('-')) environ[t[1..]] = null;
                else if (t.Contains('=')) { var i = t.IndexOf('='); environ[t[..i]] = Unescape(t[(i + 1)..]); }
                else throw new InvalidDataException($"{File}: unknown token '{t}' in: {line}");
            }
            if (!result.TryAdd(m.Groups[1].Value, new KestrelDifference(m.Groups[1].Value, kind, status, environ, body,
                close, maxCalls, m.Groups[3].Value)))
                throw new InvalidDataException($"{File}: {m.Groups[1].Value} is listed twice");
        }
        return result;
    }

    /// <summary>%XX escapes to latin-1 characters (the file is ASCII; values may hold spaces, controls,
    /// latin-1).</summary>
    public static string Unescape(string s) => Latin1PercentDecode(s);

    /// <summary>Percent-decodes a latin-1 string byte-wise (what PATH_INFO holds per PEP 3333); invalid escapes
    /// stay as they are.</summary>
    public static string Latin1PercentDecode(string s)
    {
        var bytes = Encoding.Latin1.GetBytes(s);
        var output = new List<byte>(bytes.Length);
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == (byte)'%' && i + 2 < bytes.Length && IsHex(bytes[i + 1]) && IsHex(bytes[i + 2]))
            {
                output.Add(Convert.ToByte(Encoding.ASCII.GetString(bytes, i + 1, 2), 16));
                i += 2;
            }
            else output.Add(bytes[i]);
        }
        return Encoding.Latin1.GetString(output.ToArray());
    }

    private static bool IsHex(byte b)
        => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';
}
