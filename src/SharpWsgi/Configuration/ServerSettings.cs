using System.Globalization;
using SharpWsgi.Gateway;

namespace SharpWsgi.Configuration;

/// <summary>Thrown for a bad command line or environment value; printed as "sharpwsgi: error: ..." with exit
/// code 2.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message) : base(message) { }
}

/// <summary>Where an effective setting's value came from (--print-config).</summary>
public enum SettingSource { Default, File, Environment, CommandLine }

/// <summary>A setting's source and, for a human, where exactly: "config.ini:3", "SHARPWSGI_THREADS", "--threads".
/// </summary>
public sealed record SettingOrigin(SettingSource Source, string Where)
{
    public override string ToString() => Source switch
    {
        SettingSource.Default => "default",
        SettingSource.File => "file " + Where,
        SettingSource.Environment => "environment " + Where,
        _ => "command line " + Where,
    };
}

/// <summary>
/// The effective settings: registry defaults, then SHARPWSGI_* environment variables, then the command line
/// (each later source overrides the earlier; for repeatable settings the last source that names it wins).
/// </summary>
public sealed class ServerSettings
{
    private readonly Dictionary<string, List<string>> _values = new();
    public string? App { get; private set; }
    public bool ShowHelp { get; private set; }
    public bool ShowVersion { get; private set; }
    public bool PrintSettingsMarkdown { get; private set; }
    public bool PrintManPage { get; private set; }
    /// <summary>--check-config: validate everything, load the app in a throwaway worker, serve nothing.</summary>
    public bool CheckConfig { get; private set; }
    /// <summary>--print-config: print every effective setting and its source, then exit.</summary>
    public bool PrintConfig { get; private set; }

    // Kept beside the values, for --print-config only: the last source that set each setting.
    private readonly Dictionary<string, SettingOrigin> _origins = new();
    public SettingOrigin? AppOrigin { get; private set; }

    /// <summary>Where the effective value of a setting came from; null when it has none (no default, unset).
    /// </summary>
    public SettingOrigin? OriginOf(string name) => _origins.GetValueOrDefault(name);

