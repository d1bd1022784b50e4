using System.Security.Cryptography;

namespace SharpWsgi.Hosting;

/// <summary>
/// X-Request-ID: a trusted peer's (--forwarded-allow-ips, the same trust as forwarded headers) is kept, anyone
/// else's is replaced by a new one. The app sees the ID as HTTP_X_REQUEST_ID; both logs carry it; with
/// --request-id-header the response says it.
/// </summary>
public sealed class RequestIds
{
    public const string Header = "X-Request-ID";
    private const string EnvironKey = "HTTP_X_REQUEST_ID";
    private readonly ForwardedHeaders _trust;
    // A random per-process prefix and a counter: unique across workers and restarts without a random draw per
    // request.
    private readonly string _prefix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    private long _counter;

    public RequestIds(ForwardedHeaders trust, bool echo)
    {
        _trust = trust;
        Echo = echo;
    }

    public bool Echo { get; }

    public void Assign(KestrelExchange exchange)
    {
        if (_trust.Trusts(exchange.PeerAddress) &&
            exchange.KestrelRequestHeaders.TryGetValue(Header, out var given) && given.Count == 1 &&
            IsAcceptable(given[0]))
        {
            exchange.SetRequestId(given[0]!, Echo);
            return;
        }
        var id = string.Create(32, (_prefix, Interlocked.Increment(ref _counter)), static (span, state) =>
        {
            state._prefix.CopyTo(span);
            state.Item2.TryFormat(span[16..], out _, "x16");
        });
        // Set after the headers: it replaces an untrusted client's own X-Request-ID in the environ.
        exchange.AddServerVariable(EnvironKey, id);
        exchange.SetRequestId(id, Echo);
    }

    /// <summary>Printable ASCII of a sane length: it goes into log lines and a response header as is.</summary>
    private static bool IsAcceptable(string? id)
    {
        return !string.IsNullOrEmpty(id) && id.Length <= 200 && HeaderSyntax.IsVisibleAscii(id);
    }
}
