using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace SharpWsgi.Hosting;

/// <summary>
/// The one writer of the server's own answers (400, 408, 413, 500, 503, 504): a short text/plain body that names the
/// status and says why in one line, e.g. "503 Service Unavailable: all Python threads are busy". It replaces whatever
/// head the app had set but not sent; once a response has started it can only abort.
/// </summary>
public static class PlainResponse
{
    /// <summary>Writes the answer; false when the response had already started (the caller aborts).</summary>
    public static async Task<bool> WriteAsync(KestrelExchange exchange, int status, string reason,
        bool closeConnection = false, int retryAfterSeconds = 0,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders = null)
    {
        if (exchange.ResponseStarted) return false;
        var response = exchange.Response;
        var phrase = ReasonPhrases.GetReasonPhrase(status);
        var body = Encoding.ASCII.GetBytes($"{status} {phrase}: {reason}\n");
        response.Headers.Clear();
        exchange.EchoRequestId(response.Headers);
        response.StatusCode = status;
        response.ReasonPhrase = null;
        response.Headers.ContentType = "text/plain; charset=utf-8";
        response.Headers.ContentLength = body.Length;
        if (retryAfterSeconds > 0) response.Headers.RetryAfter = retryAfterSeconds.ToString();
        if (extraHeaders != null)
            foreach (var (name, value) in extraHeaders) response.Headers[name] = value;
        // HTTP/2 frames each stream on its own: nothing to resynchronise, and no Connection header exists there.
        if (closeConnection && !exchange.IsHttp2) response.Headers.Connection = "close";
        if (HttpMethods.IsHead(exchange.Method)) return true;
        try
        {
            await exchange.ResponseBodyFeature.Writer.WriteAsync(body).ConfigureAwait(false);
            exchange.CountHostBytes(body.Length);
            return true;
        }
        catch (Exception) { return false; }
    }
}
