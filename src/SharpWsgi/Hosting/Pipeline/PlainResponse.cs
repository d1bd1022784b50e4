using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace SharpWsgi.Hosting;

/// <summary>
/// The one writer of the server's own answers (<see cref="ServerAnswer"/>'s table): a short text/plain body that
/// names the status and says why in one line, e.g. "503 Service Unavailable: all Python threads are busy". It
/// replaces whatever head the app had set but not sent; once a response has started it can only abort.
/// </summary>
public static class PlainResponse
{
    /// <summary>Writes the answer; false when the response had already started (the caller aborts).</summary>
    public static async Task<bool> WriteAsync(KestrelExchange exchange, ServerAnswer answer,
        IEnumerable<KeyValuePair<string, string>>? extraHeaders = null)
    {
        // Recorded even when it cannot be written: the metrics count the cause.
        exchange.Answer = answer;
        if (exchange.ResponseStarted) return false;
        var response = exchange.Response;
        var body = Encoding.ASCII.GetBytes($"{answer.Status} {ReasonPhrases.GetReasonPhrase(answer.Status)}: " +
            $"{answer.Reason}\n");
        response.Headers.Clear();
        response.StatusCode = answer.Status;
        response.ReasonPhrase = null;
        response.Headers.ContentType = "text/plain; charset=utf-8";
        response.Headers.ContentLength = body.Length;
        if (answer.RetryAfter > 0) response.Headers.RetryAfter = answer.RetryAfter.ToString();
        if (extraHeaders != null)
            foreach (var (name, value) in extraHeaders) response.Headers[name] = value;
        exchange.ApplyHeadPolicy(answer.Close);
        if (HttpMethods.IsHead(exchange.Method)) return true;
        try
        {
            await exchange.ResponseBodyFeature.Writer.WriteAsync(body).ConfigureAwait(false);
            exchange.CountBodyBytes(body.Length);
            return true;
        }
        catch (Exception) { return false; }
    }
}
