using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting;

/// <summary>
/// A Kestrel request seen through the gateway's <see cref="WsgiExchange"/>: features are read directly
/// (no HttpContext, no middleware). The Python thread uses it while Kestrel's task awaits <see cref="Completion"/>.
/// </summary>
public sealed class KestrelExchange : WsgiExchange
{
    private readonly IFeatureCollection _features;
    private readonly IHttpRequestFeature _request;
    private readonly IHttpResponseFeature _response;
    private readonly IHttpResponseBodyFeature _responseBody;
    private readonly IHttpConnectionFeature _connection;
    private readonly TaskCompletionSource<ExchangeOutcome> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private PipeReader? _requestBody;

    private readonly WorkerLifecycle _lifecycle;

    public KestrelExchange(IFeatureCollection features, WorkerLifecycle lifecycle)
    {
        _features = features;
        _lifecycle = lifecycle;
        _request = features.GetRequiredFeature<IHttpRequestFeature>();
        _response = features.GetRequiredFeature<IHttpResponseFeature>();
        _responseBody = features.GetRequiredFeature<IHttpResponseBodyFeature>();
        _connection = features.GetRequiredFeature<IHttpConnectionFeature>();
    }

    public Task<ExchangeOutcome> Completion => _done.Task;
    public IFeatureCollection Features => _features;

    public override string Method => _request.Method;
    public override string RawTarget => _request.RawTarget;
    public override string Protocol => _request.Protocol;
    public override string Scheme => _request.Scheme;
    public override string RemoteAddress => Format(_connection.RemoteIpAddress);
    public override int RemotePort => _connection.RemotePort;
    public override string LocalAddress => Format(_connection.LocalIpAddress);
    public override int LocalPort => _connection.LocalPort;
    public override IEnumerable<KeyValuePair<string, StringValues>> RequestHeaders => _request.Headers;
    public override PipeReader RequestBody => _requestBody ??= _features.Get<IRequestBodyPipeFeature>()?.Reader ?? PipeReader.Create(_request.Body);
    public override PipeWriter ResponseBody => _responseBody.Writer;
    public override bool IsHeadRequest => HttpMethods.IsHead(_request.Method);

    private static string Format(IPAddress? address)
    {
        if (address == null) return "";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return address.ToString();
    }

    public override void SetResponseHead(int status, string? reasonPhrase, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        _response.StatusCode = status;
        // Only a non-standard phrase is set: Kestrel keeps its preencoded status line for the standard ones.
        if (!string.IsNullOrEmpty(reasonPhrase) && reasonPhrase != ReasonPhrases.GetReasonPhrase(status))
            _response.ReasonPhrase = reasonPhrase;
        var target = _response.Headers;
        var connectTunnel = status is >= 200 and < 300 && HttpMethods.IsConnect(_request.Method);
        foreach (var (name, value) in headers)
        {
            if (connectTunnel && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) continue;
            if (target.TryGetValue(name, out var existing)) target[name] = StringValues.Concat(existing, value);
            else target[name] = value;
        }
        // A retiring process tells each client to reconnect (to another worker) after this response.
        if (_lifecycle.Draining) target.Connection = "close";
    }

    protected override void CancelPendingIo()
    {
        _requestBody?.CancelPendingRead();
        _responseBody.Writer.CancelPendingFlush();
    }

    public override void OnTimedOut() => _ = AnswerTimeoutAsync();

    private static readonly byte[] TimeoutBody = System.Text.Encoding.ASCII.GetBytes("Gateway Timeout: the application did not answer in time\n");

    /// <summary>Takes the exchange back from the stuck Python thread and answers 504 (or aborts a started response).</summary>
    private async Task AnswerTimeoutAsync()
    {
        await AbandonAsync().ConfigureAwait(false);
        if (_response.HasStarted)
        {
            _done.TrySetResult(ExchangeOutcome.Aborted);
            return;
        }
        _response.Headers.Clear();
        _response.StatusCode = 504;
        _response.ReasonPhrase = null;
        _response.Headers.ContentType = "text/plain";
        _response.Headers.ContentLength = TimeoutBody.Length;
        if (_lifecycle.Draining) _response.Headers.Connection = "close";
        try
        {
            if (!IsHeadRequest) await _responseBody.Writer.WriteAsync(TimeoutBody).ConfigureAwait(false);
            _done.TrySetResult(ExchangeOutcome.Completed);
        }
        catch (Exception)
        {
            _done.TrySetResult(ExchangeOutcome.Aborted);
        }
    }

    public override void Finish(ExchangeOutcome outcome) => _done.TrySetResult(outcome);

    /// <summary>Resets the connection: the response could not be completed.</summary>
    public void Abort() => _features.Get<IHttpRequestLifetimeFeature>()?.Abort();

    /// <summary>Closes the connection once this response is out (no further keep-alive requests).</summary>
    public void CloseAfterResponse()
    {
        var lifetime = _features.Get<IConnectionLifetimeNotificationFeature>();
        if (lifetime != null) lifetime.RequestClose();
        else Abort();
    }
}
