using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>Raised when the APP cannot be imported or is not a WSGI callable; the message is one paragraph.</summary>
public sealed class AppLoadException : Exception
{
    public string? PythonTraceback { get; }
    public AppLoadException(string message, string? traceback = null) : base(message) => PythonTraceback = traceback;
}

/// <summary>
/// Resolves APP (module:name, module:factory(), module, path/to/file.py[:name], or paste:FILE[#NAME] from
/// --paste) to the WSGI callable, or the built-in welcome app when APP is empty. Runs with the GIL held.
/// </summary>
public static class AppLoader
{
    /// <summary>What --paste FILE[#NAME] becomes in the APP spec the worker loads.</summary>
    public const string PastePrefix = "paste:";

    // Kept in Python: importlib does the work, and its errors are what a Python user expects to read.
    private const string LoaderSource = """
import importlib, importlib.util, os, sys

class AppSpecError(Exception):
    pass

def _split(spec):
    # 'path/to/file.py:name' or 'module.sub:name' or 'module'
    head, sep, tail = spec.rpartition(':')
    if sep and not tail.endswith('.py') and '/' not in tail and '\\' not in tail:
        return head, tail
    return spec, None

def load_paste(spec):
    path, _, name = spec.partition('#')
    if not os.path.isfile(path):
        raise AppSpecError("the PasteDeploy config file is not there: %s" % path)
    try:
        from paste.deploy import loadapp
    except ImportError:
        raise AppSpecError("--paste needs PasteDeploy in %s (Debian: python3-pastedeploy; pip: PasteDeploy)"
                           % sys.executable) from None
    # The file's logging sections were applied before this (the host's PythonLogging, which decides between them
    # and an explicit --log-config, as gunicorn does).
    here = os.path.dirname(path)
    if here not in sys.path:
        sys.path.insert(0, here)
    return loadapp('config:' + path, name=name or None, relative_to=here)

def load(spec):
    if spec.startswith('paste:'):
        return load_paste(spec[len('paste:'):])
    target, attr = _split(spec)
    if target.endswith('.py') or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise AppSpecError("file not found: %s" % path)
        directory = os.path.dirname(path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = os.path.splitext(os.path.basename(path))[0]
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    call = False
    if attr is None:
        for candidate in ('application', 'app'):
            if hasattr(module, candidate):
                attr = candidate
                break
        else:
            raise AppSpecError("module %r has no 'application' or 'app'; name the callable as %s:NAME"
                               % (module.__name__, spec))
    elif attr.endswith('()'):
        attr, call = attr[:-2], True
    elif '(' in attr:
        raise AppSpecError("factory arguments are not supported in %r; use %s:FACTORY()" % (spec, target))
    obj = module
    for part in attr.split('.'):
        if not part.isidentifier():
            raise AppSpecError("%r is not a valid attribute name in %r" % (part, spec))
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppSpecError("module %r has no attribute %r" % (module.__name__, attr)) from None
    if call:
        if not callable(obj):
            raise AppSpecError("%s is not callable, so it cannot be called as a factory" % attr)
        obj = obj()
    if not callable(obj):
        raise AppSpecError("%s in %r is %s, not a WSGI callable" % (attr, module.__name__, type(obj).__name__))
    return obj
""";

    public static PyOwned Load(string? spec, string serverVersion)
    {
        using var globals = Py.Dict();
        if (string.IsNullOrWhiteSpace(spec))
        {
            Py.Exec(WelcomeApp.Source, globals);
            using (var v = Py.Str(serverVersion)) Py.DictSet(globals, "SERVER_VERSION", v);
            var welcome = Py.DictGet(globals, "application").NewReference();
            return welcome.ToOwned();
        }
        Py.Exec(LoaderSource, globals);
        var load = Py.DictGet(globals, "load");
        var specError = Py.DictGet(globals, "AppSpecError");
        try
        {
            using var s = Py.Str(spec);
            var app = Py.Call(load, s);
            return app.ToOwned();
        }
        catch (PythonException e)
        {
            if (e.Matches(specError))
                throw new AppLoadException($"Failed to load the application '{spec}': {e.PythonMessage}.");
            throw new AppLoadException($"Failed to load the application '{spec}': importing it raised " +
                                       $"{e.TypeName}: {e.PythonMessage}. " +
                                       "The Python traceback follows.", e.Traceback);
        }
    }
}
