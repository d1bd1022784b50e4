using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using SharpWsgi.Metrics;
using SharpWsgi.Python;

namespace SharpWsgi.Hosting.Tests.Metrics;

/// <summary>
/// The metrics listener of a binary upgrade, in one process: two endpoints on one listening socket (the second on a
/// duplicate descriptor, as a new supervisor inherits it). The one that does not accept answers nothing; after the
/// hand-over the other answers; and disposing the first, whose socket .NET created, leaves the shared socket
/// listening for the second (a shutdown(2) on close would take it from both).
/// </summary>
public sealed class MetricsHandOverTests
{
    [Fact]
    public void SharedListener_StopStartAndDisposeTheOld_TheNewAnswersAlone()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
                file.SetLength((long)MetricsTable.Slots * MetricsTable.SlotLongs * sizeof(long));
            using var table = MetricsTable.Open(path, 0);
            using var old = new MetricsEndpoint(table, "127.0.0.1:0", NullLogger.Instance);
            var port = new Uri(old.Url).Port;
            var duplicate = Libc.Dup((int)old.Listener.Handle);
            using var successor = new MetricsEndpoint(table,
                new Socket(new SafeSocketHandle(duplicate, ownsHandle: true)), NullLogger.Instance, accepting: false);
            // Told apart by readiness: the old one is ready, the new one not yet.
            old.Publish(Array.Empty<WorkerView>(), ready: true);
            successor.Publish(Array.Empty<WorkerView>(), ready: false);

            for (int i = 0; i < 5; i++) Assert.Equal(200, Readyz(port));
            old.StopAccepting();
            successor.StartAccepting();
            for (int i = 0; i < 5; i++) Assert.Equal(503, Readyz(port));
            old.Dispose();
            for (int i = 0; i < 5; i++) Assert.Equal(503, Readyz(port));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static int Readyz(int port)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.ReceiveTimeout = 5000;
        client.Connect(IPAddress.Loopback, port);
        client.Send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"u8);
        var response = new MemoryStream();
        var buffer = new byte[1024];
        for (int n; (n = client.Receive(buffer)) > 0;) response.Write(buffer, 0, n);
        return int.Parse(Encoding.ASCII.GetString(response.ToArray()).Split(' ')[1]);
    }
}