    public static ServerSettings Parse(IReadOnlyList<string> args, IDictionary<string, string?> environment)
    {
        var s = new ServerSettings();
        foreach (var def in SettingsRegistry.All)
        {
            if (def.Default == null) continue;
            s._values[def.Name] = new() { def.Default };
            s._origins[def.Name] = new(SettingSource.Default, "");
        }

        // The config file (named on the command line or in SHARPWSGI_CONFIG) sits between defaults and the environment.
        s.ReadConfigFile(args, environment);

        foreach (var def in SettingsRegistry.All)
        {
            if (!environment.TryGetValue(def.EnvironmentVariable, out var raw) || raw == null) continue;
            var items = def.Repeatable
                ? raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                : new[] { raw.Trim() };
            foreach (var item in items) Check(def, item, $"environment variable {def.EnvironmentVariable}");
            s._values[def.Name] = items.ToList();
            s._origins[def.Name] = new(SettingSource.Environment, def.EnvironmentVariable);
        }
        if (environment.TryGetValue("SHARPWSGI_APP", out var envApp) && !string.IsNullOrWhiteSpace(envApp))
        {
            s.App = envApp;
            s.AppOrigin = new(SettingSource.Environment, "SHARPWSGI_APP");
        }

        var fromCommandLine = new HashSet<string>();
        for (int i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help") { s.ShowHelp = true; continue; }
            if (arg is "-v" or "--version") { s.ShowVersion = true; continue; }
            if (arg == "--print-settings-markdown") { s.PrintSettingsMarkdown = true; continue; }
            if (arg == "--print-man-page") { s.PrintManPage = true; continue; }
            // Actions, not settings: no environment variable or config file line can turn them on, so a
            // leftover SHARPWSGI_CHECK_CONFIG cannot stop a server from serving.
            if (arg == "--check-config") { s.CheckConfig = true; continue; }
            if (arg == "--print-config") { s.PrintConfig = true; continue; }
            if (arg.StartsWith('-') && arg.Length > 1)
            {
                string flag = arg;
                string? value = null;
                var eq = arg.IndexOf('=');
                if (arg.StartsWith("--") && eq > 0) { flag = arg[..eq]; value = arg[(eq + 1)..]; }
                var def = SettingsRegistry.ByFlag(flag) ??
                    throw new UsageException($"unrecognized option {flag} (see --help)");
                if (value == null)
                {
                    if (def.Kind == SettingKind.Flag) value = "true";
                    // --proxy-protocol alone (gunicorn's spelling) or followed by one of its values.
                    else if (def.BareValue != null &&
                             (i + 1 >= args.Count || def.Validate(args[i + 1]) != null)) value = def.BareValue;
                    else if (i + 1 < args.Count) value = args[++i];
                    else throw new UsageException($"option {flag} expects {def.Meta}");
                }
                Check(def, value, $"option {flag}");
                if (!def.Repeatable || fromCommandLine.Add(def.Name)) s._values[def.Name] = new();
                s._values[def.Name].Add(value);
                s._origins[def.Name] = new(SettingSource.CommandLine, flag);
                continue;
            }
            if (s.App != null && fromCommandLine.Contains("<app>"))
                throw new UsageException($"only one APP may be given, got '{s.App}' and '{arg}'");
            s.App = arg;
            s.AppOrigin = new(SettingSource.CommandLine, "APP");
            fromCommandLine.Add("<app>");
        }
        if (s.Get("paste") is { } paste)
        {
            if (s.App != null)
                throw new UsageException($"--paste {paste} names the app already; give no APP ('{s.App}') with it");
            // The worker's loader reads this spec; the path is made absolute here, before any --chdir.
            var (file, name) = (paste.Split('#', 2)[0], paste.Contains('#') ? "#" + paste.Split('#', 2)[1] : "");
            s.App = AppLoader.PastePrefix + Path.GetFullPath(file) + name;
            s.AppOrigin = s._origins["paste"];
        }
        return s;
    }

    private readonly HashSet<string> _fromConfig = new();
    /// <summary>The config file's full path, or python:MODULE.</summary>
    public string? ConfigFile { get; private set; }
    /// <summary>The Python config file (gunicorn's format) and its hooks, when -c named one.</summary>
    public PythonConfig? PythonConfig { get; private set; }
    private readonly List<(bool Warning, string Text)> _configMessages = new();
    /// <summary>What reading the config file has to say: settings it names that are not taken (warnings, one line
    /// each), and that gunicorn's default file was read (information). Logged once, by the supervisor.</summary>
    public IReadOnlyList<(bool Warning, string Text)> ConfigMessages => _configMessages;

    /// <summary>Writes <see cref="ConfigMessages"/> to the log (the supervisor's, once).</summary>
    public void LogConfigMessages(Microsoft.Extensions.Logging.ILogger log)
    {
        foreach (var (warning, text) in _configMessages)
            if (warning) Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(log, "{Message}", text);
            else Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(log, "{Message}", text);
    }

    /// <summary>gunicorn reads this file from the working directory when no -c is given; so does SharpWsgi.</summary>
    public const string GunicornDefaultConfig = "gunicorn.conf.py";

    private void ReadConfigFile(IReadOnlyList<string> args, IDictionary<string, string?> environment)
    {
        var location = FindConfigPath(args, environment);
        // --help and --version work anywhere, without Python: a file nobody named is not executed for them.
        var informationOnly = args.Any(a => a is "-h" or "--help" or "-v" or "--version" or
            "--print-settings-markdown" or "--print-man-page");
        if (location == null && !informationOnly && File.Exists(GunicornDefaultConfig))
        {
            location = GunicornDefaultConfig;
            _configMessages.Add((false, $"Reading ./{GunicornDefaultConfig}, gunicorn's default config file " +
                "(-c names another)"));
        }
        if (location == null) return;
        if (!PythonConfig.IsPythonLocation(location))
        {
            ConfigFile = Path.GetFullPath(location);
            List<(Setting, string, int)> lines;
            try { lines = ReadNameValueFile(ConfigFile).ToList(); }
            catch (UsageException) when (File.Exists(ConfigFile) && PythonConfig.LooksLikePython(
                File.ReadAllText(ConfigFile)))
            {
                ReadPythonConfig(ConfigFile, args, environment);
                return;
            }
            foreach (var (def, value, line) in lines) SetFromFile(def, value, $"{ConfigFile}:{line}");
            return;
        }
        var full = location.StartsWith("python:", StringComparison.Ordinal) ? location
            : location.StartsWith("file:", StringComparison.Ordinal) ? "file:" + Path.GetFullPath(location[5..])
            : Path.GetFullPath(location);
        ConfigFile = full;
        ReadPythonConfig(full, args, environment);
    }

