using System.Diagnostics;
using System.Text.Json;

namespace SharpWsgi.Python;

/// <summary>
/// Chooses the interpreter the workers run in, and (for --version and the in-process test hosts) asks it for its
/// version, prefixes, sys.path and shared libpython, if it has one. The order (first match wins) is the one a
/// console script's shebang gives Python tools:
/// --python; the interpreter that ran `python -m sharpwsgi` (it sets <see cref="LauncherVariable"/>);
/// the virtualenv this executable is installed in (venv/bin/sharpwsgi, as pip puts it, even without
/// activation); $VIRTUAL_ENV/bin/python; python3 on PATH. The executable's own venv comes before $VIRTUAL_ENV
/// because naming venv/bin/sharpwsgi is as explicit as naming venv/bin/gunicorn, whose shebang ignores it.
/// </summary>
public static class PythonLocator
{
    private const string Probe = """
import sys, sysconfig, json, os
v = sysconfig.get_config_var
print(json.dumps({
  "executable": os.path.realpath(sys.executable),
  "version": sys.version.split()[0],
  "major": sys.version_info[0], "minor": sys.version_info[1],
  "prefix": sys.prefix, "exec_prefix": sys.exec_prefix,
  "base_prefix": getattr(sys, "base_prefix", sys.prefix),
  "base_exec_prefix": getattr(sys, "base_exec_prefix", sys.exec_prefix),
  "path": [p for p in sys.path if p],
  "libdir": v("LIBDIR") or "", "ldlibrary": v("LDLIBRARY") or "", "instsoname": v("INSTSONAME") or "",
  "multiarch": v("MULTIARCH") or "", "libpl": v("LIBPL") or "",
  "implementation": sys.implementation.name,
  "gil_disabled": bool(v("Py_GIL_DISABLED")),
  "shared": bool(v("Py_ENABLE_SHARED")),
}))
""";

    /// <summary>Set by the wheel's `python -m sharpwsgi` to its sys.executable (not a setting: a launcher's hint,
    /// below --python from any source).</summary>
    public const string LauncherVariable = "SHARPWSGI_LAUNCHER_PYTHON";

    /// <summary>The interpreter to use and how it was chosen (for messages).</summary>
    public static (string Path, string Source) Choose(string? explicitPython)
        => Choose(explicitPython, Environment.GetEnvironmentVariable, Environment.ProcessPath);

