using System.Text;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway.Environ;

/// <summary>
/// Builds the PEP 3333 environ: a copy of a prebuilt template (constant keys and values) plus the
/// per-request keys. Keys are interned Python strings made once; values are native str holding the
/// request's bytes as latin-1 code points. Runs on a Python thread with the GIL held.
/// </summary>
public sealed class EnvironBuilder
{
    private readonly PyOwned _template;
    private readonly PyOwned _requestMethod, _scriptName, _pathInfo, _queryString, _contentType, _contentLength,
        _serverName, _serverPort, _serverProtocol, _remoteAddr, _remotePort, _rawUri, _requestUri, _wsgiInput,
        _urlScheme;
    private readonly PyOwned _emptyString, _rootPathValue;
    private readonly Dictionary<string, PyOwned> _constants = new(StringComparer.Ordinal);
    // Header name -> interned "HTTP_..." key. Bounded: client-chosen names must not grow it forever.
    private readonly Dictionary<string, PyOwned> _headerKeys = new(StringComparer.OrdinalIgnoreCase);
    private const int MaxCachedHeaderKeys = 512;
    private readonly string _rootPath;
    private readonly Func<bool>? _multiprocessProbe;
    private bool _multiprocess;
    private readonly IGatewayLog _logger;

    public EnvironBuilder(WsgiOptions options, WsgiObjects objects, IGatewayLog logger)
    {
        _logger = logger;
        _rootPath = options.RootPath.TrimEnd('/');
        _requestMethod = Py.Intern("REQUEST_METHOD");
        _scriptName = Py.Intern("SCRIPT_NAME");
        _pathInfo = Py.Intern("PATH_INFO");
        _queryString = Py.Intern("QUERY_STRING");
        _contentType = Py.Intern("CONTENT_TYPE");
        _contentLength = Py.Intern("CONTENT_LENGTH");
        _serverName = Py.Intern("SERVER_NAME");
        _serverPort = Py.Intern("SERVER_PORT");
        _serverProtocol = Py.Intern("SERVER_PROTOCOL");
        _remoteAddr = Py.Intern("REMOTE_ADDR");
        _remotePort = Py.Intern("REMOTE_PORT");
        _rawUri = Py.Intern("RAW_URI");
        _requestUri = Py.Intern("REQUEST_URI");
        _wsgiInput = Py.Intern("wsgi.input");
        _urlScheme = Py.Intern("wsgi.url_scheme");
        _emptyString = Constant("");
        _rootPathValue = Constant(_rootPath);

        var t = Py.Dict();
        using (var one = Py.Long(1))
        using (var zero = Py.Long(0))
        using (var v10 = Py.Tuple(one, zero))
            Py.DictSet(t, "wsgi.version", v10);
        Py.DictSet(t, "wsgi.errors", objects.ErrorStream);
        Py.DictSet(t, "wsgi.multithread", Py.Bool(options.Threads > 1));
        _multiprocess = options.MultiprocessProbe?.Invoke() ?? options.Multiprocess;
        _multiprocessProbe = options.MultiprocessProbe;
        Py.DictSet(t, "wsgi.multiprocess", Py.Bool(_multiprocess));
        Py.DictSet(t, "wsgi.run_once", Py.False);
        Py.DictSet(t, "wsgi.input_terminated", Py.True);
        Py.DictSet(t, "wsgi.file_wrapper", objects.FileWrapperFactory);
        Py.DictSet(t, "SCRIPT_NAME", _rootPathValue);
        using (var software = Py.Str(options.ServerSoftware)) Py.DictSet(t, "SERVER_SOFTWARE", software);
        Py.DictSet(t, "GATEWAY_INTERFACE", Constant("CGI/1.1"));
        _template = t.ToOwned();
    }

    /// <summary>A cached Python str for a value that repeats across requests (methods, protocols, schemes).</summary>
    private PyOwned Constant(string value)
    {
        if (!_constants.TryGetValue(value, out var s))
        {
            s = Py.Intern(value);
            _constants[value] = s;
        }
        return s;
    }

    private static readonly HashSet<string> CommonConstants = new(StringComparer.Ordinal)
    {
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "http", "https",
    };

    private NewRef Value(string s)
    {
        if (CommonConstants.Contains(s)) return Constant(s).Borrow().NewReference();
        return Py.Str(s);
    }