    private void SetFromFile(Setting def, string value, string where)
    {
        _origins[def.Name] = new(SettingSource.File, where);
        if (!_fromConfig.Add(def.Name) && def.Repeatable) { _values[def.Name].Add(value); return; }
        _values[def.Name] = new() { value };
    }

    /// <summary>
    /// A Python config file: executed by the interpreter the workers will run (--python from the command line or
    /// the environment, else the usual choice) in the --chdir directory, as gunicorn executes it after its chdir;
    /// then each module-level name that is a setting is taken: gunicorn's names as docs/gunicorn.md maps them,
    /// SharpWsgi's own with '_' for '-'.
    /// </summary>
    private void ReadPythonConfig(string location, IReadOnlyList<string> args, IDictionary<string, string?> environment)
    {
        var isWorker = environment.ContainsKey(WorkerProtocol.FdsVariable);
        var chdir = EarlyValue("chdir", args, environment);
        var workingDirectory = chdir != null && Directory.Exists(chdir) ? Path.GetFullPath(chdir)
            : Directory.GetCurrentDirectory();
        PythonConfig = PythonConfig.Load(location, isWorker, () =>
        {
            try { return SharpWsgi.Python.PythonLocator.Choose(EarlyValue("python", args, environment)).Path; }
            catch (SharpWsgi.Python.PythonStartupException e)
            {
                throw new UsageException($"reading the Python config file {location} needs a Python interpreter: " +
                    e.Message);
            }
        }, workingDirectory);
        var config = PythonConfig;
        var threadsNamed = config.Values.ContainsKey("threads");
        foreach (var (name, value) in config.Values)
        {
            var where = config.Where(name);
            IReadOnlyList<(string Setting, string Value)> pairs;
            if (GunicornSettings.Find(name) is { } gunicorn)
            {
                if (gunicorn.Treatment is GunicornTreatment.NotYet or GunicornTreatment.CannotApply)
                {
                    if (!GunicornSettings.IsDefault(gunicorn, value))
                        _configMessages.Add((true, GunicornSettings.Warning(gunicorn, value, where)));
                    continue;
                }
                if (gunicorn.Map == null) continue;
                try { pairs = gunicorn.Map(value).ToList(); }
                catch (GunicornValueException e)
                {
                    throw new UsageException($"{where}: {name} = {GunicornSettings.Describe(value)}: {e.Message}");
                }
            }
            else if (GunicornSettings.NativeSetting(name) is { } native) pairs = NativeValues(native, value, where);
            else continue;
            foreach (var (setting, text) in pairs)
            {
                switch (setting)
                {
                    case GunicornSettings.AppMarker:
                        App = text;
                        AppOrigin = new(SettingSource.File, where);
                        continue;
                    case GunicornSettings.SyncMarker:
                        if (!threadsNamed) SetFromFile(SettingsRegistry.ByName("threads")!, "1", where);
                        continue;
                    case GunicornSettings.WarningMarker:
                        _configMessages.Add((true, $"{where}: {name} = {GunicornSettings.Describe(value)} {text}"));
                        continue;
                }
                var def = SettingsRegistry.ByName(setting)!;
                Check(def, text, $"{where}: {name} = {GunicornSettings.Describe(value)}");
                SetFromFile(def, text, where);
            }
        }
    }

