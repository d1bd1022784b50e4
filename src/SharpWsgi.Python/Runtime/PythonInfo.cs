namespace SharpWsgi.Python;

/// <summary>What the chosen interpreter says about itself (asked once, in a subprocess, before loading it).</summary>
public sealed record PythonInfo(
    string Executable,
    string Version,
    int Major,
    int Minor,
    string Prefix,
    string ExecPrefix,
    string BasePrefix,
    string BaseExecPrefix,
    IReadOnlyList<string> SysPath,
    string LibPythonPath,
    string Implementation,
    bool FreeThreaded);
