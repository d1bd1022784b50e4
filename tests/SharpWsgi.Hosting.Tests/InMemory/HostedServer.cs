using System.Net;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;

namespace SharpWsgi.Hosting.Tests.InMemory;

/// <summary>
/// A worker's server without the worker process: <see cref="ServerHost"/> starts the real KestrelServer with the
/// real edge chain and request pipeline, built from command-line flags as a worker does, but its one listener is
/// on an <see cref="InMemoryTransport"/> (cleartext or TLS, its other facts from the settings). Clients connect as if
/// from the address a test names, which is what the PROXY and forwarded-header rules look at.
/// </summary>
public sealed class HostedServer : IAsyncDisposable
{
    private static readonly InMemoryEndPoint Address = new("hosting-tests");

    private readonly InMemoryTransport _transport;

    private HostedServer(InMemoryTransport transport, ServerHost host, WorkerLifecycle lifecycle,
        TestLoggers log)
    {
        _transport = transport;
        Host = host;
        Lifecycle = lifecycle;
        Log = log;
    }

    public ServerHost Host { get; }
    public WorkerLifecycle Lifecycle { get; }
    /// <summary>The server's log lines (Kestrel's and ours).</summary>
    public TestLoggers Log { get; }

    /// <param name="flags">Command-line settings, e.g. "--limit-request-body", "10".</param>
    public static Task<HostedServer> StartAsync(WsgiGateway gateway, params string[] flags) =>
        StartAsync(gateway, tls: false, flags);

    /// <summary>A TLS listener with <see cref="TestCertificate"/>.</summary>
    public static Task<HostedServer> StartTlsAsync(WsgiGateway gateway, params string[] flags) =>
        StartAsync(gateway, tls: true,
            ["--certfile", TestCertificate.CertFile, "--keyfile", TestCertificate.KeyFile, .. flags]);

    private static async Task<HostedServer> StartAsync(WsgiGateway gateway, bool tls, string[] flags)
    {
        var settings = ServerSettings.Parse(["app:app", .. flags], new Dictionary<string, string?>());
        var transport = new InMemoryTransport();
        var listeners = ServerListeners.Over(transport, [(Address, ListenerFacts.For(settings, tls))]);
        var lifecycle = new WorkerLifecycle(0);
        var log = new TestLoggers();
        var host = await ServerHost.StartAsync(settings, gateway, log, lifecycle, listeners, accessLog: null,
            metrics: null, handoverKey: null);
        return new HostedServer(transport, host, lifecycle, log);
    }

    /// <summary>A new connection from <paramref name="peer"/>:<paramref name="port"/>; it fails the test when
    /// the server no longer accepts.</summary>
    public InMemoryClient Connect(string peer = "127.0.0.1", int port = 40000) =>
        TryConnect(peer, port) ?? throw new InvalidOperationException("the server does not accept connections");

    /// <summary>Null when the server no longer accepts (its listener is unbound).</summary>
    public InMemoryClient? TryConnect(string peer = "127.0.0.1", int port = 40000) =>
        _transport.Connect(Address, new IPEndPoint(IPAddress.Parse(peer), port));

    public async ValueTask DisposeAsync() => await Host.StopAsync(TimeSpan.FromSeconds(5));
}
