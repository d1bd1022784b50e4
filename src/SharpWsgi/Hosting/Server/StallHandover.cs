using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>
/// Requests that a frozen worker (a C call holding the GIL) has accepted but not yet given to Python are sent to a
/// sibling worker instead of waiting for this one to recover or be killed. A watch thread asks the gateway for a proof
/// of life whenever requests are queued; when none comes within <see cref="ProofWait"/>, the worker counts as stalled:
/// its queued requests are withdrawn (no Python saw them, so sending them again is safe) and each goes, as HTTP/1.1 on
/// a new connection, to the shared socket it came in on. This worker does not accept while frozen
/// (<see cref="ResponsiveListener"/>), so a sibling does; the answer is relayed to the client. The sibling learns the
/// client's own address from the <see cref="Header"/> header, which carries a key only this server's workers know.
/// What cannot be sent again that way (a request body, TLS, the PROXY protocol, a unix socket) gets a 503 with
/// Retry-After instead of hanging.
/// </summary>
public sealed class StallHandover : IDisposable
{
    public const string Header = "SharpWsgi-Handover";
    private static readonly TimeSpan ProofWait = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan QueueLook = TimeSpan.FromMilliseconds(50);
    private static readonly HashSet<string> NotRelayed = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host",
        "Content-Length", "Date", Header,
    };

    private readonly WsgiGateway _gateway;
    private readonly byte[]? _key;
    private readonly bool _proxyProtocol;
    private readonly ILogger _log;
    private readonly HttpClient _client;
    private readonly ManualResetEventSlim _stop = new(false);
    private readonly Thread _watch;
    private volatile bool _stalled;

    /// <param name="key">The supervisor's key for <see cref="Header"/> (null: nothing is sent or trusted).</param>
    public StallHandover(WsgiGateway gateway, string? key, bool proxyProtocol, ILogger log)
    {
        _gateway = gateway;
        _key = string.IsNullOrEmpty(key) ? null : Encoding.ASCII.GetBytes(key);
        _proxyProtocol = proxyProtocol;
        _log = log;
        // A new connection for every request (Connection: close): a pooled one would stay with the worker that
        // accepted it, which may be the next to freeze.
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false,
            UseCookies = false, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan, // the sibling's --request-timeout applies
        };
        _watch = new Thread(Watch) { IsBackground = true, Name = "stall-handover" };
        _watch.Start();
    }

    /// <summary>True while this worker's Python is not responsive: new requests go straight to a sibling.</summary>
    public bool Stalled => _stalled;

    private void Watch()
    {
        while (!_stop.Wait(QueueLook))
        {
            if (!_stalled && _gateway.Queued == 0) continue;
            if (_gateway.WaitResponsive(ProofWait))
            {
                if (_stalled)
                    _log.LogInformation("Worker {Pid}: Python is responsive again; its requests stay here",
                        Environment.ProcessId);
                _stalled = false;
                continue;
            }
            if (!_stalled)
                _log.LogWarning("Worker {Pid}: Python has not responded for {Ms} ms with {Queued} request(s) " +
                    "waiting; handing them to the other workers", Environment.ProcessId, ProofWait.TotalMilliseconds,
                    _gateway.Queued);
            _stalled = true;
            _gateway.WithdrawQueued();
        }
    }

    /// <summary>Sends a request no Python has seen to a sibling and relays its answer; a 503 when it cannot be
    /// sent again.</summary>
    public async Task SendAsync(KestrelExchange exchange)
    {
        exchange.HandedOver = true;
        if (!CanSend(exchange))
        {
            exchange.HandedOver = false;
            await Refuse(exchange).ConfigureAwait(false);
            return;
        }
        HttpResponseMessage response;
        try
        {
            using var request = BuildRequest(exchange);
            response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            _log.LogWarning("Worker {Pid}: handing {Method} {Target} over failed: {Error}", Environment.ProcessId,
                exchange.Method, exchange.RawTarget, e.Message);
            exchange.HandedOver = false;
            await Refuse(exchange).ConfigureAwait(false);
            return;
        }
        using (response)
        {
            try
            {
                exchange.Response.StatusCode = (int)response.StatusCode;
                exchange.Response.ReasonPhrase = response.ReasonPhrase;
                Copy(response.Headers, exchange);
                Copy(response.Content.Headers, exchange);
                await response.Content.CopyToAsync(exchange.ResponseBodyFeature.Stream).ConfigureAwait(false);
                await exchange.ResponseBodyFeature.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                exchange.AbortConnection(); // part of the answer is out: only a reset tells the client
            }
        }
    }

    private bool CanSend(KestrelExchange exchange) =>
        _key != null && !_proxyProtocol && !exchange.IsTls && exchange.PeerAddress != null
        && exchange.RawTarget.StartsWith('/')
        && exchange.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false;

    private static Task Refuse(KestrelExchange exchange) =>
        PlainResponse.WriteAsync(exchange, ServerAnswer.WorkerNotResponding);

    private HttpRequestMessage BuildRequest(KestrelExchange exchange)
    {
        var local = IPAddress.Parse(exchange.LocalAddress);
        var host = local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{local}]" : local.ToString();
        var uri = new Uri($"http://{host}:{exchange.LocalPort}{exchange.RawTarget}",
            new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        var request = new HttpRequestMessage(new HttpMethod(exchange.Method), uri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var headers = exchange.KestrelRequestHeaders;
        foreach (var (name, values) in headers)
        {
            if (name.StartsWith(':') || NotRelayed.Contains(name)) continue;
            request.Headers.TryAddWithoutValidation(name, (IEnumerable<string>)values!);
        }
        if (headers.Host.Count > 0) request.Headers.Host = headers.Host.ToString();
        request.Headers.ConnectionClose = true;
        request.Headers.TryAddWithoutValidation(Header,
            $"{Encoding.ASCII.GetString(_key!)} {exchange.PeerAddress} {exchange.PeerPort}");
        return request;
    }

    private static void Copy(HttpHeaders from, KestrelExchange exchange)
    {
        var to = exchange.Response.Headers;
        foreach (var (name, values) in from)
            if (!NotRelayed.Contains(name) || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                to[name] = Microsoft.Extensions.Primitives.StringValues.Concat(to[name], values.ToArray());
    }

    /// <summary>
    /// The receiving side: a request carrying <see cref="Header"/> with this server's key, from a loopback peer, came
    /// from a sibling on behalf of the client named there, which becomes the request's peer (before the forwarded
    /// headers are judged, exactly as if the client had connected here). The header never reaches the app.
    /// </summary>
    public void Receive(KestrelExchange exchange)
    {
        var headers = exchange.KestrelRequestHeaders;
        if (!headers.TryGetValue(Header, out var values)) return;
        headers.Remove(Header);
        if (_key == null || values.Count != 1 || exchange.PeerAddress is not { } peer || !IPAddress.IsLoopback(peer))
            return;
        var parts = values.ToString().Split(' ');
        if (parts.Length != 3
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(parts[0]), _key)
            || !IPAddress.TryParse(parts[1], out var client) || !int.TryParse(parts[2], out var port))
            return;
        exchange.SetPeer(client, port);
    }

    public void Dispose()
    {
        _stop.Set();
        _client.Dispose();
    }
}
