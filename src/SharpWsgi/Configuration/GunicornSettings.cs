using System.Globalization;
using System.Text.Json;

namespace SharpWsgi.Configuration;

/// <summary>What SharpWsgi does with one of gunicorn's settings named in a Python config file.</summary>
public enum GunicornTreatment
{
    /// <summary>Taken, as one or more SharpWsgi settings.</summary>
    Honoured,
    /// <summary>A server hook (docs/gunicorn.md says which process runs it).</summary>
    Hook,
    /// <summary>SharpWsgi has no such setting yet: one warning line when the value asks for something.</summary>
    NotYet,
    /// <summary>Cannot apply to this server: one warning line, with the reason, when the value asks for
    /// something.</summary>
    CannotApply,
}

/// <summary>A value gunicorn's setting cannot take (the message says why).</summary>
public sealed class GunicornValueException : Exception
{
    public GunicornValueException(string message) : base(message) { }
}

/// <summary>
/// One gunicorn setting: its name, its default in gunicorn (as JSON: a value equal to it asks for nothing), how
/// SharpWsgi treats it, why (for the warnings and docs/gunicorn.md), how a value becomes SharpWsgi settings, and
/// how the value SharpWsgi runs with reads under gunicorn's name (the hooks' cfg).
/// </summary>
public sealed record GunicornSetting(
    string Name,
    string DefaultJson,
    GunicornTreatment Treatment,
    string Note,
    Func<JsonElement, IEnumerable<(string Setting, string Value)>>? Map = null,
    Func<ServerSettings, object?>? Effective = null);

/// <summary>gunicorn's settings (its config.py) and what each becomes here.</summary>
public static class GunicornSettings
{
    private const string Inotify = "SharpWsgi watches files with inotify whatever the engine";
    private const string PythonSsl = "TLS is .NET's, not Python's ssl module: certfile, keyfile, ca_certs, " +
        "cert_reqs and ciphers configure it";
    private const string Strict = "requests are parsed by Kestrel, which is strict about them and has no switch " +
        "for this";
    private const string NoDirty = "SharpWsgi has no dirty arbiter (gunicorn's pool for long-running jobs)";
    private const string NoControlSocket = "SharpWsgi has no control socket; signals and --metrics-bind " +
        "control and observe it";

    /// <summary>The hooks run in a worker; the others (on_starting, when_ready, pre_fork, child_exit, ...) run in
    /// the supervisor's hook host.</summary>
    public static readonly IReadOnlySet<string> WorkerHooks = new HashSet<string>
    {
        "post_fork", "post_worker_init", "worker_int", "worker_abort", "pre_request", "post_request", "worker_exit",
    };

    private static readonly string[] CertReqsNames = { "none", "optional", "required" };

