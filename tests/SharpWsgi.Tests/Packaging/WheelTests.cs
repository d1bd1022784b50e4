using SharpWsgi.Tests.Infrastructure;

namespace SharpWsgi.Tests.Packaging;

/// <summary>The wheel (./package.sh; test.sh builds it first) installed with pip into fresh Debian venvs, offline,
/// then served from as a user would: venv/bin/sharpwsgi with no --python and no VIRTUAL_ENV, and
/// python -m sharpwsgi. Two venvs: a plain one, and one with --system-site-packages that sees Debian's Django.
/// </summary>
public sealed class WheelFixture : IDisposable
{
    public const string SystemPython = "/usr/bin/python3";
    public string Root { get; } = Directory.CreateTempSubdirectory("sharpwsgi-wheel-").FullName;
    public string Wheel { get; }
    public string Venv => Path.Combine(Root, "venv");
    public string SystemVenv => Path.Combine(Root, "venv-system");
    public string ProbeApp => Path.Combine(Root, "probe.py");

    public WheelFixture()
    {
        var dist = Path.Combine(ServerProcess.RepoRoot, "dist");
        var wheels = Directory.Exists(dist) ? Directory.GetFiles(dist, "sharpwsgi-*.whl") : Array.Empty<string>();
        if (wheels.Length != 1)
            throw new InvalidOperationException(
                $"expected one dist/sharpwsgi-*.whl, found {wheels.Length}: run ./package.sh (test.sh does)");
        Wheel = wheels[0];
        foreach (var (venv, extra) in new[] { (Venv, ""), (SystemVenv, "--system-site-packages") })
        {
            var args = new List<string> { "-m", "venv" };
            if (extra.Length > 0) args.Add(extra);
            args.Add(venv);
            Check(Proc.Run(SystemPython, args), "python3 -m venv");
            Check(Proc.Run(Path.Combine(venv, "bin", "pip"),
                new[] { "install", "--no-index", "--disable-pip-version-check", "-q", Wheel }), "pip install");
        }
        // Reads the distribution that only the venv has: proves the venv's site-packages, not only its prefix.
        // (Not `import sharpwsgi`: inside the server that name is the server's runtime module, RequestTimeout.)
        File.WriteAllText(ProbeApp, """
            import sys, importlib.metadata as metadata
            def application(environ, start_response):
                dist = metadata.distribution("sharpwsgi")
                body = "\n".join([sys.prefix, dist.version, str(dist.locate_file("sharpwsgi"))]).encode()
                start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
                return [body]
            """);
    }

    private static void Check(Proc.Result r, string what)
    {
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"{what} failed ({r.ExitCode}): {r.Stdout} {r.Stderr}");
    }

    /// <summary>A user's shell outside any venv: no VIRTUAL_ENV, and python3 on PATH is Debian's (were the venv
    /// not found, the server would embed /usr/bin/python3 and the probe would say so).</summary>
    public static Dictionary<string, string?> PlainEnvironment() => new()
    {
        ["VIRTUAL_ENV"] = null, ["SHARPWSGI_PYTHON"] = null, ["SHARPWSGI_LAUNCHER_PYTHON"] = null,
        ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
    };

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

public class WheelTests : IClassFixture<WheelFixture>
{
    private readonly WheelFixture _f;
    public WheelTests(WheelFixture fixture) => _f = fixture;

    [Fact]
    public void Wheel_Name_HasVersionAndManylinuxTagOfThisGlibc()
    {
        var glibc = Proc.Run("getconf", new[] { "GNU_LIBC_VERSION" }).Stdout.Trim().Split(' ')[1].Split('.');
        Assert.Equal($"sharpwsgi-{ExpectedVersion()}-py3-none-manylinux_{glibc[0]}_{glibc[1]}_x86_64.whl",
            Path.GetFileName(_f.Wheel));
    }

    [Fact]
    public void Wheel_Metadata_PassesTwineCheck()
    {
        // twine (Debian's) checks the metadata a registry would render (README as text/markdown) and reject.
        var r = Proc.Run("twine", new[] { "check", "--strict", _f.Wheel });
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("PASSED", r.Stdout);
    }

