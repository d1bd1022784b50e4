namespace SharpWsgi.Configuration;

/// <summary>How a setting's text is checked and what kind of value it holds.</summary>
public enum SettingKind
{
    Text, PositiveInt, Interpreters, NonNegativeInt, Flag, Choice, Seconds, Workers, Bytes, AddressList,
}

/// <summary>
/// One setting, declared once: its flags, its environment variable (SHARPWSGI_&lt;NAME&gt;), default,
/// validation and one-line doc. The command line, the environment, --help and docs/settings.md all come from here.
/// </summary>
public sealed record Setting(
    string Name,
    string? ShortFlag,
    string Meta,
    string? Default,
    SettingKind Kind,
    string Doc,
    bool Repeatable = false,
    string[]? Choices = null,
    string Section = "Server",
    string? BareValue = null)
{
    /// <summary>The name with '_' read as '-' (gunicorn spells one flag --limit-request-field_size).</summary>
    public string NormalName => Name.Replace('_', '-');
    public string LongFlag => "--" + Name;
    public string EnvironmentVariable => "SHARPWSGI_" + Name.ToUpperInvariant().Replace('-', '_');

    /// <summary>Comma-separated addresses and CIDR ranges, or *: null when valid, else why not.</summary>
    public static string? ValidateAddressList(string value)
    {
        foreach (var item in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (item != "*" && !System.Net.IPNetwork.TryParse(item, out _) &&
                !System.Net.IPAddress.TryParse(item, out _))
                return $"'{item}' is not an IP address or CIDR range";
        return null;
    }

    /// <summary>NAME=VALUE pairs, comma-separated; empty turns them all off.</summary>
    public static string? ValidateSchemeHeaders(string value)
    {
        foreach (var item in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            if (item.IndexOf('=') <= 0 || item[..item.IndexOf('=')].Trim().Length == 0)
                return $"'{item}' is not NAME=VALUE";
        return null;
    }

    /// <summary>-e KEY=VALUE: null when KEY is usable, else why not. SHARPWSGI_* are refused: a worker reads its
    /// settings (and its part of the supervisor-worker protocol) from them.</summary>
    public static string? ValidateEnvironmentPair(string pair)
    {
        var eq = pair.IndexOf('=');
        if (eq <= 0) return "expected KEY=VALUE";
        if (pair.Contains('\0')) return "a NUL byte cannot be in the environment";
        if (pair.StartsWith("SHARPWSGI_", StringComparison.Ordinal))
            return $"{pair[..eq]} is SharpWsgi's own: give the setting itself (see --help), not --env";
        return null;
    }

    /// <summary>Null when the value is acceptable, else why not.</summary>
    public string? Validate(string value) => Kind switch
    {
        SettingKind.PositiveInt => int.TryParse(value, out var n) && n > 0 && value.All(char.IsAsciiDigit)
            ? null : "expected a positive integer",
        SettingKind.NonNegativeInt => int.TryParse(value, out var n) && n >= 0 && value.All(char.IsAsciiDigit)
            ? null : "expected a non-negative integer",
        // Kestrel has no "unlimited" head timeout, and a server without one is open to slowloris.
        SettingKind.Seconds when Name == "header-timeout" => double.TryParse(value,
            System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var h) &&
            h > 0 ? null : "expected a number of seconds above 0",
        SettingKind.Seconds => double.TryParse(value, System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out var s) && s >= 0
            ? null : "expected a number of seconds (0 or more)",
        SettingKind.Flag => value is "true" or "false" or "1" or "0" or "yes" or "no" ? null : "expected true or false",
        SettingKind.Interpreters => value == "auto" ||
            (int.TryParse(value, out var ni) && ni >= 1 && value.All(char.IsAsciiDigit))
            ? null : "expected a number of interpreters (1 or more) or auto",
        SettingKind.Workers => value == "auto" ||
            (int.TryParse(value, out var w) && w >= 0 && value.All(char.IsAsciiDigit))
            ? null : "expected a number of workers or auto",
        SettingKind.Bytes => ParseBytes(value) is not null
            ? null : "expected a size in bytes (e.g. 65536, 512k, 1m, 2g)",
        SettingKind.Choice => Choices!.Contains(value, StringComparer.OrdinalIgnoreCase)
            ? null : $"expected one of {string.Join(", ", Choices!)}",
        SettingKind.AddressList => ValidateAddressList(value) is { } problem ? problem + " (or *)" : null,
        SettingKind.Text when Name == "secure-scheme-headers" => ValidateSchemeHeaders(value),
        SettingKind.Text when Name is "static" or "internal" => SharpWsgi.Hosting.StaticFiles.Validate(value),
        SettingKind.Text when Name == "x-sendfile-root" => SharpWsgi.Hosting.FileRedirects.ValidateRoot(value),
        SettingKind.Text when Name == "access-log-skip" => SharpWsgi.Hosting.AccessLogSkip.Validate(value),
        SettingKind.Text when Name == "log-config-dict" => Logging.PythonLogging.ValidateDictionary(value),
        SettingKind.Text when Name == "log-syslog-to" => Logging.SyslogAddress.Validate(value),
        SettingKind.Text when Name == "statsd-host" => Metrics.StatsdAddress.Validate(value),
        SettingKind.Text when Name == "statsd-prefix" => Metrics.StatsdSink.ValidatePrefix(value),
        SettingKind.Text when Name == "dogstatsd-tags" => Metrics.StatsdSink.ValidateTags(value),
        SettingKind.Text when Name == "umask" => ParseUmask(value) is null
            ? "expected a mask from 0 to 0o777: octal 0o22 or 022, hex 0x12, or decimal 18" : null,
        SettingKind.Text when Name == "env" => ValidateEnvironmentPair(value),
        _ => value.Length > 0 ? null : "expected a value",
    };

    /// <summary>A umask as gunicorn reads one (Python's int(value, 0), a leading 0 meaning octal): "0o22", "022",
    /// "0x12", "0b10010" or "18"; null unless it is a mask from 0 to 0o777.</summary>
    public static int? ParseUmask(string value)
    {
        var text = value.Trim().ToLowerInvariant();
        var (digits, radix) = text switch
        {
            ['0', 'o', ..] => (text[2..], 8),
            ['0', 'x', ..] => (text[2..], 16),
            ['0', 'b', ..] => (text[2..], 2),
            ['0', _, ..] => (text[1..], 8),
            _ => (text, 10),
        };
        if (digits.Length == 0 || digits.Length > 12) return null;
        try
        {
            var mask = Convert.ToInt32(digits, radix);
            return mask is >= 0 and <= 0x1FF && !digits.StartsWith('-') ? mask : null;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException) { return null; }
    }

    /// <summary>Bytes from "65536", "512k", "1m" or "2g" (binary multiples), or null.</summary>
    public static long? ParseBytes(string value)
    {
        var text = value.Trim().ToLowerInvariant();
        long multiplier = 1;
        if (text.EndsWith("b")) text = text[..^1];
        if (text.EndsWith("k")) multiplier = 1L << 10;
        else if (text.EndsWith("m")) multiplier = 1L << 20;
        else if (text.EndsWith("g")) multiplier = 1L << 30;
        if (multiplier > 1) text = text[..^1];
        if (text.Length == 0 || !text.All(char.IsAsciiDigit) || !long.TryParse(text, out var n)) return null;
        if (n > long.MaxValue / multiplier) return null;
        return n * multiplier;
    }
}

public static class SettingsRegistry
{
    /// <summary>gunicorn's default, so parsers of its access log read ours.</summary>
    public const string AccessLogDefaultFormat =
        "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

    public static readonly IReadOnlyList<Setting> All = new Setting[]
    {
        new("bind", "-b", "ADDRESS", "127.0.0.1:8000", SettingKind.Text,
            "Address to listen on: HOST:PORT, [IPv6]:PORT, unix:/path/to.sock, fd://N. Repeat for several. " +
            "Port 0 picks a free port. https://HOST:PORT is always TLS, http://HOST:PORT never; a bare HOST:PORT " +
            "is TLS when --certfile is given.",
            Repeatable: true),
        new("threads", null, "N", "4", SettingKind.PositiveInt,
            "Python threads serving requests in each process. One GIL: a CPU-bound app gains nothing from more than " +
            "one (measured: hello 30k req/s with 1, 24-29k with 4), while an app that waits (database, HTTP calls, " +
            "sleeps) serves up to N requests at once (10 ms sleep: 75 req/s with 1, 365 with 4). " +
            "4 keeps both reasonable."),
        new("interpreters", null, "N", "1", SettingKind.Interpreters,
            "Python interpreters in each worker process, each with its own GIL (PEP 684, CPython 3.12+), importing " +
            "the app itself and running --threads threads of its own; requests go to the least busy one. CPU-bound " +
            "apps use N cores in one process, with one .NET runtime and Kestrel. auto: one per CPU. Module state is " +
            "not shared between interpreters (wsgi.multiprocess is true), and an app that imports an extension " +
            "module without sub-interpreter support is refused at startup. --queue-size applies to each."),
        new("queue-size", null, "N", "1024", SettingKind.PositiveInt,
            "Requests that may wait for a free Python thread; past it the server answers 503 at once."),
        new("python", null, "PATH", null, SettingKind.Text,
            "The Python interpreter the workers run in (its own executable; any CPython 3.9+ build). " +
            "Default: the one that ran `python -m sharpwsgi`, else the virtualenv sharpwsgi is installed in " +
            "(venv/bin/python), else $VIRTUAL_ENV/bin/python, else python3 on PATH.",
            Section: "Python"),
        new("chdir", null, "DIR", null, SettingKind.Text,
            "Change to DIR before loading the app; it is put first on sys.path.", Section: "Python"),
        new("paste", null, "FILE[#NAME]", null, SettingKind.Text,
            "Load the app from a PasteDeploy config file instead of APP, as gunicorn's --paste does: its " +
            "[app:NAME] section (main unless #NAME), relative to the file's directory; [loggers] sections in the " +
            "file configure Python's logging. The interpreter needs PasteDeploy (Debian: python3-pastedeploy).",
            Section: "Python"),
        new("pythonpath", null, "DIR", null, SettingKind.Text,
            "Directory to add to sys.path (after --chdir). Repeat for several.", Repeatable: true, Section: "Python"),
        new("root-path", null, "PREFIX", "", SettingKind.Text,
            "URL prefix the app is mounted at: it becomes SCRIPT_NAME and is removed from PATH_INFO.",
            Section: "Python"),
        new("backlog", null, "N", "2048", SettingKind.PositiveInt,
            "Maximum number of pending connections in the listen queue."),
        new("keep-alive", null, "SECONDS", "5", SettingKind.Seconds,
            "How long an idle keep-alive connection is kept open."),
        new("log-level", null, "LEVEL", "info", SettingKind.Choice,
            "Error log verbosity.", Choices: new[] { "debug", "info", "warning", "error", "critical" },
            Section: "Logging"),
        new("error-logfile", null, "FILE", "-", SettingKind.Text,
            "Where the error log goes: a file (reopened on SIGUSR1, for log rotation) or - for stderr.",
            Section: "Logging"),
        new("access-logfile", null, "FILE", null, SettingKind.Text,
            "Where the access log goes: a file (reopened on SIGUSR1) or - for stdout. Off when unset. Written by a " +
            "background thread; lines that cannot be written (full disk, stuck pipe) are dropped, never waited for.",
            Section: "Logging"),
        new("access-logformat", null, "FORMAT", AccessLogDefaultFormat, SettingKind.Text,
            "The access log's text line, with gunicorn's atoms: h l u t r m U q H s B b f a T D M L p, {header}i, " +
            "{header}o, {variable}e (see docs/logging-and-metrics.md).", Section: "Logging"),
        new("access-log-skip", null, "PATH", null, SettingKind.Text,
            "Leave successful requests for PATH out of the access log (health checks, metrics scrapes): an exact " +
            "path, or a prefix with a trailing * (/static/*), compared with the percent-decoded path without its " +
            "query. Answers of 400 and above are still logged (a failing health check shows), and every request " +
            "still counts in the metrics. Repeat for several.", Repeatable: true, Section: "Logging"),
        new("log-format", null, "text|json", "text", SettingKind.Choice,
            "text: gunicorn's lines; json: one JSON object per line, for the error log and the access log.",
            Choices: new[] { "text", "json" }, Section: "Logging"),
        new("request-id-header", null, "", "false", SettingKind.Flag,
            "Send the request's ID back in an X-Request-ID response header. The ID is the trusted peer's " +
            "(--forwarded-allow-ips) X-Request-ID, else a new one; the app sees it as HTTP_X_REQUEST_ID.",
            Section: "Logging"),
        new("log-config", null, "FILE", null, SettingKind.Text,
            "A Python logging config file (logging.config.fileConfig's format), applied in every worker, in each " +
            "interpreter, before the app is imported (gunicorn's --log-config); relative to --chdir. It configures " +
            "the app's Python logging; the server's own logs are --error-logfile, --access-logfile and " +
            "--log-syslog. Wins over a --paste file's logging sections; --log-config-dict and --log-config-json " +
            "win over it. A file Python refuses stops the start (exit 4).", Section: "Logging"),
        new("log-config-dict", null, "JSON", null, SettingKind.Text,
            "A logging.config.dictConfig dictionary as a JSON object (gunicorn's logconfig_dict), applied like " +
            "--log-config; laid key by key over gunicorn's defaults, as gunicorn does: without its own \"root\" " +
            "the root logger logs INFO to stdout through the defaults' \"console\" handler (so a dictionary with " +
            "its own \"handlers\" names \"root\" too). Wins over --log-config-json and --log-config.",
            Section: "Logging"),
        new("log-config-json", null, "FILE", null, SettingKind.Text,
            "The same dictionary read from a JSON file (gunicorn's --log-config-json), relative to --chdir. Wins " +
            "over --log-config.", Section: "Logging"),
        new("log-syslog", null, "", "false", SettingKind.Flag,
            "Send the error log, and the access log lines, to syslog too (gunicorn's --log-syslog), from the " +
            "supervisor and every worker: \"<PRI>gunicorn.PREFIX.error[PID]: message\" (.access for access " +
            "lines, at info). Sent by a background thread; a syslog that is away or slow loses lines, it never " +
            "holds a request.", Section: "Logging"),
        new("log-syslog-to", null, "ADDRESS", "unix:///dev/log", SettingKind.Text,
            "Where --log-syslog sends: unix://PATH (datagram, else stream; #dgram or #stream to choose), " +
            "udp://HOST:PORT or tcp://HOST:PORT (port 514 when left out; TCP frames each message with its " +
            "length, RFC 6587).", Section: "Logging"),
        new("log-syslog-prefix", null, "NAME", null, SettingKind.Text,
            "The program name in --log-syslog's tags, gunicorn.NAME.error and gunicorn.NAME.access. Default: " +
            "--name when set, else the APP (':' and '/' become '.'), else sharpwsgi.", Section: "Logging"),
        new("log-syslog-facility", null, "FACILITY", "user", SettingKind.Choice,
            "The syslog facility of --log-syslog's messages: auth, authpriv, cron, daemon, ftp, kern, lpr, mail, " +
            "news, security, syslog, user, uucp, local0 ... local7.", Choices: Logging.SyslogFormat.FacilityNames,
            Section: "Logging"),
        new("disable-redirect-access-to-syslog", null, "", "false", SettingKind.Flag,
            "With --log-syslog, keep the access log lines out of syslog (gunicorn's flag).", Section: "Logging"),
        new("config", "-c", "FILE", null, SettingKind.Text,
            "A settings file: one 'name = value' per line (names as the long flags, without --; # starts a comment), " +
            "or gunicorn's Python config file (FILE.py, or python:MODULE) with its settings under gunicorn's names " +
            "and its server hooks (docs/gunicorn.md). Without it, ./gunicorn.conf.py is read when it exists, as " +
            "gunicorn does. Read at start and again on SIGHUP.", Section: "Server"),

        new("workers", "-w", "N", "1", SettingKind.Workers,
            "Worker processes, each with its own Python interpreter and threads. 0 or auto: one per CPU.",
            Section: "Workers"),
        new("timeout", "-t", "SECONDS", "30", SettingKind.Seconds,
            "A worker whose Python has not been responsive (heartbeat through the GIL) for this long is killed " +
            "(SIGABRT, then SIGKILL) and replaced; one with every Python thread busy, requests waiting and no " +
            "request finished for this long is recycled. 0 disables both.", Section: "Workers"),
        new("graceful-timeout", null, "SECONDS", "30", SettingKind.Seconds,
            "On SIGTERM, reload or recycling, how long a worker may take to finish its in-flight requests " +
            "before it is killed.",
            Section: "Workers"),
        new("shutdown-delay", null, "SECONDS", "0", SettingKind.Seconds,
            "On SIGTERM, keep accepting and serving for this long while /readyz (--metrics-bind) answers 503, so " +
            "load balancers stop sending new connections before the listeners close (Kubernetes removes a " +
            "terminating pod from its endpoints while the TERM is already on its way); then stop as usual: close " +
            "the listeners, let in-flight requests finish within --graceful-timeout. A second TERM ends the delay " +
            "at once; INT and QUIT never wait. 0: close the listeners at once.", Section: "Workers"),
        new("request-timeout", null, "SECONDS", "60", SettingKind.Seconds,
            "A request running longer gets 504, and RequestTimeout is raised inside its Python thread so the worker " +
            "lives on. The default is mod_wsgi-express's: far beyond any page a person waits for, short enough that " +
            "a runaway request does not hold a thread for good. 0 disables.", Section: "Workers"),
        new("request-timeout-grace", null, "SECONDS", "5", SettingKind.Seconds,
            "How long a timed-out Python thread has to return before its worker is recycled.", Section: "Workers"),
        new("queue-timeout", null, "SECONDS", "0", SettingKind.Seconds,
            "A request that waited longer than this for a Python thread gets 503 without running. 0 disables.",
            Section: "Workers"),
        new("max-requests", null, "N", "0", SettingKind.NonNegativeInt,
            "Recycle a worker after it has served this many requests (its replacement is accepting first). 0 disables.",
            Section: "Workers"),
        new("max-requests-jitter", null, "N", "0", SettingKind.NonNegativeInt,
            "Add a random 0..N to --max-requests per worker, so workers do not all recycle at once.",
            Section: "Workers"),
        new("max-lifetime", null, "SECONDS", "0", SettingKind.Seconds,
            "Recycle a worker after it has run this long. 0 disables.", Section: "Workers"),
        new("max-rss", null, "MB", "0", SettingKind.NonNegativeInt,
            "Recycle a worker whose resident memory exceeds this many MiB. 0 disables.", Section: "Workers"),
        new("reload", null, "", "false", SettingKind.Flag,
            "Development: restart the workers when a .py file under the app's directory " +
            "(or a --reload-extra-file) changes.",
            Section: "Workers"),
        new("reload-extra-file", null, "FILE", null, SettingKind.Text,
            "Another file or directory to watch with --reload. Repeat for several.", Repeatable: true,
            Section: "Workers"),
        new("reuse-port", null, "", "false", SettingKind.Flag,
            "Each worker binds its own SO_REUSEPORT socket (the kernel balances connections) instead of sharing the " +
            "supervisor's sockets. TCP binds with a fixed port only.", Section: "Workers"),
        new("switch-interval", null, "SECONDS", "0.005", SettingKind.Seconds,
            "Python's sys.setswitchinterval: how long a Python thread waiting for the GIL waits before it forces " +
            "the running one to stop. Longer keeps CPU-bound requests from being interleaved (measured: Flask p99 " +
            "at 4 threads 36-41 ms with 0.005, 13-44 ms with 0.2, 12-13 ms with 1 thread), but then the monitor " +
            "thread can wait that long too: with several threads in pure-Python loops it missed a 2 s heartbeat at " +
            "0.2. A thread that blocks (I/O, sleep, database) releases the GIL at once whatever the value.",
            Section: "Workers"),

        new("body-buffer-size", null, "BYTES", "1m", SettingKind.Bytes,
            "Request bodies up to this size are read by the server before the app runs, so a slow uploader holds no " +
            "Python thread. 0 streams every body to the app as it arrives.", Section: "Buffering"),
        new("body-buffer-total", null, "BYTES", "64m", SettingKind.Bytes,
            "Request bodies held in memory by one worker at once; past it, bodies are spooled to --tmp-dir instead.",
            Section: "Buffering"),
        new("body-spool-size", null, "BYTES", "64m", SettingKind.Bytes,
            "A larger request body is spooled to a temporary file up to this size before the app runs; only the rest " +
            "streams to the app as it arrives.", Section: "Buffering"),
        new("response-buffer-size", null, "BYTES", "1m", SettingKind.Bytes,
            "Response bytes held in memory per connection for a client that reads slowly; past it, the rest is " +
            "spooled to --tmp-dir, so the Python thread finishes the response and moves on.", Section: "Buffering"),
        new("response-spool-size", null, "BYTES", "1g", SettingKind.Bytes,
            "Response bytes of one response that may wait in a spool file; past it the Python thread waits for the " +
            "client (at most --send-timeout without progress).", Section: "Buffering"),
        new("response-spool-total", null, "BYTES", "4g", SettingKind.Bytes,
            "Spooled response bytes (not sent yet) of all responses of one worker. Past it a Python thread waits " +
            "for room, which any response's client makes (the delivery watchdog drops the ones that take " +
            "nothing); it gives up on its own client only after --send-timeout + 2 s with no room made at all.",
            Section: "Buffering"),
        new("tmp-dir", null, "DIR", null, SettingKind.Text,
            "Directory for spool files (unlinked as soon as they are created). Default: the system temp directory.",
            Section: "Buffering"),
        new("static", null, "URL_PREFIX=DIR", null, SettingKind.Text,
            "Files under DIR are sent by the server itself for GET and HEAD under URL_PREFIX, without Python (e.g. " +
            "/static/=/srv/app/static after Django's collectstatic): Content-Type by extension, ETag and " +
            "Last-Modified (304s), one byte range, precompressed .br/.gz siblings. No dotfiles, no directory " +
            "listings, nothing outside DIR (symlinks included). Repeat for several.", Repeatable: true,
            Section: "Static files"),
        new("static-max-age", null, "SECONDS", "60", SettingKind.NonNegativeInt,
            "Cache-Control max-age for --static files (0: no-cache, revalidate each time). Names with a content " +
            "hash (name.0123456789ab.css, as Django's ManifestStaticFilesStorage writes them) get a year and " +
            "immutable.", Section: "Static files"),
        new("static-fallthrough", null, "on|off", "on", SettingKind.Choice,
            "A --static URL with no file behind it goes to the app (on: the app answers its own 404), or gets the " +
            "server's plain 404 (off).", Choices: new[] { "on", "off" }, Section: "Static files"),
        new("no-sendfile", null, "", "false", SettingKind.Flag,
            "Send --static files by copying them through Kestrel instead of sendfile(2) (gunicorn's flag). By " +
            "default a file over 64 KiB on a cleartext HTTP/1.1 connection goes from the page cache to the socket " +
            "without passing through the process; TLS and HTTP/2 connections always copy.", Section: "Static files"),
        new("internal", null, "URL_PREFIX=DIR", null, SettingKind.Text,
            "A location the app may send files from with the response header X-Accel-Redirect: URL_PREFIX/name " +
            "(nginx's internal location; django-sendfile2's nginx backend): the app's body is dropped and the " +
            "file under DIR is sent as --static sends it (validators and 304, one range, sendfile), with the " +
            "app's other headers (Content-Disposition, Cache-Control) kept and the file's status. A request from " +
            "outside under URL_PREFIX gets 404. Repeat for several.", Repeatable: true, Section: "Static files"),
        new("x-sendfile-root", null, "DIR", null, SettingKind.Text,
            "A directory the app may send files from with the response header X-Sendfile: /absolute/path (Apache's " +
            "mod_xsendfile), sent as for --internal. A path outside every such DIR (symlinks resolved) gets 404. " +
            "Repeat for several.", Repeatable: true, Section: "Static files"),
        new("compress", null, "", "false", SettingKind.Flag,
            "Compress the app's responses on the fly, br or gzip by the client's Accept-Encoding (br when it rates " +
            "br at least as high as gzip): text/*, JSON, JavaScript, XML and SVG (a small built-in table) of at " +
            "least --compress-min-size, or of unknown length, with Vary: Accept-Encoding; streamed bodies are " +
            "compressed as they flow. Never for ranges, HEAD, 204/304, bodies with a Content-Encoding, live streams " +
            "(text/event-stream, X-Accel-Buffering: no), Cache-Control: no-transform, or HTTP/1.0 clients. Files " +
            "the server sends itself (--static, X-Accel-Redirect) are not compressed on the fly: give them " +
            ".br/.gz siblings.", Section: "Compression"),
        new("compress-min-size", null, "BYTES", "1024", SettingKind.Bytes,
            "With --compress, responses whose Content-Length is smaller than this are sent as they are (below a " +
            "packet or two there is nothing to win).", Section: "Compression"),
        new("send-timeout", null, "SECONDS", "30", SettingKind.Seconds,
            "A client that takes nothing of what the server has for it for this long is dropped, whatever holds " +
            "the bytes (Kestrel's buffer, a response spool, a static file, TLS, HTTP/2): per TCP connection, by " +
            "the bytes its TCP acknowledged, checked once a second (so up to a second later), logged at info. A " +
            "Python thread that must wait for its client (a live stream such as text/event-stream, or a full " +
            "spool) also gives up after this long without progress, and is free again. The other way round, a " +
            "client that sends no byte of a request body for this long while the server reads it ahead gets 408 " +
            "(nginx's client_body_timeout). 0 disables. Unix-socket connections are not watched for their " +
            "reading (their client is a local proxy).", Section: "Buffering"),
        new("min-upload-rate", null, "BYTES", "240", SettingKind.Bytes,
            "A client sending a request body more slowly than this many bytes per second (after --min-rate-grace) is " +
            "dropped (408 while the server reads the body; an OSError in the app while it streams). 0 disables.",
            Section: "Buffering"),
        new("min-download-rate", null, "BYTES", "240", SettingKind.Bytes,
            "A client taking what the server has for it more slowly than this many bytes per second, on average " +
            "since data started waiting for it, is dropped once --min-rate-grace has passed: per TCP connection, by " +
            "the bytes its TCP acknowledged, checked once a second, logged at info. Kestrel's own per-write limit " +
            "at this rate stays too (it is what drops an HTTP/2 client that starves one stream's flow-control " +
            "window). 0 disables both.", Section: "Buffering"),
        new("min-rate-grace", null, "SECONDS", "5", SettingKind.Seconds,
            "How long a transfer may run below --min-upload-rate or --min-download-rate before the client is dropped " +
            "(more than 1). For a download the clock starts when data starts waiting for the client, and starts " +
            "over each time the client has taken everything.",
            Section: "Buffering"),

        new("certfile", null, "FILE", null, SettingKind.Text,
            "PEM certificate (with its chain) for TLS. With it every TCP --bind speaks TLS unless written http://; " +
            "unix sockets stay cleartext (a local proxy in front). Re-read on SIGHUP: new workers take the new pair.",
            Section: "TLS and HTTP/2"),
        new("keyfile", null, "FILE", null, SettingKind.Text,
            "PEM private key of --certfile (PKCS#8, PKCS#1 or SEC1; may be encrypted, see --keyfile-password-file). " +
            "Default: the key inside --certfile.", Section: "TLS and HTTP/2"),
        new("keyfile-password-file", null, "FILE", null, SettingKind.Text,
            "File whose first line is the password of an encrypted --keyfile.", Section: "TLS and HTTP/2"),
        new("ca-certs", null, "FILE", null, SettingKind.Text,
            "PEM CA certificates that client certificates must chain to (mTLS, with --cert-reqs).",
            Section: "TLS and HTTP/2"),
        new("cert-reqs", null, "MODE", "none", SettingKind.Choice,
            "Client certificates (mTLS, with --ca-certs): none (not asked for), optional (asked for; a client " +
            "without one is served with SSL_CLIENT_VERIFY NONE), required (the handshake fails without one). " +
            "Either way a certificate that does not chain to --ca-certs fails the handshake.",
            Choices: new[] { "none", "optional", "required" }, Section: "TLS and HTTP/2"),
        new("tls-min-version", null, "VERSION", "1.2", SettingKind.Choice,
            "Oldest TLS version accepted (SSLv3, TLS 1.0 and 1.1 are never offered).",
            Choices: new[] { "1.2", "1.3" }, Section: "TLS and HTTP/2"),
        new("ciphers", null, "SUITES", null, SettingKind.Text,
            "TLS 1.2 cipher suites, colon-separated IANA or OpenSSL names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or " +
            "ECDHE-RSA-AES128-GCM-SHA256). TLS 1.3 always uses its three standard suites. Default: ECDHE with " +
            "AES-GCM or ChaCha20-Poly1305 only (forward secrecy, AEAD). DEFAULT: OpenSSL's configured list " +
            "(openssl.cnf), which also gives TLS 1.2 session resumption: .NET does not resume sessions under a " +
            "suite list of its own.", Section: "TLS and HTTP/2"),
        new("http2", null, "on|off", "on", SettingKind.Choice,
            "HTTP/2: over TLS by ALPN, and on cleartext ports as prior-knowledge h2c next to HTTP/1.1 (chosen per " +
            "connection from its first bytes). off: HTTP/1.1 only. HTTP/3 is not offered (it needs libmsquic).",
            Choices: new[] { "on", "off" }, Section: "TLS and HTTP/2"),
        new("http2-max-concurrent-streams", null, "N", "100", SettingKind.PositiveInt,
            "Streams one HTTP/2 connection may have open at once; more are refused (RST_STREAM REFUSED_STREAM).",
            Section: "TLS and HTTP/2"),
        new("http2-stream-window", null, "BYTES", "768k", SettingKind.Bytes,
            "HTTP/2 flow-control window per stream for request bodies (how much a client may send ahead).",
            Section: "TLS and HTTP/2"),
        new("http2-connection-window", null, "BYTES", "1m", SettingKind.Bytes,
            "HTTP/2 flow-control window per connection for request bodies (at least --http2-stream-window).",
            Section: "TLS and HTTP/2"),

        new("forwarded-allow-ips", null, "ADDRESSES", "127.0.0.1,::1", SettingKind.AddressList,
            "Proxies trusted to set the client address and scheme: comma-separated addresses and CIDR ranges, or * " +
            "for every peer; unix-socket peers are trusted unless the list is empty (as in gunicorn). From a " +
            "trusted peer, X-Forwarded-For and RFC 7239 Forwarded for= are read from the right, skipping listed " +
            "proxies (* trusts no entry, so alone it takes the right-most): the first other address becomes " +
            "REMOTE_ADDR, REMOTE_PORT the port given with it or 0, and the peer's own address and port stay in " +
            "sharpwsgi.proxy_addr and sharpwsgi.proxy_port. Forwarded proto= and --secure-scheme-headers set " +
            "wsgi.url_scheme and HTTPS. When Forwarded and X-Forwarded-* are both present they must agree, else " +
            "neither is used; malformed values are ignored. From other peers these headers reach the app " +
            "unchanged (as HTTP_*) and change nothing else.",
            Section: "Proxies"),
        new("secure-scheme-headers", null, "HEADERS", "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https," +
            "X-FORWARDED-SSL=on", SettingKind.Text,
            "Headers a trusted proxy sets to say the client used https, as NAME=VALUE pairs (gunicorn's): a listed " +
            "header with that value (case-insensitive) means https, with another value http; when the headers " +
            "present disagree none is used. The proxy must set or remove each of them. Empty: only the " +
            "connection and Forwarded proto= decide.",
            Section: "Proxies"),
        new("proxy-protocol", null, "MODE", "off", SettingKind.Choice,
            "PROXY protocol (v1 and v2, as HAProxy, nginx's stream proxy_protocol and cloud load balancers send " +
            "it) before TLS and HTTP: on (every connection must start with a PROXY header; the flag alone means " +
            "on), optional (used when present), off. The header's source becomes REMOTE_ADDR/REMOTE_PORT; its " +
            "destination is what SERVER_NAME/SERVER_PORT fall back to without a Host header. v2 LOCAL (health " +
            "checks) and v1 UNKNOWN keep the connection's own addresses. A missing (when on), malformed or " +
            "truncated header, or one not complete within --header-timeout, closes the connection before any " +
            "request reaches the app.",
            Choices: new[] { "off", "on", "optional" }, Section: "Proxies", BareValue: "on"),
        new("proxy-allow-from", null, "ADDRESSES", "127.0.0.1,::1", SettingKind.AddressList,
            "Peers allowed to send a PROXY header: comma-separated addresses and CIDR ranges, or *. With " +
            "--proxy-protocol on every connection from another peer is closed; with optional only one that sends " +
            "a PROXY header is. Connections over unix sockets have no IP peer and are always allowed.",
            Section: "Proxies"),

        new("limit-request-line", null, "BYTES", "4094", SettingKind.NonNegativeInt,
            "Longest request line (method, target, version, without CRLF) accepted; longer gets 414 naming the " +
            "limit. HTTP/2 has no line: its method and :path are measured as the HTTP/1.1 line would be. Past " +
            "twice the limit (at least 64 KiB) Kestrel answers 414 itself, without a body. 0: no limit of ours " +
            "(Kestrel still stops at 1 MiB).", Section: "Limits"),
        new("limit-request-fields", null, "N", "100", SettingKind.NonNegativeInt,
            "Most header fields in a request (each repeat counts); more gets 431 naming the limit. Past twice the " +
            "limit (at least 1000) Kestrel answers itself, without a body. 0: no limit of ours (Kestrel stops at " +
            "10000).",
            Section: "Limits"),
        new("limit-request-field_size", null, "BYTES", "8190", SettingKind.NonNegativeInt,
            "Largest header field, measured as the line 'Name: value' plus CRLF (gunicorn's measure); larger gets " +
            "431 naming the field. Kestrel's backstop is the whole head (fields x (size + 64), at most 1 MiB). 0: " +
            "no limit of ours (Kestrel stops the whole head at 1 MiB).", Section: "Limits"),
        new("limit-request-body", null, "BYTES", "0", SettingKind.Bytes,
            "Largest request body; a larger Content-Length gets 413 before the app runs; a chunked (or HTTP/2) " +
            "body gets it as soon as it crosses the limit, before the app when the body is read ahead " +
            "(--body-buffer-size), else as the app's wsgi.input read fails. 0: no limit.", Section: "Limits"),
        new("header-timeout", null, "SECONDS", "30", SettingKind.Seconds,
            "Time a client has to send a complete request head (and the PROXY header); slower gets 408 and the " +
            "connection is closed (Kestrel's own 408, without a body). It also bounds the TLS handshake (at least " +
            "1 s there).", Section: "Limits"),
        new("max-connections", null, "N", "10000", SettingKind.NonNegativeInt,
            "Open connections per worker; while a worker holds this many it accepts no more, so new connections " +
            "wait in the listen backlog (--backlog) for a free slot in any worker. 0: no limit.",
            Section: "Limits"),

        new("metrics-bind", null, "ADDRESS", null, SettingKind.Text,
            "Serve /metrics (Prometheus text format, summed over all workers), /healthz (the supervisor runs) and " +
            "/readyz (a worker accepts; 503 while booting or stopping) at HOST:PORT, from the supervisor, without " +
            "Python. Port 0 picks a free port (logged as \"Metrics at: URL\"). Off by default.",
            Section: "Metrics"),
        new("statsd-host", null, "ADDRESS", null, SettingKind.Text,
            "Send gunicorn's statsd metrics to HOST:PORT (UDP; port 8125 when left out) or unix://PATH (a " +
            "datagram socket): gunicorn.requests, gunicorn.request.duration (ms), gunicorn.request.status.NNN " +
            "from each worker, gunicorn.workers from the supervisor, gunicorn.log.critical/error/warning/" +
            "exception from every process. Batched by a background thread, at most ~20 ms late; a request never " +
            "waits for it.", Section: "Metrics"),
        new("statsd-prefix", null, "PREFIX", null, SettingKind.Text,
            "Put in front of every statsd metric name, with a '.' after it (PREFIX.gunicorn.requests).",
            Section: "Metrics"),
        new("dogstatsd-tags", null, "TAGS", null, SettingKind.Text,
            "Datadog (DogStatsD) tags added to every statsd metric, comma-separated: env:prod,service:shop.",
            Section: "Metrics"),

        new("pid", "-p", "FILE", null, SettingKind.Text,
            "Write the supervisor's process id to FILE (removed on exit).", Section: "Workers"),
        new("hook-timeout", null, "SECONDS", "30", SettingKind.Seconds,
            "How long the supervisor waits for one call of a Python config file's supervisor-side hook (on_starting, " +
            "when_ready, pre_fork, child_exit, nworkers_changed, on_reload, on_exit), which runs in its hook host " +
            "process; past it the call is given up, logged, and the hook host started afresh for the next one. " +
            "0: no limit.", Section: "Server"),

        new("user", "-u", "USER", null, SettingKind.Text,
            "Run as this user (a name or a number) once the sockets are bound: started as root, the supervisor " +
            "binds, writes the pid file, opens the logs, hands the files it created to the user, then takes the " +
            "user's supplementary groups, the group and the user for good; the workers start as the user. Not " +
            "root: only the current user is accepted. gunicorn switches only its workers and keeps the starter's " +
            "group; here the group defaults to the user's own.", Section: "Process"),
        new("group", "-g", "GROUP", null, SettingKind.Text,
            "Run as this group (a name or a number) once the sockets are bound, as --user. Default: --user's primary " +
            "group (the current group without --user).", Section: "Process"),
        new("umask", "-m", "MASK", null, SettingKind.Text,
            "File mode mask of the supervisor and the workers, so of every file the server and the app create (pid " +
            "file, logs, the app's files): octal 0o27 or 027, hex 0x17 or decimal 23, as gunicorn reads it. Unix " +
            "sockets from --bind get mode 0777 less this mask, as in gunicorn, whose default mask 0 makes them " +
            "0777 (any local user may connect). Unset: the mask the server was started with.", Section: "Process"),
        new("env", "-e", "KEY=VALUE", null, SettingKind.Text,
            "Set an environment variable in the supervisor before it starts the workers, so they and the app's " +
            "os.environ have it (gunicorn's raw_env); re-applied on SIGHUP. Repeat for several. SharpWsgi's own " +
            "SHARPWSGI_* variables are refused: give the settings themselves.", Repeatable: true, Section: "Process"),
        new("name", "-n", "NAME", null, SettingKind.Text,
            "Process titles, as gunicorn's proc_name: ps and /proc/PID/cmdline show \"sharpwsgi: master [NAME]\" and " +
            "\"sharpwsgi: worker [NAME]\", and the kernel's process name (/proc/PID/comm, ps -o comm, top, pgrep; " +
            "15 bytes) becomes NAME. Unset: the titles name the app as given, and the kernel's names stay sharpwsgi " +
            "and python3.x.", Section: "Process"),
        new("daemon", "-D", "", "false", SettingKind.Flag,
            "Run in the background: detached from the terminal in a session of its own (forked by the launcher " +
            "before .NET starts), stdin from /dev/null, stdout and stderr to /dev/null once it serves (use " +
            "--error-logfile). The command returns once every worker serves, with 0, or with the server's exit " +
            "code when it failed to start (its messages reach the terminal first); --pid FILE then holds the " +
            "daemon's pid.", Section: "Process"),
        new("capture-output", null, "", "false", SettingKind.Flag,
            "Send stdout and stderr (descriptors 1 and 2) of the supervisor and the workers to --error-logfile: the " +
            "app's print()s, tracebacks written to sys.stderr, and what C extensions write there. The workers' " +
            "sys.stdout is line-buffered then, so each printed line lands as it is printed; USR1 reopens it with " +
            "the log. Without --error-logfile FILE it does nothing, as in gunicorn.", Section: "Logging"),
    };

    public static Setting? ByFlag(string flag) =>
        All.FirstOrDefault(s => s.LongFlag == flag || s.ShortFlag == flag || "--" + s.NormalName == flag);

    /// <summary>A setting by its name as written in a config file (either '-' or '_' between words).</summary>
    public static Setting? ByName(string name) =>
        All.FirstOrDefault(s => s.NormalName == name.Replace('_', '-'));
}