    /// <summary>A SharpWsgi setting named in a Python config file: a scalar, or a list for a repeatable one.
    /// </summary>
    private static IReadOnlyList<(string, string)> NativeValues(Setting def, System.Text.Json.JsonElement value,
        string where)
    {
        static string? Scalar(System.Text.Json.JsonElement v) => v.ValueKind switch
        {
            System.Text.Json.JsonValueKind.Null => null,
            System.Text.Json.JsonValueKind.String => v.GetString(),
            System.Text.Json.JsonValueKind.Number => v.GetRawText(),
            System.Text.Json.JsonValueKind.True => "true",
            System.Text.Json.JsonValueKind.False => "false",
            _ => throw new InvalidOperationException(),
        };
        try
        {
            if (value.ValueKind == System.Text.Json.JsonValueKind.Array && def.Repeatable)
                return value.EnumerateArray().Select(v => (def.Name, Scalar(v) ?? "")).ToList();
            return Scalar(value) is { } text ? [(def.Name, text)] : [];
        }
        catch (InvalidOperationException)
        {
            throw new UsageException($"{where}: {def.Name.Replace('-', '_')} = {GunicornSettings.Describe(value)}: " +
                $"expected {(def.Repeatable ? "a string, a number or a list of them" : "a string or a number")}");
        }
    }