    [Fact]
    public void InstalledBinary_CalledDirectlyWithoutVirtualEnv_ServesWithTheVenvsPython()
    {
        var exe = Path.Combine(_f.Venv, "bin", "sharpwsgi");
        // Two workers: they are this executable started again, so they must make the same choice.
        using var server = ServerProcess.Start(new[] { "-b", "127.0.0.1:0", "-w", "2", _f.ProbeApp },
            WheelFixture.PlainEnvironment(), executable: exe);
        var lines = ProbeLines(server);
        Assert.Equal(_f.Venv, lines[0]);
        Assert.Equal(ExpectedVersion(), lines[1]);
        Assert.StartsWith(Path.Combine(_f.Venv, "lib"), lines[2]);
    }

    [Fact]
    public void PythonDashM_WithoutVirtualEnv_ServesWithThatInterpreter()
    {
        var python = Path.Combine(_f.Venv, "bin", "python");
        using var server = ServerProcess.Start(new[] { "-m", "sharpwsgi", "--bind", "127.0.0.1:0", _f.ProbeApp },
            WheelFixture.PlainEnvironment(), executable: python);
        Assert.Equal(_f.Venv, ProbeLines(server)[0]);
    }

    [Fact]
    public void InstalledBinary_Version_NamesTheVenvsPythonAndHowItWasChosen()
    {
        var r = Proc.Run(Path.Combine(_f.Venv, "bin", "sharpwsgi"), new[] { "--version" },
            environment: WheelFixture.PlainEnvironment());
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith($"sharpwsgi {ExpectedVersion()} (commit ", r.Stdout);
        Assert.Contains("NativeAOT", r.Stdout);
        Assert.Contains($"{_f.Venv}/bin/python (chosen by the virtualenv sharpwsgi is installed in)", r.Stdout);

        var viaModule = Proc.Run(Path.Combine(_f.Venv, "bin", "python"), new[] { "-m", "sharpwsgi", "--version" },
            environment: WheelFixture.PlainEnvironment());
        Assert.Contains($"{_f.Venv}/bin/python (chosen by python -m sharpwsgi)", viaModule.Stdout);
    }

    [Fact]
    public void InstalledBinary_ExplicitPython_WinsOverItsOwnVenv()
    {
        var r = Proc.Run(Path.Combine(_f.Venv, "bin", "sharpwsgi"),
            new[] { "--python", WheelFixture.SystemPython, "--version" }, environment: WheelFixture.PlainEnvironment());
        Assert.Contains($"{WheelFixture.SystemPython} (chosen by --python)", r.Stdout);
    }

    [Fact]
    public void SystemSitePackagesVenv_DjangoProject_ServesIndex()
    {
        var exe = Path.Combine(_f.SystemVenv, "bin", "sharpwsgi");
        using var server = ServerProcess.Start(new[]
            {
                "-b", "127.0.0.1:0", "--chdir", Path.Combine(ServerProcess.ExamplesDir, "django_project"),
                "mysite.wsgi:application",
            }, WheelFixture.PlainEnvironment(), executable: exe);
        var r = Http.Get(server.Port, "/");
        Assert.Equal(200, r.Status);
        Assert.Contains("Hello from Django", r.BodyText);
        Assert.Contains($"{_f.SystemVenv}/bin/python", server.Output + VersionOf(exe));
    }

    private static string VersionOf(string exe)
        => Proc.Run(exe, new[] { "--version" }, environment: WheelFixture.PlainEnvironment()).Stdout;

    private static string[] ProbeLines(ServerProcess server)
    {
        var r = Http.Get(server.Port, "/");
        Assert.True(r.Status == 200, r.BodyText + "\n" + server.Output);
        return r.BodyText.Split('\n');
    }

    private static string ExpectedVersion()
    {
        var props = File.ReadAllText(Path.Combine(ServerProcess.RepoRoot, "Directory.Build.props"));
        return System.Text.RegularExpressions.Regex.Match(props, "<Version>(.*)</Version>").Groups[1].Value;
    }
}
