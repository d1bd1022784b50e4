using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// Listening sockets handed to sharpwsgi by its parent, as systemd socket activation (LISTEN_FDS/LISTEN_PID)
/// and `--bind fd://N` do. The test process plays the parent: it binds, listens, and lets the descriptor
/// survive exec.
/// </summary>
public class SocketActivationTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private static (Socket Socket, int Fd, int Port) InheritableListener()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(128);
        var fd = (int)socket.Handle;
        Assert.True(fcntl(fd, 2 /* F_SETFD */, 0) >= 0, "could not clear FD_CLOEXEC");
        return (socket, fd, ((IPEndPoint)socket.LocalEndPoint!).Port);
    }

    private static string Get(int port)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        return client.GetStringAsync($"http://127.0.0.1:{port}/").GetAwaiter().GetResult();
    }

    [Fact]
    public void BindFd_InheritedListeningSocket_ServesOnIt()
    {
        var (socket, fd, port) = InheritableListener();
        using (socket)
        using (var server = ServerProcess.Start(new[]
            { "--bind", $"fd://{fd}", "-w", "2", Path.Combine(ServerProcess.ExamplesDir, "hello.py") }))
        {
            Assert.Equal(port, server.Port);
            Assert.Equal("Hello world!\n", Get(port));
        }
    }

    [Fact]
    public void SystemdActivation_ListenFdsForThisPid_ServesOnDescriptorThree()
    {
        var (socket, fd, port) = InheritableListener();
        using (socket)
        {
            // bash sets LISTEN_PID to its own pid, then execs sharpwsgi (same pid) with the socket moved to fd 3.
            var script = $"export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\" 3<&{fd}";
            var psi = new ProcessStartInfo("/bin/bash")
                { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { "-c", script, ServerProcess.Executable,
                Path.Combine(ServerProcess.ExamplesDir, "hello.py") })
                psi.ArgumentList.Add(a);
            using var process = Process.Start(psi)!;
            var output = new System.Text.StringBuilder();
            var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnLine(string? line)
            {
                if (line == null) return;
                lock (output) output.AppendLine(line);
                if (line.Contains("Listening at: ")) listening.TrySetResult(line);
            }
            process.OutputDataReceived += (_, e) => OnLine(e.Data);
            process.ErrorDataReceived += (_, e) => OnLine(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                var first = Task.WaitAny(new Task[] { listening.Task, process.WaitForExitAsync() },
                    TimeSpan.FromSeconds(60));
                Assert.True(first == 0, "no Listening line:\n" + output);
                Assert.Contains($"127.0.0.1:{port}", listening.Task.Result);
                Assert.Equal("Hello world!\n", Get(port));
            }
            finally
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
    }

    [Fact]
    public void UnixSocket_Bind_ServesOverTheSocketFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sharpwsgi-test-{Guid.NewGuid():N}.sock");
        using (var server = ServerProcess.Start(
            new[] { "--bind", "unix:" + path, Path.Combine(ServerProcess.ExamplesDir, "hello.py") },
            timeout: TimeSpan.FromSeconds(60)))
        {
            using var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            };
            using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
            Assert.Equal("Hello world!\n", client.GetStringAsync("http://localhost/").GetAwaiter().GetResult());
            Assert.Equal(0, kill(server.Pid, 15 /* SIGTERM */));
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(30)));
        }
        Assert.False(File.Exists(path), "the socket file should be removed when the server stops");
    }
}