    public NewRef Build(WsgiExchange x, BorrowedRef input)
    {
        if (_multiprocessProbe != null && _multiprocessProbe() != _multiprocess)
        {
            _multiprocess = !_multiprocess;
            Py.DictSet(_template, "wsgi.multiprocess", Py.Bool(_multiprocess));
        }
        var environ = Py.DictCopy(_template);
        try
        {
            var env = environ.Borrow();
            Py.DictSetAndRelease(env, _requestMethod, Value(x.Method));
            Py.DictSetAndRelease(env, _serverProtocol, Value(x.Protocol));
            Py.DictSetAndRelease(env, _urlScheme, Value(x.Scheme));
            Py.DictSet(env, _wsgiInput, input);

            var target = x.RawTarget;
            RequestTarget.Split(target, out var path, out var query);
            using (var rawUri = Py.Str(target))
            {
                Py.DictSet(env, _rawUri, rawUri);
                Py.DictSet(env, _requestUri, rawUri);
            }
            var pathInfo = RequestTarget.PercentDecode(path);
            if (_rootPath.Length > 0 && pathInfo.StartsWith(_rootPath, StringComparison.Ordinal) &&
                (pathInfo.Length == _rootPath.Length || pathInfo[_rootPath.Length] == '/'))
                pathInfo = pathInfo[_rootPath.Length..];
            Py.DictSetAndRelease(env, _pathInfo,
                pathInfo.Length == 0 ? _emptyString.Borrow().NewReference() : Py.Str(pathInfo));
            Py.DictSetAndRelease(env, _queryString,
                query.Length == 0 ? _emptyString.Borrow().NewReference() : Py.StrFromChars(query));
            Py.DictSetAndRelease(env, _remoteAddr, Py.Str(x.RemoteAddress));
            Py.DictSetAndRelease(env, _remotePort, Py.Str(x.RemotePort.ToString()));

            string? host = null;
            foreach (var (name, value) in x.RequestHeaders)
            {
                if (name.Length == 0 || name[0] == ':') continue;
                if (name.Contains('_'))
                {
                    // X_Auth_User must not be able to pose as X-Auth-User: both would become HTTP_X_AUTH_USER.
                    if (_logger.IsEnabled(GatewayLogLevel.Debug))
                        _logger.Debug($"Dropped request header with underscore: {name}");
                    continue;
                }
                if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                    Py.DictSetAndRelease(env, _contentType, Py.Str(value));
                else if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    Py.DictSetAndRelease(env, _contentLength, Py.Str(value));
                else if (name.Equals("Proxy", StringComparison.OrdinalIgnoreCase))
                {
                    // httpoxy: HTTP_PROXY would pose as the proxy setting that HTTP client libraries read.
                    if (_logger.IsEnabled(GatewayLogLevel.Debug))
                        _logger.Debug("Dropped the Proxy request header (httpoxy)");
                }
                else
                {
                    if (name.Equals("Host", StringComparison.OrdinalIgnoreCase)) host = value;
                    var key = HeaderKey(name, out var cached);
                    Py.DictSetAndRelease(env, key, Py.Str(value));
                    if (!cached) key.Dispose();
                }
            }
            if (x.ServerVariables is { } variables)
                foreach (var (name, value) in variables)
                    Py.DictSetAndRelease(env, Constant(name), Py.Str(value));

            SplitHost(host, x, out var serverName, out var serverPort);
            Py.DictSetAndRelease(env, _serverName, Py.Str(serverName));
            Py.DictSetAndRelease(env, _serverPort, Py.Str(serverPort));
            return environ;
        }
        catch
        {
            environ.Dispose();
            throw;
        }
    }

    private PyOwned HeaderKey(string name, out bool cached)
    {
        cached = true;
        if (_headerKeys.TryGetValue(name, out var key)) return key;
        var sb = new StringBuilder("HTTP_", 5 + name.Length);
        foreach (var c in name) sb.Append(c == '-' ? '_' : char.ToUpperInvariant(c));
        var made = Py.Intern(sb.ToString());
        if (_headerKeys.Count < MaxCachedHeaderKeys) _headerKeys[name] = made;
        else cached = false;
        return made;
    }

    private static void SplitHost(string? host, WsgiExchange x, out string name, out string port)
    {
        if (string.IsNullOrEmpty(host))
        {
            name = x.LocalAddress;
            port = x.LocalPort.ToString();
            return;
        }
        string defaultPort = x.Scheme == "https" ? "443" : "80";
        if (host.StartsWith('['))
        {
            var end = host.IndexOf(']');
            if (end > 0)
            {
                name = host[..(end + 1)];
                port = end + 2 < host.Length && host[end + 1] == ':' ? host[(end + 2)..] : defaultPort;
                return;
            }
        }
        var colon = host.LastIndexOf(':');
        if (colon >= 0) { name = host[..colon]; port = host[(colon + 1)..]; }
        else { name = host; port = defaultPort; }
    }
}
