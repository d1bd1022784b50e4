// Plain Kestrel, no Python: the ceiling the benchmark suite compares SharpWsgi with.
// usage: PlainKestrel --bind 127.0.0.1:PORT --app hello|flask|static10k|echo10k|stream100|sleep10ms
// Each app answers every path with the same bytes as the WSGI app of the same name in bench/apps.
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

string bind = "127.0.0.1:8000", appName = "hello";
var protocols = HttpProtocols.Http1AndHttp2; // on cleartext: HTTP/1.1 only (Kestrel needs ALPN to choose h2)
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--bind" when i + 1 < args.Length: bind = args[++i]; break;
        case "--app" when i + 1 < args.Length: appName = args[++i]; break;
        // --h2c: prior-knowledge HTTP/2 only, for Kestrel's own h2/h1 ratio (bench/README.md, HTTP/2 run).
        case "--h2c": protocols = HttpProtocols.Http2; break;
        default:
            Console.Error.WriteLine("usage: PlainKestrel --bind HOST:PORT --app hello|flask|static10k|echo10k|" +
                "stream100|sleep10ms [--h2c]");
            return 2;
    }
}
var colon = bind.LastIndexOf(':');
var endPoint = new IPEndPoint(IPAddress.Parse(bind[..colon]), int.Parse(bind[(colon + 1)..]));
if (!PlainApp.Handlers.TryGetValue(appName, out var handler))
{
    Console.Error.WriteLine($"PlainKestrel: unknown app {appName}");
    return 2;
}

var options = new KestrelServerOptions { AddServerHeader = false, AllowSynchronousIO = false };
options.Limits.MaxRequestBodySize = null;
options.Listen(endPoint, listen => listen.Protocols = protocols);
var transport = new SocketTransportFactory(Options.Create(new SocketTransportOptions { Backlog = 2048 }), NullLoggerFactory.Instance);
using var server = new KestrelServer(Options.Create(options), transport, NullLoggerFactory.Instance);
await server.StartAsync(new PlainApp(handler), CancellationToken.None);
Console.WriteLine($"Listening at: http://{bind} ({Environment.ProcessId})");

var stop = new TaskCompletionSource();
using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
await stop.Task;
await server.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(2)).Token);
return 0;

sealed class PlainApp(Func<IFeatureCollection, Task> handler) : IHttpApplication<IFeatureCollection>
{
    public static readonly byte[] Hello = "Hello world!\n"u8.ToArray();
    // The exact bytes the flask app's JSON route returns (Flask's jsonify, sorted keys, trailing newline).
    public static readonly byte[] FlaskJson = "{\"items\":[1,2,3],\"message\":\"Hello, World!\",\"server\":\"bench\"}\n"u8.ToArray();
    public static readonly byte[] Static10k = Enumerable.Range(0, 10240).Select(i => (byte)(i % 256)).ToArray();
    public static readonly byte[][] Chunks = Enumerable.Range(0, 100)
        .Select(i => Encoding.ASCII.GetBytes($"chunk {i:000} ".PadRight(99, '.') + "\n")).ToArray();
    public static readonly byte[] Slept = "slept 10 ms\n"u8.ToArray();

    public static readonly Dictionary<string, Func<IFeatureCollection, Task>> Handlers = new()
    {
        ["hello"] = f => Fixed(f, "text/plain", Hello),
        ["flask"] = f => Fixed(f, "application/json", FlaskJson),
        ["static10k"] = f => Fixed(f, "application/octet-stream", Static10k),
        ["echo10k"] = Echo,
        ["stream100"] = Stream,
        ["sleep10ms"] = async f => { await Task.Delay(10); await Fixed(f, "text/plain", Slept); },
    };

    public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;
    public Task ProcessRequestAsync(IFeatureCollection features) => handler(features);
    public void DisposeContext(IFeatureCollection context, Exception? exception) { }

    private static Task Fixed(IFeatureCollection f, string contentType, byte[] body)
    {
        var response = f.GetRequiredFeature<IHttpResponseFeature>();
        response.StatusCode = 200;
        response.Headers.ContentType = contentType;
        response.Headers.ContentLength = body.Length;
        var write = f.GetRequiredFeature<IHttpResponseBodyFeature>().Writer.WriteAsync(body);
        return write.IsCompletedSuccessfully ? Task.CompletedTask : write.AsTask();
    }

    private static async Task Echo(IFeatureCollection f)
    {
        var reader = f.GetRequiredFeature<IRequestBodyPipeFeature>().Reader;
        ReadResult result;
        while (true)
        {
            result = await reader.ReadAsync();
            if (result.IsCompleted) break;
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
        var body = result.Buffer;
        var response = f.GetRequiredFeature<IHttpResponseFeature>();
        response.StatusCode = 200;
        response.Headers.ContentType = "application/octet-stream";
        response.Headers.ContentLength = body.Length;
        var writer = f.GetRequiredFeature<IHttpResponseBodyFeature>().Writer;
        foreach (var segment in body) await writer.WriteAsync(segment);
        reader.AdvanceTo(body.End);
    }

    private static async Task Stream(IFeatureCollection f)
    {
        var response = f.GetRequiredFeature<IHttpResponseFeature>();
        response.StatusCode = 200;
        response.Headers.ContentType = "text/plain";
        var writer = f.GetRequiredFeature<IHttpResponseBodyFeature>().Writer;
        foreach (var chunk in Chunks)
        {
            await writer.WriteAsync(chunk);
        }
    }
}