    /// <summary><see cref="Choose(string?)"/> with the environment and the executable's path given (tests).
    /// </summary>
    public static (string Path, string Source) Choose(string? explicitPython, Func<string, string?> environment,
        string? processPath)
    {
        if (!string.IsNullOrEmpty(explicitPython))
        {
            var p = explicitPython;
            if (Directory.Exists(p)) p = Path.Combine(p, "bin", "python");
            return (p, "--python");
        }
        var launcher = environment(LauncherVariable);
        if (!string.IsNullOrEmpty(launcher))
            return (launcher, "python -m sharpwsgi");
        if (OwnVirtualEnv(processPath) is { } own)
            return (own, "the virtualenv sharpwsgi is installed in");
        var venv = environment("VIRTUAL_ENV");
        if (!string.IsNullOrEmpty(venv))
            return (Path.Combine(venv, "bin", "python"), "$VIRTUAL_ENV");
        foreach (var dir in (environment("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "python3");
            if (File.Exists(candidate)) return (candidate, "PATH");
        }
        throw new PythonStartupException(
            "No Python interpreter found: there is no python3 on PATH, sharpwsgi is not installed in a virtualenv, " +
            "and neither --python nor $VIRTUAL_ENV is set. Install CPython 3.9 or newer with its shared library " +
            "(on Debian: apt-get install python3 libpython3.11) or pass --python /path/to/python3.");
    }

    /// <summary>venv/bin/python when the executable lives in venv/bin and venv/pyvenv.cfg exists (what marks a
    /// virtualenv, PEP 405). The workers are this same executable, so they make the same choice.</summary>
    public static string? OwnVirtualEnv(string? processPath)
    {
        if (string.IsNullOrEmpty(processPath)) return null;
        var bin = Path.GetDirectoryName(processPath);
        var root = bin == null ? null : Path.GetDirectoryName(bin);
        if (bin == null || root == null || !File.Exists(Path.Combine(root, "pyvenv.cfg"))) return null;
        foreach (var name in new[] { "python", "python3" })
        {
            var candidate = Path.Combine(bin, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static PythonInfo Describe(string interpreter, string source)
    {
        if (!File.Exists(interpreter))
            throw new PythonStartupException(
                $"Python interpreter not found: {interpreter} (chosen by {source}) does not exist. " +
                "Pass --python with the path of a CPython 3.9+ executable, or activate a virtualenv.");
        string stdout, stderr;
        try
        {
            var psi = new ProcessStartInfo(interpreter)
            {
                RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(Probe);
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var outTask = p.StandardOutput.ReadToEndAsync();
            var errTask = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(30_000))
            {
                p.Kill();
                throw new PythonStartupException(
                    $"{interpreter} did not answer within 30 s when asked for its configuration.");
            }
            stdout = outTask.Result; stderr = errTask.Result;
            if (p.ExitCode != 0)
                throw new PythonStartupException(
                    $"{interpreter} (chosen by {source}) failed when asked for its configuration " +
                    $"(exit code {p.ExitCode}): {stderr.Trim()} " +
                    "It must be CPython 3.9 or newer.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new PythonStartupException($"Could not run {interpreter} (chosen by {source}): {e.Message}. " +
                "It must be an executable CPython 3.9+ interpreter.");
        }

        JsonElement j;
        try { j = JsonDocument.Parse(stdout.Trim().Split('\n').Last()).RootElement; }
        catch (Exception)
        {
            throw new PythonStartupException(
                $"{interpreter} (chosen by {source}) did not describe itself as CPython does; it printed: " +
                $"{stdout.Trim()} {stderr.Trim()}");
        }
        string S(string name) => j.GetProperty(name).GetString() ?? "";
        var major = j.GetProperty("major").GetInt32();
        var minor = j.GetProperty("minor").GetInt32();
        var version = S("version");
        var impl = S("implementation");
        if (impl != "cpython")
            throw new PythonStartupException(
                $"{interpreter} is {impl} {version}; SharpWsgi runs CPython 3.9 or newer only.");
        if (major != 3 || minor < 9)
            throw new PythonStartupException(
                $"{interpreter} is Python {version}, which is too old: SharpWsgi needs CPython 3.9 or newer. " +
                "Pass --python with a newer interpreter.");
        if (j.GetProperty("gil_disabled").GetBoolean())
            throw new PythonStartupException($"{interpreter} is a free-threaded build of Python {version}; " +
                "SharpWsgi supports the default (GIL) builds.");

        // A static build (the workers' usual case) has no libpython of its own: "" then. Only a host that is not
        // python (the in-process tests) needs one, and another build's library would not match its stdlib.
        var lib = (j.GetProperty("shared").GetBoolean() ? FindLibPython(j, major, minor) : null) ?? "";

        return new PythonInfo(
            S("executable"), version, major, minor, S("prefix"), S("exec_prefix"), S("base_prefix"),
            S("base_exec_prefix"),
            j.GetProperty("path").EnumerateArray().Select(e => e.GetString() ?? "").Where(s => s.Length > 0).ToList(),
            lib, impl, false);
    }

    private static string? FindLibPython(JsonElement j, int major, int minor)
    {
        string S(string name) => j.GetProperty(name).GetString() ?? "";
        var names = new List<string>();
        foreach (var n in new[] { S("instsoname"), S("ldlibrary") })
            if (n.Contains(".so")) names.Add(n);
        names.Add($"libpython{major}.{minor}.so.1.0");
        names.Add($"libpython{major}.{minor}.so");
        var dirs = new List<string> { S("libdir"), Path.Combine(S("base_prefix"), "lib"), S("libpl") };
        if (S("multiarch").Length > 0)
        {
            dirs.Add(Path.Combine("/usr/lib", S("multiarch")));
            dirs.Add(Path.Combine("/lib", S("multiarch")));
        }
        foreach (var d in dirs.Where(d => d.Length > 0).Distinct())
            foreach (var n in names.Distinct())
            {
                var candidate = Path.Combine(d, n);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }
}