    public static readonly IReadOnlyList<GunicornSetting> All = new GunicornSetting[]
    {
        new("wsgi_app", "null", GunicornTreatment.Honoured, "the APP; the command line's APP wins",
            v => One(AppMarker, Text(v)), s => s.App),
        new("bind", "[\"127.0.0.1:8000\"]", GunicornTreatment.Honoured, "--bind (a string or a list)",
            v => Each("bind", v), s => s.Binds.ToList<object?>()),
        new("backlog", "2048", GunicornTreatment.Honoured, "--backlog", v => One("backlog", Int(v)),
            s => s.Backlog),
        new("workers", "1", GunicornTreatment.Honoured, "--workers", v => One("workers", Int(v)), s => s.Workers),
        new("worker_class", "\"sync\"", GunicornTreatment.Honoured,
            "sync: --threads 1 unless threads is set too (gunicorn runs sync with threads > 1 as gthread); gthread " +
            "as it is; any other class cannot apply (SharpWsgi serves WSGI from its own Python threads) and is " +
            "named in a warning", WorkerClass, s => s.Threads > 1 ? "gthread" : "sync"),
        new("threads", "1", GunicornTreatment.Honoured, "--threads", v => One("threads", Int(v)), s => s.Threads),
        new("worker_connections", "1000", GunicornTreatment.Honoured, "--max-connections (per worker)",
            v => One("max-connections", Int(v)), s => s.MaxConnections),
        new("max_requests", "0", GunicornTreatment.Honoured, "--max-requests", v => One("max-requests", Int(v)),
            s => s.MaxRequests),
        new("max_requests_jitter", "0", GunicornTreatment.Honoured, "--max-requests-jitter",
            v => One("max-requests-jitter", Int(v)), s => s.MaxRequestsJitter),
        new("timeout", "30", GunicornTreatment.Honoured,
            "--timeout (the heartbeat; a slow request is --request-timeout's)", v => One("timeout", Number(v)),
            s => Seconds(s.Timeout)),
        new("graceful_timeout", "30", GunicornTreatment.Honoured, "--graceful-timeout",
            v => One("graceful-timeout", Number(v)), s => Seconds(s.GracefulTimeout)),
        new("keepalive", "2", GunicornTreatment.Honoured, "--keep-alive", v => One("keep-alive", Number(v)),
            s => Seconds(s.KeepAliveSeconds)),
        new("limit_request_line", "4094", GunicornTreatment.Honoured, "--limit-request-line",
            v => One("limit-request-line", Int(v)), s => s.LimitRequestLine),
        new("limit_request_fields", "100", GunicornTreatment.Honoured, "--limit-request-fields",
            v => One("limit-request-fields", Int(v)), s => s.LimitRequestFields),
        new("limit_request_field_size", "8190", GunicornTreatment.Honoured, "--limit-request-field_size",
            v => One("limit-request-field_size", Int(v)), s => s.LimitRequestFieldSize),
        new("reload", "false", GunicornTreatment.Honoured, "--reload", v => One("reload", Bool(v)), s => s.Reload),
        new("reload_extra_files", "[]", GunicornTreatment.Honoured, "--reload-extra-file",
            v => Each("reload-extra-file", v), s => s.ReloadExtraFiles.ToList<object?>()),
        new("reuse_port", "false", GunicornTreatment.Honoured, "--reuse-port", v => One("reuse-port", Bool(v)),
            s => s.ReusePort),
        new("chdir", "null", GunicornTreatment.Honoured, "--chdir", v => One("chdir", Text(v)),
            s => s.Chdir ?? Directory.GetCurrentDirectory()),
        new("pidfile", "null", GunicornTreatment.Honoured, "--pid", v => One("pid", Text(v)), s => s.PidFile),
        new("tmp_upload_dir", "null", GunicornTreatment.Honoured, "--tmp-dir (where request bodies are spooled)",
            v => One("tmp-dir", Text(v)), s => s.Get("tmp-dir")),
        new("secure_scheme_headers", "{\"X-FORWARDED-PROTOCOL\":\"ssl\",\"X-FORWARDED-PROTO\":\"https\"," +
            "\"X-FORWARDED-SSL\":\"on\"}", GunicornTreatment.Honoured, "--secure-scheme-headers (a dict)",
            SchemeHeaders, s => SchemeHeadersOf(s.SecureSchemeHeaders)),
        new("forwarded_allow_ips", "\"127.0.0.1,::1\"", GunicornTreatment.Honoured,
            "--forwarded-allow-ips (a string or a list)", v => One("forwarded-allow-ips", Joined(v)),
            s => SplitList(s.ForwardedAllowIps)),
        new("accesslog", "null", GunicornTreatment.Honoured, "--access-logfile", v => One("access-logfile", Text(v)),
            s => s.AccessLogFile),
        new("access_log_format", JsonSerializerText(SettingsRegistry.AccessLogDefaultFormat),
            GunicornTreatment.Honoured, "--access-logformat (the same atoms)",
            v => One("access-logformat", Text(v)), s => s.AccessLogFormat),
        new("errorlog", "\"-\"", GunicornTreatment.Honoured, "--error-logfile", v => One("error-logfile", Text(v)),
            s => s.ErrorLogFile),
        new("loglevel", "\"info\"", GunicornTreatment.Honoured, "--log-level",
            v => One("log-level", Text(v)?.ToLowerInvariant()), s => s.LogLevel),
        new("pythonpath", "null", GunicornTreatment.Honoured, "--pythonpath (comma-separated, as in gunicorn)",
            v => Text(v) is { } text ? SplitList(text).Select(p => ("pythonpath", p)) : [],
            s => s.PythonPath.Count == 0 ? null : string.Join(",", s.PythonPath)),
        new("root_path", "\"\"", GunicornTreatment.Honoured, "--root-path", v => One("root-path", Text(v)),
            s => s.RootPath),
        new("paste", "null", GunicornTreatment.Honoured, "--paste (the app from a PasteDeploy file)",
            v => One("paste", Text(v)), s => s.Get("paste")),
        new("proxy_protocol", "\"off\"", GunicornTreatment.Honoured,
            "--proxy-protocol: v1, v2, auto or True become optional (gunicorn takes a PROXY header when one is " +
            "sent; both versions are read)", ProxyProtocol, s => s.ProxyProtocol == "off" ? "off" : "auto"),
        new("proxy_allow_ips", "\"127.0.0.1,::1\"", GunicornTreatment.Honoured, "--proxy-allow-from",
            v => One("proxy-allow-from", Joined(v)), s => SplitList(s.ProxyAllowFrom)),
        new("certfile", "null", GunicornTreatment.Honoured, "--certfile", v => One("certfile", Text(v)),
            s => s.CertFile),
        new("keyfile", "null", GunicornTreatment.Honoured, "--keyfile", v => One("keyfile", Text(v)),
            s => s.KeyFile),
        new("ca_certs", "null", GunicornTreatment.Honoured, "--ca-certs", v => One("ca-certs", Text(v)),
            s => s.CaCerts),
        new("cert_reqs", "0", GunicornTreatment.Honoured, "--cert-reqs (0, 1, 2: none, optional, required)",
            CertReqs, s => Array.IndexOf(CertReqsNames, s.CertReqs)),
        new("ciphers", "null", GunicornTreatment.Honoured,
            "--ciphers (colon-separated suite names; an OpenSSL cipher string with + or ! is refused at start)",
            v => One("ciphers", Text(v)), s => s.Ciphers),
        new("sendfile", "null", GunicornTreatment.Honoured, "False: --no-sendfile",
            v => Bool(v) is { } on ? [("no-sendfile", on == "true" ? "false" : "true")] : [], s => s.Sendfile),
        new("http_protocols", "\"h1\"", GunicornTreatment.Honoured, "--http2 on when h2 is listed, else off",
            HttpProtocols, s => s.Http2 ? "h2,h1" : "h1"),
        new("http2_max_concurrent_streams", "100", GunicornTreatment.Honoured, "--http2-max-concurrent-streams",
            v => One("http2-max-concurrent-streams", Int(v)), s => s.Http2MaxConcurrentStreams),
        new("http2_initial_window_size", "65535", GunicornTreatment.Honoured, "--http2-stream-window",
            v => One("http2-stream-window", Int(v)), s => s.Http2StreamWindow),

        Hook("on_starting"), Hook("on_reload"), Hook("when_ready"), Hook("pre_fork"), Hook("post_fork"),
        Hook("post_worker_init"), Hook("worker_int"), Hook("worker_abort"), Hook("pre_exec"), Hook("pre_request"),
        Hook("post_request"), Hook("child_exit"), Hook("worker_exit"), Hook("nworkers_changed"), Hook("on_exit"),

        new("daemon", "false", GunicornTreatment.Honoured, "--daemon", v => One("daemon", Bool(v)), s => s.Daemon),
        new("raw_env", "[]", GunicornTreatment.Honoured, "-e/--env (each KEY=VALUE)", v => Each("env", v),
            s => s.RawEnv.ToList<object?>()),
        new("user", "null", GunicornTreatment.Honoured, "--user", v => One("user", Text(v)), s => s.User),
        new("group", "null", GunicornTreatment.Honoured, "--group", v => One("group", Text(v)), s => s.Group),
        // gunicorn applies its umask only around a unix socket's bind, so its default 0 (written out in many
        // configs, gunicorn's example among them) must not make every file the app creates world-writable here.
        new("umask", "0", GunicornTreatment.Honoured, "--umask (the supervisor's and the workers' mask; 0, " +
            "gunicorn's default, leaves the mask the server was started with)",
            v => Text(v) is "0" ? [] : One("umask", Text(v)), s => s.Umask ?? 0),
        new("initgroups", "false", GunicornTreatment.Honoured,
            "always on with --user: the account's own supplementary groups", _ => [], s => s.User != null),
        new("capture_output", "false", GunicornTreatment.Honoured, "--capture-output",
            v => One("capture-output", Bool(v)), s => s.CaptureOutput),
        new("logconfig", "null", GunicornTreatment.Honoured, "--log-config", v => One("log-config", Text(v)),
            s => s.LogConfigFile),
        new("logconfig_dict", "{}", GunicornTreatment.Honoured, "--log-config-dict (the dict as JSON)",
            v => v.ValueKind == JsonValueKind.Object && v.EnumerateObject().Any()
                ? One("log-config-dict", v.GetRawText()) : [],
            s => s.LogConfigDict),
        new("logconfig_json", "null", GunicornTreatment.Honoured, "--log-config-json",
            v => One("log-config-json", Text(v)), s => s.LogConfigJson),
        new("syslog", "false", GunicornTreatment.Honoured, "--log-syslog", v => One("log-syslog", Bool(v)),
            s => s.Syslog),
        new("syslog_addr", "null", GunicornTreatment.Honoured, "--log-syslog-to",
            v => One("log-syslog-to", Text(v)), s => s.SyslogAddress),
        new("syslog_prefix", "null", GunicornTreatment.Honoured, "--log-syslog-prefix",
            v => One("log-syslog-prefix", Text(v)), s => s.SyslogPrefix),
        new("syslog_facility", "\"user\"", GunicornTreatment.Honoured, "--log-syslog-facility",
            v => One("log-syslog-facility", Text(v)), s => s.SyslogFacility),
        new("disable_redirect_access_to_syslog", "false", GunicornTreatment.Honoured,
            "--disable-redirect-access-to-syslog", v => One("disable-redirect-access-to-syslog", Bool(v)),
            s => s.Syslog && !s.SyslogAccessLog),
        new("statsd_host", "null", GunicornTreatment.Honoured, "--statsd-host", v => One("statsd-host", Text(v)),
            s => s.StatsdHost),
        new("statsd_prefix", "\"\"", GunicornTreatment.Honoured, "--statsd-prefix",
            v => One("statsd-prefix", Text(v)), s => s.StatsdPrefix),
        new("dogstatsd_tags", "\"\"", GunicornTreatment.Honoured, "--dogstatsd-tags",
            v => One("dogstatsd-tags", Text(v)), s => s.DogstatsdTags),
        NotYet("enable_backlog_metric", "false", "the statsd backlog metric"),
        new("proc_name", "null", GunicornTreatment.Honoured, "-n/--name (the process titles)",
            v => One("name", Text(v)), s => s.ProcessName),
        NotYet("raw_paste_global_conf", "[]", "--paste-global"),

        CannotApply("preload_app", "false", "there is no fork: each worker is its own python process and imports " +
            "the app itself, so there is no master to preload it into"),
        CannotApply("spew", "false", "SharpWsgi has no line tracer; use python -X importtime or a profiler"),
        CannotApply("check_config", "false", "a command, not a setting: pass --check-config on the command line"),
        CannotApply("print_config", "false", "a command, not a setting: pass --print-config on the command line"),
        CannotApply("reload_engine", "\"auto\"", Inotify),
        CannotApply("worker_tmp_dir", "null", "workers report their heartbeat over a pipe, not a temporary file"),
        CannotApply("enable_stdio_inheritance", "false", "the workers always keep the supervisor's stdio"),
        CannotApply("logger_class", "\"gunicorn.glogging.Logger\"", "the error log is SharpWsgi's own, not a " +
            "Python logger class"),
        CannotApply("default_proc_name", "\"gunicorn\"", "set by gunicorn itself, not by a config file"),
        CannotApply("ssl_context", "null", PythonSsl),
        CannotApply("ssl_version", "2", "deprecated and ignored by gunicorn too; --tls-min-version sets the oldest " +
            "TLS version"),
        CannotApply("suppress_ragged_eofs", "true", PythonSsl),
        CannotApply("do_handshake_on_connect", "false", PythonSsl),
        CannotApply("protocol", "\"http\"", "SharpWsgi speaks HTTP/1.1 and HTTP/2, not the uwsgi protocol"),
        CannotApply("uwsgi_allow_ips", "\"127.0.0.1,::1\"", "SharpWsgi does not speak the uwsgi protocol"),
        CannotApply("http2_cleartext", "\"off\"", "with --http2 on, cleartext ports always take prior-knowledge " +
            "h2c next to HTTP/1.1"),
        CannotApply("http2_max_frame_size", "16384", "Kestrel's default frame size is used"),
        CannotApply("http2_max_header_list_size", "65536", "--limit-request-fields and " +
            "--limit-request-field_size bound HTTP/2 headers"),
        CannotApply("permit_obsolete_folding", "false", Strict),
        CannotApply("strip_header_spaces", "false", Strict),
        CannotApply("permit_unconventional_http_method", "false", Strict),
        CannotApply("permit_unconventional_http_version", "false", Strict),
        CannotApply("casefold_http_method", "false", Strict),
        CannotApply("forwarder_headers", "\"SCRIPT_NAME,PATH_INFO\"", "SharpWsgi takes SCRIPT_NAME from " +
            "--root-path only, never from request headers"),
        CannotApply("header_map", "\"drop\"", "SharpWsgi always drops headers with an underscore in their name"),
        CannotApply("asgi_loop", "\"auto\"", "SharpWsgi serves WSGI apps only"),
        CannotApply("asgi_lifespan", "\"auto\"", "SharpWsgi serves WSGI apps only"),
        CannotApply("asgi_disconnect_grace_period", "3", "SharpWsgi serves WSGI apps only"),
        CannotApply("http_parser", "\"auto\"", "requests are parsed by Kestrel"),
        CannotApply("dirty_apps", "[]", NoDirty),
        CannotApply("dirty_workers", "0", NoDirty),
        CannotApply("dirty_timeout", "300", NoDirty),
        CannotApply("dirty_threads", "1", NoDirty),
        CannotApply("dirty_graceful_timeout", "30", NoDirty),
        CannotApply("on_dirty_starting", "null", NoDirty),
        CannotApply("dirty_post_fork", "null", NoDirty),
        CannotApply("dirty_worker_init", "null", NoDirty),
        CannotApply("dirty_worker_exit", "null", NoDirty),
        CannotApply("control_socket", "null", NoControlSocket),
        CannotApply("control_socket_mode", "384", NoControlSocket),
        CannotApply("control_socket_disable", "false", NoControlSocket),
    };