    /// <summary>A setting's value from the command line or the environment, before the config file is read (the
    /// interpreter and the directory the file is executed with).</summary>
    private static string? EarlyValue(string name, IReadOnlyList<string> args, IDictionary<string, string?> environment)
    {
        string? value = null;
        var def = SettingsRegistry.ByName(name)!;
        if (environment.TryGetValue(def.EnvironmentVariable, out var fromEnv) && !string.IsNullOrEmpty(fromEnv))
            value = fromEnv;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == def.LongFlag && i + 1 < args.Count) value = args[i + 1];
            else if (args[i].StartsWith(def.LongFlag + "=", StringComparison.Ordinal))
                value = args[i][(def.LongFlag.Length + 1)..];
        }
        return value;
    }

    private static string? FindConfigPath(IReadOnlyList<string> args, IDictionary<string, string?> environment)
    {
        string? path = null;
        if (environment.TryGetValue("SHARPWSGI_CONFIG", out var fromEnv) && !string.IsNullOrWhiteSpace(fromEnv))
            path = fromEnv;
        for (int i = 0; i < args.Count; i++)
        {
            if ((args[i] is "-c" or "--config") && i + 1 < args.Count) path = args[i + 1];
            else if (args[i].StartsWith("--config=")) path = args[i]["--config=".Length..];
        }
        return path;
    }

    private static IEnumerable<(Setting, string, int)> ReadNameValueFile(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read the config file {path}: {e.Message}");
        }
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n];
            var hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            line = line.Trim();
            if (line.Length == 0) continue;
            var eq = line.IndexOf('=');
            if (eq <= 0) throw new UsageException($"{path}:{n + 1}: expected 'name = value'");
            var name = line[..eq].Trim().Replace('_', '-');
            var value = line[(eq + 1)..].Trim().Trim('"', '\'');
            var def = SettingsRegistry.ByName(name)
                      ?? throw new UsageException($"{path}:{n + 1}: unknown setting '{name}'");
            if (name == "config") throw new UsageException($"{path}:{n + 1}: a config file cannot name another");
            Check(def, value, $"{path}:{n + 1}");
            yield return (def, value, n + 1);
        }
    }

    private static void Check(Setting def, string value, string where)
    {
        var problem = def.Validate(value);
        if (problem != null) throw new UsageException($"{where}: {problem}, got '{value}'");
    }

    public string? Get(string name) => _values.TryGetValue(name, out var v) && v.Count > 0 ? v[^1] : null;
    public IReadOnlyList<string> GetAll(string name)
        => _values.TryGetValue(name, out var v) ? v : Array.Empty<string>();
    private int Int(string name) => int.Parse(Get(name)!, CultureInfo.InvariantCulture);

    public IReadOnlyList<string> Binds => GetAll("bind");
    public int Threads => Int("threads");
    public int QueueSize => Int("queue-size");
    public string? Python => Get("python");
    public string? Chdir => Get("chdir");
    public IReadOnlyList<string> PythonPath => GetAll("pythonpath");
    public string RootPath => Get("root-path") ?? "";
    public int Backlog => Int("backlog");
    public double KeepAliveSeconds => double.Parse(Get("keep-alive")!, CultureInfo.InvariantCulture);
    public string LogLevel => Get("log-level")!.ToLowerInvariant();
    public string ErrorLogFile => Get("error-logfile") ?? "-";
    /// <summary>Null: no access log; "-": stdout.</summary>
    public string? AccessLogFile => Get("access-logfile");
    public string AccessLogFormat => Get("access-logformat")!;
    /// <summary>--access-log-skip: paths (a trailing * for a prefix) whose successful requests are not logged.
    /// </summary>
    public IReadOnlyList<string> AccessLogSkip => GetAll("access-log-skip");
    public bool JsonLogs => Get("log-format")!.Equals("json", StringComparison.OrdinalIgnoreCase);
    public bool RequestIdHeader => Flag("request-id-header");
    private double Seconds(string name) => double.Parse(Get(name)!, CultureInfo.InvariantCulture);
    private bool Flag(string name) => Get(name) is "true" or "1" or "yes";

    /// <summary>Worker processes; 0/auto means one per CPU.</summary>
    public int Workers
    {
        get
        {
            var w = Get("workers")!;
            var n = w == "auto" ? 0 : int.Parse(w, CultureInfo.InvariantCulture);
            return n == 0 ? Environment.ProcessorCount : n;
        }
    }
    /// <summary>Python interpreters per worker; auto means one per CPU.</summary>
    public int Interpreters => Get("interpreters") is "auto" or null
        ? Environment.ProcessorCount : int.Parse(Get("interpreters")!, CultureInfo.InvariantCulture);
    public double Timeout => Seconds("timeout");
    public double GracefulTimeout => Seconds("graceful-timeout");
    public double ShutdownDelay => Seconds("shutdown-delay");
    public double RequestTimeout => Seconds("request-timeout");
    public double RequestTimeoutGrace => Seconds("request-timeout-grace");
    public double QueueTimeout => Seconds("queue-timeout");
    public int MaxRequests => Int("max-requests");
    public int MaxRequestsJitter => Int("max-requests-jitter");
    public double MaxLifetime => Seconds("max-lifetime");
    public int MaxRssMb => Int("max-rss");
    public bool Reload => Flag("reload");
    public IReadOnlyList<string> ReloadExtraFiles => GetAll("reload-extra-file");
    public bool ReusePort => Flag("reuse-port");
    public string? PidFile => Get("pid");
    public double SwitchInterval => Seconds("switch-interval");
    private long Bytes(string name) => Setting.ParseBytes(Get(name)!)!.Value;
    public long BodyBufferSize => Bytes("body-buffer-size");
    public long BodyBufferTotal => Bytes("body-buffer-total");
    public long BodySpoolSize => Bytes("body-spool-size");
    public long ResponseBufferSize => Bytes("response-buffer-size");
    public long ResponseSpoolSize => Bytes("response-spool-size");
    public long ResponseSpoolTotal => Bytes("response-spool-total");
    public string TempDirectory => Get("tmp-dir") ?? Path.GetTempPath();
    public IReadOnlyList<string> StaticMounts => GetAll("static");
    public int StaticMaxAge => Int("static-max-age");
    public bool StaticFallthrough => Get("static-fallthrough")!.Equals("on", StringComparison.OrdinalIgnoreCase);
    public bool Sendfile => !Flag("no-sendfile");
    public IReadOnlyList<string> InternalLocations => GetAll("internal");
    public IReadOnlyList<string> XSendfileRoots => GetAll("x-sendfile-root");
    /// <summary>The server sends files itself (--static, --internal, --x-sendfile-root): where sendfile(2) can be
    /// used, cleartext connections get the transport that does it.</summary>
    public bool ServesFiles => StaticMounts.Count > 0 || InternalLocations.Count > 0 || XSendfileRoots.Count > 0;
    public bool Compress => Flag("compress");
    public long CompressMinSize => Bytes("compress-min-size");
    public double SendTimeout => Seconds("send-timeout");
    public long MinUploadRate => Bytes("min-upload-rate");
    public long MinDownloadRate => Bytes("min-download-rate");
    public double MinRateGrace => Seconds("min-rate-grace");

    public string? CertFile => Get("certfile");
    public string? KeyFile => Get("keyfile");
    public string? KeyFilePasswordFile => Get("keyfile-password-file");
    public string? CaCerts => Get("ca-certs");
    public string CertReqs => Get("cert-reqs")!.ToLowerInvariant();
    public string TlsMinVersion => Get("tls-min-version")!;
    public string? Ciphers => Get("ciphers");
    public bool Http2 => Get("http2")!.Equals("on", StringComparison.OrdinalIgnoreCase);
    public int Http2MaxConcurrentStreams => Int("http2-max-concurrent-streams");
    public long Http2StreamWindow => Bytes("http2-stream-window");
    public long Http2ConnectionWindow => Bytes("http2-connection-window");

    public string ForwardedAllowIps => Get("forwarded-allow-ips") ?? "";
    public string SecureSchemeHeaders => Get("secure-scheme-headers") ?? "";
    /// <summary>off, on (a PROXY header required) or optional.</summary>
    public string ProxyProtocol => Get("proxy-protocol")!.ToLowerInvariant();
    public string ProxyAllowFrom => Get("proxy-allow-from") ?? "";

    public int LimitRequestLine => Int("limit-request-line");
    public int LimitRequestFields => Int("limit-request-fields");
    public int LimitRequestFieldSize => Int("limit-request-field_size");
    public long LimitRequestBody => Bytes("limit-request-body");
    public double HeaderTimeout => Seconds("header-timeout");
    public int MaxConnections => Int("max-connections");
    public string? MetricsBind => Get("metrics-bind");
    /// <summary>Seconds a supervisor-side hook call may take (0: no limit).</summary>
    public double HookTimeout => Seconds("hook-timeout");

    /// <summary>--log-config, --log-config-dict, --log-config-json: the app's Python logging (Logging.PythonLogging).
    /// </summary>
    public string? LogConfigFile => Get("log-config");
    public string? LogConfigDict => Get("log-config-dict");
    public string? LogConfigJson => Get("log-config-json");
    /// <summary>--log-syslog and its address, tag prefix and facility (Logging.SyslogSink).</summary>
    public bool Syslog => Flag("log-syslog");
    public string SyslogAddress => Get("log-syslog-to")!;
    public string? SyslogPrefix => Get("log-syslog-prefix");
    public string SyslogFacility => Get("log-syslog-facility")!.ToLowerInvariant();
    public bool SyslogAccessLog => Syslog && !Flag("disable-redirect-access-to-syslog");
    /// <summary>--statsd-host, --statsd-prefix, --dogstatsd-tags (Metrics.StatsdSink).</summary>
    public string? StatsdHost => Get("statsd-host");
    public string StatsdPrefix => Get("statsd-prefix") ?? "";
    public string? DogstatsdTags => Get("dogstatsd-tags");

    public string? User => Get("user");
    public string? Group => Get("group");
    /// <summary>--umask as a number; null: keep the mask the server was started with.</summary>
    public int? Umask => Get("umask") is { } mask ? Setting.ParseUmask(mask) : null;
    /// <summary>-e/--env KEY=VALUE pairs.</summary>
    public IReadOnlyList<string> RawEnv => GetAll("env");
    /// <summary>-n/--name: the process titles' name; null: the app as given.</summary>
    public string? ProcessName => Get("name");
    public bool Daemon => Flag("daemon");
    public bool CaptureOutput => Flag("capture-output");
}
