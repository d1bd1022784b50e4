using SharpWsgi.Python;

namespace SharpWsgi.Python.Tests;

/// <summary>The interpreter order (PythonLocator.Choose): --python, python -m sharpwsgi's interpreter, the venv
/// the executable lives in, $VIRTUAL_ENV, python3 on PATH. Fake directory trees; no interpreter is run.</summary>
public sealed class InterpreterChoiceTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("sharpwsgi-choice-").FullName;

    private string Venv(string name, bool marker = true)
    {
        var bin = Path.Combine(_root, name, "bin");
        Directory.CreateDirectory(bin);
        File.WriteAllText(Path.Combine(bin, "python"), "");
        File.WriteAllText(Path.Combine(bin, "sharpwsgi"), "");
        if (marker) File.WriteAllText(Path.Combine(_root, name, "pyvenv.cfg"), "home = /usr/bin\n");
        return Path.Combine(_root, name);
    }

    private static Func<string, string?> Env(params (string Name, string Value)[] vars)
        => name => vars.Where(v => v.Name == name).Select(v => v.Value).FirstOrDefault();

    [Fact]
    public void Choose_ExecutableInsideVenv_PicksThatVenvsPython()
    {
        var venv = Venv("app");
        var (path, source) = PythonLocator.Choose(null, Env(("PATH", "/usr/bin")), $"{venv}/bin/sharpwsgi");
        Assert.Equal($"{venv}/bin/python", path);
        Assert.Equal("the virtualenv sharpwsgi is installed in", source);
    }

    [Fact]
    public void Choose_OwnVenvAndVirtualEnvBoth_OwnVenvWins()
    {
        var own = Venv("own");
        var active = Venv("active");
        var (path, _) = PythonLocator.Choose(null, Env(("VIRTUAL_ENV", active)), $"{own}/bin/sharpwsgi");
        Assert.Equal($"{own}/bin/python", path);
    }

    [Fact]
    public void Choose_DirectoryWithoutPyvenvCfg_IsNotAVenv()
    {
        var notVenv = Venv("plain", marker: false);
        var active = Venv("active");
        var (path, source) = PythonLocator.Choose(null, Env(("VIRTUAL_ENV", active)), $"{notVenv}/bin/sharpwsgi");
        Assert.Equal($"{active}/bin/python", path);
        Assert.Equal("$VIRTUAL_ENV", source);
    }

    [Fact]
    public void Choose_LauncherVariable_WinsOverOwnVenvButNotOverPythonSetting()
    {
        var own = Venv("own");
        var env = Env((PythonLocator.LauncherVariable, "/opt/py/bin/python3"));
        Assert.Equal(("/opt/py/bin/python3", "python -m sharpwsgi"),
            PythonLocator.Choose(null, env, $"{own}/bin/sharpwsgi"));
        Assert.Equal(("/usr/bin/python3", "--python"),
            PythonLocator.Choose("/usr/bin/python3", env, $"{own}/bin/sharpwsgi"));
    }

    [Fact]
    public void Choose_NothingFound_ThrowsOneParagraph()
    {
        var e = Assert.Throws<PythonStartupException>(() =>
            PythonLocator.Choose(null, Env(("PATH", Path.Combine(_root, "empty"))), "/usr/bin/sharpwsgi"));
        Assert.DoesNotContain("\n", e.Message);
        Assert.Contains("--python", e.Message);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

