using System.IO.Compression;
using System.Text.RegularExpressions;
using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Packaging;

/// <summary>
/// The .deb (./package.sh --deb; test.sh builds it) installed with apt-get, then its unit started the way systemd
/// would: systemd is not PID 1 here, so the test reads sharpwsgi@.service and sharpwsgi@.socket for an instance,
/// checks them with systemd-analyze verify, and runs the service's ExecStart with its EnvironmentFile, its User
/// and Group (setpriv), systemd's default PATH and the socket unit's ListenStream handed over as systemd does it
/// (systemd-socket-activate: fd 3, LISTEN_FDS, LISTEN_PID). Not tested: systemd itself (ordering, Restart=,
/// the sandboxing options, reload through systemctl). The package is removed afterwards if this test installed it.
/// </summary>
public class DebTests
{
    private const string SystemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

    [Fact]
    public void Deb_InstalledWithApt_UnitServesSampleAppThroughItsSocket()
    {
        var dist = Path.Combine(ServerProcess.RepoRoot, "dist");
        var debs = Directory.Exists(dist) ? Directory.GetFiles(dist, "sharpwsgi_*_amd64.deb") : Array.Empty<string>();
        Assert.True(debs.Length == 1, "expected one dist/sharpwsgi_*_amd64.deb: run ./package.sh --deb (test.sh does)");
        Assert.True(Environment.UserName == "root", "apt-get install needs root (CI runs as root)");

        var wasInstalled = Proc.Run("dpkg-query", new[] { "-W", "-f=${Status}", "sharpwsgi" }).Stdout
            .Contains("install ok installed");
        var instance = $"sharpwsgitest{Environment.ProcessId}";
        var envFile = $"/etc/sharpwsgi/{instance}.env";
        var work = Directory.CreateTempSubdirectory("sharpwsgi-deb-").FullName;
        try
        {
            var apt = Proc.Run("apt-get", new[] { "install", "-y", "-q", "--no-install-recommends", debs[0] },
                TimeSpan.FromMinutes(5), environment: new Dictionary<string, string?>
                    { ["DEBIAN_FRONTEND"] = "noninteractive" });
            Assert.True(apt.ExitCode == 0, apt.Stdout + apt.Stderr);

            // The man page is the registry's, as the installed binary prints it.
            using (var gz = new GZipStream(File.OpenRead("/usr/share/man/man1/sharpwsgi.1.gz"),
                       CompressionMode.Decompress))
            using (var reader = new StreamReader(gz))
                Assert.Equal(Proc.Run("/usr/bin/sharpwsgi", new[] { "--print-man-page" }).Stdout, reader.ReadToEnd());

            // The instance's units, as systemd would instantiate them, must pass systemd's own checker.
            var service = File.ReadAllText("/lib/systemd/system/sharpwsgi@.service").Replace("%i", instance);
            var socket = File.ReadAllText("/lib/systemd/system/sharpwsgi@.socket").Replace("%i", instance);
            File.WriteAllText(Path.Combine(work, $"sharpwsgi@{instance}.service"), service);
            File.WriteAllText(Path.Combine(work, $"sharpwsgi@{instance}.socket"), socket);

            var app = Path.Combine(work, "hello.py");
            File.Copy(Path.Combine(ServerProcess.ExamplesDir, "hello.py"), app);
            File.SetUnixFileMode(work, (UnixFileMode)0x1ED); // 0755: the unit's user (www-data) reads the app
            File.WriteAllText(envFile, $"# written by DebTests\nSHARPWSGI_APP={app}\nSHARPWSGI_WORKERS=2\n");
            var verify = Proc.Run("systemd-analyze", new[]
            {
                "verify", Path.Combine(work, $"sharpwsgi@{instance}.service"),
                Path.Combine(work, $"sharpwsgi@{instance}.socket"),
            });
            Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);

            var user = Key(service, "User");
            var group = Key(service, "Group");
            Assert.Equal(envFile, Key(service, "EnvironmentFile"));
            var listen = Key(socket, "ListenStream");
            Directory.CreateDirectory(Path.GetDirectoryName(listen)!); // systemd makes a socket's directory
            var args = new List<string> { "-l", listen, "-E", $"PATH={SystemdPath}" };
            foreach (var line in File.ReadAllLines(envFile))
                if (line.Contains('=') && !line.TrimStart().StartsWith('#')) { args.Add("-E"); args.Add(line.Trim()); }
            args.AddRange(new[] { "setpriv", $"--reuid={user}", $"--regid={group}", "--init-groups" });
            args.AddRange(Key(service, "ExecStart").Split(' ', StringSplitOptions.RemoveEmptyEntries));

            using var server = ServerProcess.Start(args, executable: "systemd-socket-activate",
                waitForListening: false);
            // As under systemd, the server is started by the first connection (systemd-socket-activate execs it
            // then): that request waits in the socket's backlog until a worker has imported the app.
            server.WaitForOutput(new Regex("^Listening on "), TimeSpan.FromSeconds(30));
            var curl = Proc.Run("curl", new[] { "-sS", "--max-time", "60", "--unix-socket", listen, "http://app/" });
            Assert.True(curl.ExitCode == 0, curl.Stderr + server.Output);
            Assert.Equal("Hello world!", curl.Stdout.Trim());
            server.WaitForOutput("Listening at: ");

            // The server runs as the unit's user, and TERM (systemd's stop) is a clean exit.
            var uid = File.ReadLines($"/proc/{server.Pid}/status").First(l => l.StartsWith("Uid:"))
                .Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];
            Assert.Equal(Proc.Run("id", new[] { "-u", user }).Stdout.Trim(), uid);
            Signals.Send(server.Pid, 15);
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(40)));
            File.Delete(listen);
        }
        finally
        {
            File.Delete(envFile);
            Directory.Delete(work, recursive: true);
            if (!wasInstalled) Proc.Run("dpkg", new[] { "--purge", "sharpwsgi" });
        }
    }

    /// <summary>The last value of a unit file key (systemd lets a later line override an earlier one).</summary>
    private static string Key(string unit, string key)
    {
        var matches = Regex.Matches(unit, $@"^{key}=(.*)$", RegexOptions.Multiline);
        Assert.True(matches.Count > 0, $"{key}= missing from the unit");
        return matches[^1].Groups[1].Value.Trim();
    }
}