    private static readonly Dictionary<string, GunicornSetting> ByName = All.ToDictionary(g => g.Name);

    public static GunicornSetting? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>SharpWsgi's own settings a Python config file may set too, under their names with '_' (e.g.
    /// request_timeout = 30); not config, and not pid and python, which are gunicorn's pidfile and the
    /// interpreter that reads the file.</summary>
    public static Setting? NativeSetting(string name)
    {
        if (ByName.ContainsKey(name) || name is "config" or "pid" or "python") return null;
        var def = SettingsRegistry.ByName(name);
        return def != null && def.Name.Replace('-', '_') == name.Replace('-', '_') && !name.Contains('-') ? def : null;
    }

    /// <summary>Every module-level name the evaluation reports: gunicorn's settings and SharpWsgi's own.</summary>
    public static IEnumerable<string> KnownNames() => All.Select(g => g.Name).Concat(
        SettingsRegistry.All.Select(s => s.Name.Replace('-', '_')).Where(n => NativeSetting(n) != null));

    /// <summary>
    /// The hooks' cfg as JSON: every gunicorn setting by its name with the value SharpWsgi runs with (for a
    /// setting it does not take, the file's value, else gunicorn's default), SharpWsgi's own settings by their
    /// names with '_', and the facts gunicorn's Config derives (is_ssl, address, worker_class_str, env).
    /// </summary>
    public static string EffectiveConfigJson(ServerSettings settings)
    {
        var fileValues = settings.PythonConfig?.Values;
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var def in SettingsRegistry.All)
            {
                var name = def.Name.Replace('-', '_');
                if (NativeSetting(name) == null) continue;
                writer.WritePropertyName(name);
                WriteValue(writer, NativeValue(def, settings));
            }
            foreach (var g in All)
            {
                if (g.Treatment == GunicornTreatment.Hook) continue;
                writer.WritePropertyName(g.Name);
                if (g.Effective != null) WriteValue(writer, g.Effective(settings));
                else if (fileValues != null && fileValues.TryGetValue(g.Name, out var given)) given.WriteTo(writer);
                else writer.WriteRawValue(g.DefaultJson);
            }
            writer.WriteBoolean("is_ssl", settings.CertFile != null);
            writer.WritePropertyName("address");
            WriteValue(writer, settings.Binds.ToList<object?>());
            writer.WriteString("worker_class_str", settings.Threads > 1 ? "gthread" : "sync");
            writer.WritePropertyName("env");
            writer.WriteStartObject();
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static object? NativeValue(Setting def, ServerSettings settings)
    {
        if (def.Repeatable) return settings.GetAll(def.Name).ToList<object?>();
        var text = settings.Get(def.Name);
        if (text == null) return null;
        return def.Kind switch
        {
            SettingKind.PositiveInt or SettingKind.NonNegativeInt when long.TryParse(text, out var n) => n,
            SettingKind.Seconds when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture,
                out var seconds) => Seconds(seconds),
            SettingKind.Flag => text is "true" or "1" or "yes",
            _ => text,
        };
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case double d: writer.WriteNumberValue(d); break;
            case string s: writer.WriteStringValue(s); break;
            case IDictionary<string, object?> map:
                writer.WriteStartObject();
                foreach (var (k, v) in map)
                {
                    writer.WritePropertyName(k);
                    WriteValue(writer, v);
                }
                writer.WriteEndObject();
                break;
            case IEnumerable<object?> items:
                writer.WriteStartArray();
                foreach (var item in items) WriteValue(writer, item);
                writer.WriteEndArray();
                break;
            default: writer.WriteStringValue(value.ToString()); break;
        }
    }

    /// <summary>True when the value asks for nothing beyond gunicorn's default (so no warning is due).</summary>
    public static bool IsDefault(GunicornSetting setting, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null) return true;
        using var expected = JsonDocument.Parse(setting.DefaultJson);
        return JsonElement.DeepEquals(expected.RootElement, value) ||
               (value.ValueKind == JsonValueKind.False && expected.RootElement.ValueKind == JsonValueKind.Null);
    }

    /// <summary>The one-line warning for a setting that is not taken.</summary>
    public static string Warning(GunicornSetting setting, JsonElement value, string where) => setting.Treatment switch
    {
        GunicornTreatment.NotYet =>
            $"{where}: {setting.Name} = {Describe(value)} is not supported yet (it will be {setting.Note}); ignored",
        _ => $"{where}: {setting.Name} = {Describe(value)} cannot apply: {setting.Note}; ignored",
    };

    /// <summary>A value as the file wrote it, shortly (for messages).</summary>
    public static string Describe(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("$repr", out var repr))
            return repr.GetString() ?? "?";
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("$callable", out var callable))
            return $"<function {callable.GetString()}>";
        var text = value.ValueKind switch
        {
            JsonValueKind.True => "True",
            JsonValueKind.False => "False",
            JsonValueKind.Null => "None",
            JsonValueKind.String => "'" + value.GetString() + "'",
            _ => value.GetRawText(),
        };
        return text.Length > 80 ? text[..77] + "..." : text;
    }

    private static GunicornSetting Hook(string name) =>
        new(name, "null", GunicornTreatment.Hook, WorkerHooks.Contains(name) ? "worker" : "hook host");

    private static GunicornSetting NotYet(string name, string defaultJson, string future) =>
        new(name, defaultJson, GunicornTreatment.NotYet, future);

    private static GunicornSetting CannotApply(string name, string defaultJson, string reason) =>
        new(name, defaultJson, GunicornTreatment.CannotApply, reason);

    private static string JsonSerializerText(string s)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer)) writer.WriteStringValue(s);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    // ------------------------------------------------------------------ value conversions (file -> SharpWsgi)

    /// <summary>Pseudo-settings a conversion may give besides real ones: the APP, sync's one thread, and a
    /// warning instead of a value.</summary>
    public const string AppMarker = "<app>", SyncMarker = "<worker-class-sync>", WarningMarker = "<warning>";

    private static IEnumerable<(string, string)> One(string setting, string? value) =>
        value == null ? [] : [(setting, value)];

    /// <summary>A scalar as text; None is "not set" (the setting keeps its value).</summary>
    private static string? Text(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Number => v.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => throw new GunicornValueException("expected a string or a number"),
    };

    private static string? Int(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n))
            return n.ToString(CultureInfo.InvariantCulture);
        if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString()!.Trim(), NumberStyles.None,
                CultureInfo.InvariantCulture, out var parsed))
            return parsed.ToString(CultureInfo.InvariantCulture);
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False)
            return v.ValueKind == JsonValueKind.True ? "1" : "0";
        throw new GunicornValueException("expected a whole number");
    }

    private static string? Number(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number) return v.GetRawText();
        if (v.ValueKind == JsonValueKind.String) return v.GetString()!.Trim();
        return Int(v);
    }

    private static string? Bool(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Number => v.GetRawText() == "0" ? "false" : "true",
        JsonValueKind.String => v.GetString()!.Trim().ToLowerInvariant() switch
        {
            "true" or "1" or "yes" or "y" or "on" => "true",
            "false" or "0" or "no" or "n" or "off" or "" => "false",
            var other => throw new GunicornValueException($"'{other}' is not a boolean"),
        },
        _ => throw new GunicornValueException("expected True or False"),
    };

    /// <summary>A string, or a list of strings: one value each (a repeatable setting).</summary>
    private static IEnumerable<(string, string)> Each(string setting, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Array) return One(setting, Text(v));
        return v.EnumerateArray().Select(item => (setting, Text(item) ??
            throw new GunicornValueException("a list item is None"))).ToList();
    }

    /// <summary>A comma-separated string, or a list of strings joined with commas.</summary>
    private static string? Joined(JsonElement v) => v.ValueKind == JsonValueKind.Array
        ? string.Join(",", v.EnumerateArray().Select(item => Text(item)))
        : Text(v);

    private static List<string> SplitList(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>Seconds as gunicorn's hooks expect them: a whole number when they are one.</summary>
    private static object Seconds(double seconds) => seconds == Math.Floor(seconds) && Math.Abs(seconds) < 1e15
        ? (long)seconds : seconds;

    private static IEnumerable<(string, string)> WorkerClass(JsonElement v)
    {
        var name = Text(v);
        if (name == null) return [];
        var simple = name.Contains('.') ? name[(name.LastIndexOf('.') + 1)..] : name;
        return simple.ToLowerInvariant() switch
        {
            "sync" or "syncworker" => [(SyncMarker, "1")],
            "gthread" or "threadworker" => [],
            _ => [(WarningMarker, "cannot apply: SharpWsgi serves WSGI apps from its own Python threads (--threads " +
                "per worker, Kestrel for the connections), not from gevent, eventlet, tornado or ASGI workers; " +
                "ignored, the app runs on threads")],
        };
    }

    private static IEnumerable<(string, string)> SchemeHeaders(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Object)
            throw new GunicornValueException("expected a dict of header name to value");
        var pairs = v.EnumerateObject().Select(p => $"{p.Name}={Text(p.Value)}");
        return [("secure-scheme-headers", string.Join(",", pairs))];
    }

    private static Dictionary<string, object?> SchemeHeadersOf(string text)
    {
        var result = new Dictionary<string, object?>();
        foreach (var pair in SplitList(text))
        {
            var eq = pair.IndexOf('=');
            if (eq > 0) result[pair[..eq].Trim().ToUpperInvariant()] = pair[(eq + 1)..].Trim();
        }
        return result;
    }

    private static IEnumerable<(string, string)> ProxyProtocol(JsonElement v)
    {
        var text = v.ValueKind switch
        {
            JsonValueKind.Null => "off",
            JsonValueKind.True => "auto",
            JsonValueKind.False => "off",
            JsonValueKind.String => v.GetString()!.Trim().ToLowerInvariant(),
            _ => throw new GunicornValueException("expected off, v1, v2, auto or a boolean"),
        };
        return text switch
        {
            "off" or "false" or "0" or "none" => [("proxy-protocol", "off")],
            "auto" or "true" or "1" or "v1" or "v2" => [("proxy-protocol", "optional")],
            _ => throw new GunicornValueException("expected off, v1, v2, auto or a boolean"),
        };
    }

    private static IEnumerable<(string, string)> CertReqs(JsonElement v)
    {
        var text = Int(v);
        if (text == null) return [];
        var n = int.Parse(text, CultureInfo.InvariantCulture);
        if (n is < 0 or > 2) throw new GunicornValueException("expected 0 (none), 1 (optional) or 2 (required)");
        return [("cert-reqs", CertReqsNames[n])];
    }

    private static IEnumerable<(string, string)> HttpProtocols(JsonElement v)
    {
        var listed = v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(i => Text(i) ?? "").ToList()
            : SplitList(Text(v) ?? "");
        if (listed.Count == 0) return [];
        return [("http2", listed.Any(p => p.Trim().Equals("h2", StringComparison.OrdinalIgnoreCase)) ? "on" : "off")];
    }
}
