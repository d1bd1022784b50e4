using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>
/// A Kestrel request seen through the gateway's port: features are read directly (no HttpContext, no middleware).
/// The Python thread uses it while Kestrel's task awaits <see cref="Completion"/>; everything Kestrel-specific the
/// gateway must not see (body errors, the connection's lifetime, draining) is handled here.
/// </summary>
public sealed class KestrelExchange : WsgiExchange
{
    private readonly IFeatureCollection _features;
    private readonly IHttpRequestFeature _request;
    private readonly IHttpResponseFeature _response;
    private readonly IHttpResponseBodyFeature _responseBody;
    private readonly IHttpConnectionFeature _connection;
    private readonly WorkerLifecycle _lifecycle;
    private readonly AppHeadPolicy? _appHeads;
    private readonly TaskCompletionSource<ExchangeResult> _done =
        new(TaskCreationOptions.RunContinuationsAsynchronously);
    private PipeReader? _requestBody;
    private string? _requestId;
    private bool _echoRequestId;

    public KestrelExchange(IFeatureCollection features, WorkerLifecycle lifecycle, AppHeadPolicy? appHeads = null)
    {
        _appHeads = appHeads;
        StartedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        _features = features;
        _lifecycle = lifecycle;
        _request = features.GetRequiredFeature<IHttpRequestFeature>();
        _response = features.GetRequiredFeature<IHttpResponseFeature>();
        _responseBody = features.GetRequiredFeature<IHttpResponseBodyFeature>();
        _connection = features.GetRequiredFeature<IHttpConnectionFeature>();
    }

    /// <summary>When Kestrel handed the request over (Stopwatch ticks), for the access log's durations.</summary>
    public long StartedAt { get; }
    public override string? RequestId => _requestId;
    /// <summary>The server's own answer to this request, if it gave one (<see cref="PlainResponse"/>).</summary>
    internal ServerAnswer? Answer { get; set; }

    internal void SetRequestId(string id, bool echo)
    {
        _requestId = id;
        _echoRequestId = echo;
    }

    /// <summary>
    /// The host's policy on every head this server sends (the app's, a plain answer, a static file), in one place,
    /// as the head is committed: --request-id-header says the ID; on HTTP/1 a retiring process (or an answer that
    /// leaves the stream out of step) says Connection: close. HTTP/2 has no Connection header (RFC 9113 8.2.2): a
    /// retiring process sends GOAWAY instead (<see cref="WsgiHttpApplication"/>), and one stream's answer never
    /// closes the others' connection.
    /// </summary>
    internal void ApplyHeadPolicy(bool closeConnection)
    {
        var headers = _response.Headers;
        if (_echoRequestId && _requestId != null) headers[RequestIds.Header] = _requestId;
        if (IsHttp2) headers.Remove("Connection");
        else if (closeConnection || _lifecycle.Draining) headers.Connection = "close";
    }

    public override BodyDisposition CommitHead(in ResponseHead head)
    {
        ApplyHeadPolicy(closeConnection: false);
        return _appHeads?.Commit(this, head) ?? BodyDisposition.Send;
    }

    /// <summary>The file the app's head named in place of its body (X-Accel-Redirect, X-Sendfile), sent by the host
    /// once the gateway is done.</summary>
    internal FileRedirect? Redirect { get; set; }

    /// <summary>The app's body is compressed on its way to Kestrel (--compress).</summary>
    internal CompressedBody? Compressed { get; private set; }

    internal void UseCompressedBody(CompressedBody body) => Compressed = body;

    /// <summary>The host has work left when the gateway finishes: a file to send, or a compressor to end.</summary>
    internal bool HostFinishes => Redirect != null || Compressed != null;

    /// <summary>The request's Content-Length, when it declared one.</summary>
    internal long? DeclaredRequestLength => _request.Headers.ContentLength;
    /// <summary>Body bytes the prefetch read ahead (a body without Content-Length has no other count).</summary>
    internal long GatheredBodyBytes { get; set; }

    public Task<ExchangeResult> Completion => _done.Task;
    public IFeatureCollection Features => _features;
    public IHeaderDictionary KestrelRequestHeaders => _request.Headers;
    public bool ResponseStarted => _response.HasStarted;
    internal IHttpResponseFeature Response => _response;
    internal IHttpResponseBodyFeature ResponseBodyFeature => _responseBody;

    public override string Method => _request.Method;
    public override string RawTarget => _request.RawTarget;
    public override string Protocol => _request.Protocol;
    /// <summary>https when the connection is TLS (Kestrel's own scheme follows :scheme on h2c), or as a trusted
    /// proxy said.</summary>
    public override string Scheme => _scheme ??= IsTls ? "https" : "http";
    public override string RemoteAddress => _remoteAddress ?? Format(_connection.RemoteIpAddress);
    public override int RemotePort => _remotePort >= 0 ? _remotePort : _connection.RemotePort;
    public override IReadOnlyList<KeyValuePair<string, string>>? ServerVariables => _serverVariables;

