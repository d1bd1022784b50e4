using System.Diagnostics;
using System.Text.Json;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// A worker frozen in a C call that holds the GIL (tests/apps/freeze.py) takes no new connection: it accepts only
/// after its Python has proved it runs, so the connections go to its sibling on the shared socket, and the requests
/// it already holds but has not given to Python (on connections it accepted earlier) are answered by a sibling.
/// </summary>
public sealed class FrozenWorkerTests
{
    private static readonly string App = Path.Combine(ServerProcess.AppsDir, "freeze.py");
    private readonly ITestOutputHelper _out;

    public FrozenWorkerTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void FrozenWorker_NewConnectionsAllGoToItsSibling_NoneWaits()
    {
        var marker = Path.Combine(Path.GetTempPath(), $"sharpwsgi-freeze-{Guid.NewGuid():N}");
        using var server = ServerProcess.StartApp(App, "-w", "2", "--timeout", "60");
        server.WaitForOutput("Ready: 2 worker");
        var freeze = Task.Run(() =>
        {
            using var client = new RawHttp(server.Port, TimeSpan.FromSeconds(60));
            client.Send($"GET /freeze?s=4&marker={marker} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            return client.ReadResponse();
        });
        try
        {
            var waited = Stopwatch.StartNew();
            while (!File.Exists(marker))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "the freeze request never reached the app");
                Thread.Sleep(20); // a poll interval: the marker file is what is awaited
            }
            var frozenPid = File.ReadAllText(marker);

            // Fresh connections, one after another, while the worker is frozen and before its heartbeat is late
            // (2 s: after that it stops accepting anyway). Before accepting waited for Python, about half of
            // them were accepted by the frozen worker and hung.
            var clock = Stopwatch.StartNew();
            var answered = 0;
            while (clock.Elapsed < TimeSpan.FromSeconds(1.5))
            {
                var sent = clock.Elapsed;
                using var client = new RawHttp(server.Port, TimeSpan.FromSeconds(1));
                client.Send("GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                RawResponse response;
                try { response = client.ReadResponse(); }
                catch (IOException e)
                {
                    throw new Xunit.Sdk.XunitException(
                        $"a request sent {sent.TotalSeconds:0.000}s into the freeze got no answer within 1 s " +
                        $"({e.Message}); {answered} had been answered");
                }
                Assert.Equal(200, response.Status);
                Assert.NotEqual(frozenPid, response.BodyText);
                answered++;
            }
            _out.WriteLine($"{answered} requests on fresh connections answered by the other worker during the freeze");
            Assert.True(answered >= 10, $"only {answered} requests in 1.5 s");

            // The frozen worker comes back and answers what it was running.
            var frozen = freeze.Result;
            Assert.Equal(200, frozen.Status);
            Assert.Equal(frozenPid, frozen.BodyText);
            server.WaitForOutput($@"Worker {frozenPid}: Python is not responsive", TimeSpan.FromSeconds(5));
        }
        finally
        {
            File.Delete(marker);
        }
    }

    private static string Get(RawHttp client, string target, string extraHeaders = "")
    {
        client.Send($"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extraHeaders}\r\n");
        var response = client.ReadResponse();
        Assert.Equal(200, response.Status);
        return response.BodyText;
    }

    private static string WaitForMarker(string marker)
    {
        var waited = Stopwatch.StartNew();
        while (!File.Exists(marker))
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "the freeze request never reached the app");
            Thread.Sleep(20); // a poll interval: the marker file is what is awaited
        }
        return File.ReadAllText(marker);
    }

    [Fact]
    public void FrozenWorker_RequestOnAConnectionItHolds_IsAnsweredByItsSiblingWithTheClientsAddress()
    {
        var marker = Path.Combine(Path.GetTempPath(), $"sharpwsgi-freeze-{Guid.NewGuid():N}");
        using var server = ServerProcess.StartApp(App, "-w", "2", "--timeout", "60");
        server.WaitForOutput("Ready: 2 worker");
        // Two keep-alive connections to the same worker: one to freeze it, one whose next request it then holds.
        var clients = new List<RawHttp>();
        try
        {
            RawHttp? freezer = null, held = null;
            var pidOf = new Dictionary<RawHttp, string>();
            for (var i = 0; i < 40 && held == null; i++)
            {
                var client = new RawHttp(server.Port, TimeSpan.FromSeconds(10));
                clients.Add(client);
                pidOf[client] = Get(client, "/fast");
                var same = clients.FirstOrDefault(c => c != client && pidOf[c] == pidOf[client]);
                if (same != null) (freezer, held) = (same, client);
            }
            Assert.NotNull(held);
            var heldPid = pidOf[held!];
            var freeze = Task.Run(() => Get(freezer!, $"/freeze?s=4&marker={marker}"));
            Assert.Equal(heldPid, WaitForMarker(marker));

            var clock = Stopwatch.StartNew();
            var who = JsonDocument.Parse(Get(held, "/whoami")).RootElement;
            _out.WriteLine($"answered in {clock.Elapsed.TotalMilliseconds:0} ms: {who}");
            Assert.NotEqual(heldPid, who.GetProperty("pid").GetInt32().ToString());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
            // The sibling saw the client, not the frozen worker's own connection to it, and no handover header.
            Assert.Equal("127.0.0.1", who.GetProperty("remote_addr").GetString());
            Assert.Equal(((System.Net.IPEndPoint)held.Socket.LocalEndPoint!).Port.ToString(),
                who.GetProperty("remote_port").GetString());
            Assert.DoesNotContain(who.GetProperty("headers").EnumerateArray(),
                h => h.GetString()!.Contains("HANDOVER"));
            Assert.Equal(heldPid, freeze.Result);
            server.WaitForOutput($"Worker {heldPid}: Python has not responded", TimeSpan.FromSeconds(5));
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
            File.Delete(marker);
        }
    }

    [Fact]
    public void HandoverHeaderFromAClient_IsDroppedAndNotTrusted()
    {
        using var server = ServerProcess.StartApp(App, "-w", "2");
        using var client = new RawHttp(server.Port, TimeSpan.FromSeconds(10));
        var who = JsonDocument.Parse(Get(client, "/whoami", "SharpWsgi-Handover: 00ff 10.9.8.7 4242\r\n"))
            .RootElement;
        Assert.Equal("127.0.0.1", who.GetProperty("remote_addr").GetString());
        Assert.NotEqual("4242", who.GetProperty("remote_port").GetString());
        Assert.DoesNotContain(who.GetProperty("headers").EnumerateArray(), h => h.GetString()!.Contains("HANDOVER"));
    }
}
