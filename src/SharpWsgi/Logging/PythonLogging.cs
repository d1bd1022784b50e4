using System.Text.Json;
using SharpWsgi.Configuration;
using SharpWsgi.Gateway;
using SharpWsgi.Python;

namespace SharpWsgi.Logging;

/// <summary>
/// The app's Python logging, configured in every worker (in each interpreter, with its GIL held) before the app is
/// imported, from the one source that applies, in gunicorn's order: --log-config-dict, else --log-config-json,
/// else --log-config, else the --paste file's own logging sections (gunicorn sets logconfig to that file, and an
/// explicit flag replaces it). A configuration Python refuses stops the worker as an app that fails to import
/// does: one paragraph, exit code 4, and the supervisor halts instead of respawning.
/// </summary>
public static class PythonLogging
{
    // Kept in Python: logging.config's own errors are what a Python user expects to read.
    private const string ConfigureSource = """
import configparser, copy, json, logging.config, os

class LogConfigError(Exception):
    pass

# A dictionary is laid over gunicorn's default logging config (glogging.CONFIG_DEFAULTS) key by key, as gunicorn
# does, so what a dictionary written for gunicorn leaves out (say "root") means the same here.
GUNICORN_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": True,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]", "class": "logging.Formatter"},
    },
}

def existing(given):
    path = os.path.abspath(given)
    if not os.path.isfile(path):
        raise LogConfigError("there is no file %s%s" % (path, "" if os.path.isabs(given) else
                             " (a relative path is read from the worker's directory, --chdir's)"))
    return path

def describe(error):
    # dictConfig says which handler it could not make; the cause says why (a missing directory, a bad class).
    text = "%s: %s" % (type(error).__name__, error)
    cause = error.__cause__
    if cause is not None:
        text += " (%s: %s)" % (type(cause).__name__, cause)
    return text

def configure(kind, value):
    if kind in ("dict", "json"):
        if kind == "json":
            path = existing(value)
            with open(path, encoding="utf-8") as f:
                try:
                    given = json.load(f)
                except ValueError as e:
                    raise LogConfigError("%s is not JSON: %s" % (path, e)) from None
        else:
            given = json.loads(value)
        if not isinstance(given, dict):
            raise LogConfigError("expected a JSON object, the dictionary dictConfig takes")
        config = copy.deepcopy(GUNICORN_DEFAULTS)
        config.update(given)
        logging.config.dictConfig(config)
        return
    if kind == "paste":
        if not os.path.isfile(value):
            return  # the app loader says that the --paste file is not there
        path = value
        sections = configparser.RawConfigParser()
        sections.read(path)
        if not sections.has_section("loggers"):
            return
    else:
        path = existing(value)
    logging.config.fileConfig(path, defaults={"__file__": path, "here": os.path.dirname(path)},
                              disable_existing_loggers=False)

def run(kind, value):
    "None when configured, else what went wrong, in a sentence."
    try:
        configure(kind, value)
    except LogConfigError as e:
        return str(e)
    except Exception as e:
        function = "dictConfig" if kind in ("dict", "json") else "fileConfig"
        return "Python's logging.config.%s could not use it: %s" % (function, describe(e))
    return None
""";

    /// <summary>Which configuration applies: (kind for the Python side, value, the flag that named it), or null.
    /// </summary>
    public static (string Kind, string Value, string Flag)? Choose(ServerSettings settings)
    {
        if (settings.LogConfigDict is { } dict) return ("dict", dict, "--log-config-dict");
        if (settings.LogConfigJson is { } json) return ("json", json, "--log-config-json " + json);
        if (settings.LogConfigFile is { } file) return ("file", file, "--log-config " + file);
        if (settings.App is { } app && app.StartsWith(AppLoader.PastePrefix, StringComparison.Ordinal))
        {
            var paste = app[AppLoader.PastePrefix.Length..].Split('#')[0];
            return ("paste", paste, "--paste " + paste);
        }
        return null;
    }

    /// <summary>A worker's app import in one interpreter (GIL held): its logging first, then the app.</summary>
    public static PyOwned ConfigureThenLoad(ServerSettings settings, string version)
    {
        Configure(settings);
        return AppLoader.Load(settings.App, version);
    }

    /// <summary>Configures logging in the current interpreter (GIL held) when a configuration applies; throws
    /// <see cref="AppLoadException"/> with one paragraph when Python refuses it.</summary>
    public static void Configure(ServerSettings settings)
    {
        if (Choose(settings) is not var (kind, value, flag)) return;
        using var globals = Py.Dict();
        Py.Exec(ConfigureSource, globals);
        using var k = Py.Str(kind);
        using var v = Py.Str(value);
        using var problem = Py.Call(Py.DictGet(globals, "run"), k, v);
        if (Py.IsNone(problem.Borrow())) return;
        throw new AppLoadException($"{flag}: {Py.StrToString(problem.Borrow())}. The worker stopped before " +
            "importing the app.");
    }

    /// <summary>Null when <paramref name="value"/> is a JSON object (--log-config-dict), else why not; checked
    /// where the setting is read, so a typo stops the start with a usage error.</summary>
    public static string? ValidateDictionary(string value)
    {
        try
        {
            using var document = JsonDocument.Parse(value);
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? null : "expected a JSON object, the dictionary logging.config.dictConfig takes";
        }
        catch (JsonException e)
        {
            return "not JSON: " + e.Message;
        }
    }
}