    private string? _scheme;
    private string? _remoteAddress;
    private int _remotePort = -1;
    private List<KeyValuePair<string, string>>? _serverVariables;

    /// <summary>HTTP/2 has no connection-specific headers (RFC 9113 8.2.2): Connection is never sent on it, and
    /// Kestrel would only strip it with a warning per response.</summary>
    public bool IsHttp2 => _request.Protocol == "HTTP/2";

    /// <summary>The connection itself is TLS (the handshake feature is Kestrel's; h2c sniffing adds none).</summary>
    public bool IsTls => _isTls ??= _features.Get<ITlsHandshakeFeature>() != null;
    private bool? _isTls;
    /// <summary>The peer as the socket (or a PROXY header) gave it, whatever forwarded headers say.</summary>
    public IPAddress? PeerAddress => _connection.RemoteIpAddress;
    public int PeerPort => _connection.RemotePort;

    /// <summary>A sibling worker sent this request on the client's behalf (<see cref="StallHandover"/>): the client
    /// becomes the peer, as if it had connected here.</summary>
    internal void SetPeer(IPAddress address, int port)
    {
        _connection.RemoteIpAddress = address;
        _connection.RemotePort = port;
    }

    /// <summary>Answered by a sibling worker, which logs and counts it (<see cref="StallHandover"/>).</summary>
    internal bool HandedOver { get; set; }

    /// <summary>The client as a trusted proxy gave it (forwarded headers).</summary>
    internal void SetClient(string address, int port)
    {
        _remoteAddress = address;
        _remotePort = port;
    }

    internal void SetScheme(string scheme) => _scheme = scheme;

    internal void AddServerVariable(string name, string value) =>
        (_serverVariables ??= new List<KeyValuePair<string, string>>(4)).Add(new(name, value));
    public override string LocalAddress => Format(_connection.LocalIpAddress);
    public override int LocalPort => _connection.LocalPort;

    public override IEnumerable<KeyValuePair<string, string>> RequestHeaders
    {
        get
        {
            foreach (var (name, values) in _request.Headers)
            {
                if (values.Count == 1) yield return new(name, values[0] ?? "");
                else
                {
                    var separator = name.Equals("Cookie", StringComparison.OrdinalIgnoreCase) ? "; " : ", ";
                    yield return new(name, string.Join(separator, values.ToArray()));
                }
            }
        }
    }

    /// <summary>The body the gateway reads: what the host buffered or spooled, else Kestrel's own pipe.</summary>
    public override PipeReader RequestBody => _requestBody ??=
        new KestrelBodyReader(KestrelBody, BodyLimit, CountBody) { Features = _features };

    /// <summary>--limit-request-body (0: none), for the answer's text; set by <see cref="RequestLimits"/>.</summary>
    internal long BodyLimit { get; set; }
    /// <summary>The limit is counted by our readers, not Kestrel's (an HTTP/1.1 chunked body: Kestrel counts the
    /// chunk framing too).</summary>
    internal bool CountBody { get; set; }

    internal PipeReader KestrelBody =>
        _features.Get<IRequestBodyPipeFeature>()?.Reader ?? PipeReader.Create(_request.Body);

    /// <summary>Set by the body prefetch before the request is queued.</summary>
    internal void UseBody(PipeReader body) => _requestBody = body;

    private static string Format(IPAddress? address)
    {
        if (address == null) return "";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return address.ToString();
    }

    public override void SetStatus(int status, string? reasonPhrase)
    {
        _response.StatusCode = status;
        // Only a non-standard phrase is set: Kestrel keeps its preencoded status line for the standard ones.
        _response.ReasonPhrase = !string.IsNullOrEmpty(reasonPhrase) &&
            reasonPhrase != ReasonPhrases.GetReasonPhrase(status)
            ? reasonPhrase : null;
    }

    public override void ClearResponseHeaders() => _response.Headers.Clear();

    public override void AddResponseHeader(string name, string value)
    {
        var target = _response.Headers;
        if (target.TryGetValue(name, out var existing))
            target[name] = Microsoft.Extensions.Primitives.StringValues.Concat(existing, value);
        else target[name] = value;
    }

    public override PipeWriter ResponseBody => Compressed?.Writer ?? _responseBody.Writer;

    public override void CancelPendingIo()
    {
        _requestBody?.CancelPendingRead();
        Compressed?.CancelPendingFlush();
        _responseBody.Writer.CancelPendingFlush();
    }

    public override void AbortConnection()
    {
        Aborted = true;
        _features.Get<IHttpRequestLifetimeFeature>()?.Abort();
    }

    /// <summary>The connection was reset: unless the head went out first, the client got no response.</summary>
    internal bool Aborted { get; private set; }

    public override void Finish(ExchangeResult result) => _done.TrySetResult(result);

    /// <summary>Closes the connection once this response is out (no further keep-alive requests).</summary>
    public void CloseAfterResponse()
    {
        var lifetime = _features.Get<IConnectionLifetimeNotificationFeature>();
        if (lifetime != null) lifetime.RequestClose();
        else AbortConnection();
    }
}
