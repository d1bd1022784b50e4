# SharpWsgi: gunicorn's Python config file and its server hooks, on the Python side.
#
# The supervisor loads no Python, so this one source runs in three places:
#   python -c SOURCE evaluate LOCATION KNOWN   reads the file's settings once and prints them as JSON
#   python -c SOURCE host LOCATION             the hook host: the supervisor-side hooks, one JSON line per call
#   exec'd in every worker's interpreter       post_fork, post_worker_init, the per-request hooks, worker_*
# It loads the file as gunicorn does (a module named __config__, or python:MODULE) and hands the hooks objects
# carrying the attributes gunicorn's server, worker, request and response have.
import ast
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import math
import os
import sys
import threading
import traceback

# gunicorn's hooks and how many positional arguments each takes (its validate_callable); -1: post_request's 2-4.
HOOK_ARITY = {
    "on_starting": 1, "on_reload": 1, "when_ready": 1, "pre_fork": 2, "post_fork": 2, "post_worker_init": 1,
    "worker_int": 1, "worker_abort": 1, "pre_exec": 1, "pre_request": 2, "post_request": -1, "child_exit": 2,
    "worker_exit": 2, "nworkers_changed": 3, "on_exit": 1,
}


class ConfigError(Exception):
    """A value gunicorn itself would refuse (a hook that is not callable or has the wrong arity), with where the
    offending definition is when that is known."""

    def __init__(self, message, where=None):
        super().__init__(message)
        self.where = where


# ---------------------------------------------------------------------------------------------- loading the file

def config_filename(location):
    """The file behind LOCATION (a path, file:PATH or python:MODULE), for messages and line numbers."""
    if location.startswith("python:"):
        spec = importlib.util.find_spec(location[len("python:"):])
        return spec.origin if spec is not None else None
    return os.path.abspath(location[len("file:"):] if location.startswith("file:") else location)


def load(location):
    """Executes the config as gunicorn does: python:MODULE is imported; a file runs as the module __config__
    (any extension: a file without .py is read as Python source too)."""
    if location.startswith("python:"):
        return importlib.import_module(location[len("python:"):])
    filename = config_filename(location)
    if not os.path.exists(filename):
        raise ConfigError("%r doesn't exist" % filename)
    name = "__config__"
    if os.path.splitext(filename)[1] in (".py", ".pyc"):
        spec = importlib.util.spec_from_file_location(name, filename)
    else:
        loader = importlib.machinery.SourceFileLoader(name, filename)
        spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def arity(function):
    """Positional parameters, as gunicorn counts them (util.get_arity)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in inspect.signature(function).parameters.values() if p.kind in kinds)


def resolve_hook(name, value):
    """The callable of one hook: a function, or 'package.module.function' as gunicorn accepts; the arity checked."""
    if isinstance(value, str):
        module_name, _, attribute = value.rpartition(".")
        if not module_name:
            raise ConfigError("%s = %r: expected a callable or 'module.function'" % (name, value))
        value = getattr(importlib.import_module(module_name), attribute)
    if not callable(value):
        raise ConfigError("%s is not callable: %r" % (name, value))
    wanted, got = HOOK_ARITY[name], arity(value)
    code = getattr(value, "__code__", None)
    where = (code.co_filename, code.co_firstlineno) if code is not None else None
    if name == "post_request":
        if got == 4:
            return value
        if got == 3:
            return lambda worker, req, environ, resp: value(worker, req, environ)
        if got == 2:
            return lambda worker, req, environ, resp: value(worker, req)
        raise ConfigError("post_request must take 2, 3 or 4 arguments (worker, req, environ, resp); it takes %d"
                          % got, where)
    if got != wanted:
        raise ConfigError("%s must take %d argument(s), as gunicorn calls it; it takes %d" % (name, wanted, got),
                          where)
    return value


def hooks_of(module):
    found = {}
    for name in HOOK_ARITY:
        value = vars(module).get(name)
        if value is not None:
            found[name] = resolve_hook(name, value)
    return found


def _own_frames_trimmed(tb):
    """A traceback without its first frames when they are this module's (run as "<string>"): the hook's own
    frames are what its author needs."""
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
        tb = tb.tb_next
    return tb


def format_error(error):
    return "".join(traceback.format_exception(type(error), error, _own_frames_trimmed(error.__traceback__))).rstrip()


def describe_error(error, filename):
    """An exception raised while loading the file: its type and message, and where (the innermost line of the
    config file itself, else the innermost line at all), for a one-paragraph report."""
    described = {"type": type(error).__name__, "message": str(error), "file": None, "line": None, "source": None}
    if isinstance(error, SyntaxError) and error.filename:
        described.update(file=error.filename, line=error.lineno, source=(error.text or "").strip() or None)
        described["message"] = error.msg
        return described
    if isinstance(error, ConfigError) and error.where:
        described.update(file=error.where[0], line=error.where[1])
        return described
    # Frames of this reader (run as "<string>") and of importlib say nothing about the file.
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if f.filename != "<string>" and not f.filename.startswith("<frozen importlib")]
    ours = [f for f in frames if filename and os.path.abspath(f.filename) == filename]
    frame = ours[-1] if ours else (frames[-1] if frames else None)
    if frame is not None:
        described.update(file=frame.filename, line=frame.lineno, source=frame.line or None)
    elif filename:
        described["file"] = filename
    return described


# ------------------------------------------------------------------------------------------------ evaluate mode

def jsonable(value):
    """A setting's value as JSON: scalars, lists and dicts as they are; anything else described, so the
    supervisor can name it in its refusal."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$repr": repr(value), "$type": "float"}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if callable(value):
        return {"$callable": getattr(value, "__qualname__", None) or repr(value)}
    return {"$repr": repr(value), "$type": type(value).__name__}


def assignment_lines(filename):
    """The line of the last module-level assignment of each name (for --print-config's sources)."""
    try:
        with open(filename, "rb") as source:
            tree = ast.parse(source.read(), filename)
    except Exception:
        return {}
    lines = {}

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines[node.name] = node.lineno
                continue
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        lines[leaf.id] = node.lineno
            for block in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, block, None)
                if isinstance(inner, list):
                    visit(inner)

    visit(tree.body)
    return lines


def evaluate(location, known):
    filename = None
    before = dict(os.environ)
    try:
        filename = config_filename(location)
        module = load(location)
        hooks = hooks_of(module)
    except BaseException as error:  # SystemExit from the file is a failure to read it too
        return {"error": describe_error(error, filename), "file": filename}
    settings = {}
    for name, value in vars(module).items():
        if name in known and name not in HOOK_ARITY:
            settings[name] = jsonable(value)
    return {
        "file": filename,
        "settings": settings,
        "hooks": sorted(hooks),
        "lines": assignment_lines(filename) if filename and not filename.endswith(".pyc") else {},
        # What the file did to os.environ: gunicorn's workers inherit it from the master by fork; here the
        # supervisor applies it to its own environment, which its workers and hook host inherit.
        "environ": {k: v for k, v in os.environ.items() if before.get(k) != v},
        "unset": [k for k in before if k not in os.environ],
    }


# -------------------------------------------------------------------------------- what the hooks are handed

class Log:
    """server.log and worker.log: gunicorn's logger methods, written to SharpWsgi's error log."""

    LEVELS = {"critical": 50, "error": 40, "warning": 30, "warn": 30, "info": 20, "debug": 10}

    def __init__(self, emit):
        self._emit = emit

    def _write(self, levelno, msg, args, exc_info=None):
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = "%s %r" % (msg, args)
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
            if exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(
                    exc_info[0], exc_info[1], _own_frames_trimmed(exc_info[2]))).rstrip()
        self._emit(levelno, text)

    def critical(self, msg, *args, **kwargs):
        self._write(50, msg, args, kwargs.get("exc_info"))

    def error(self, msg, *args, **kwargs):
        self._write(40, msg, args, kwargs.get("exc_info"))

    def warning(self, msg, *args, **kwargs):
        self._write(30, msg, args, kwargs.get("exc_info"))

    warn = warning

    def info(self, msg, *args, **kwargs):
        self._write(20, msg, args, kwargs.get("exc_info"))

    def debug(self, msg, *args, **kwargs):
        self._write(10, msg, args, kwargs.get("exc_info"))

    def exception(self, msg, *args, **kwargs):
        self._write(40, msg, args, kwargs.get("exc_info", True))

    def log(self, lvl, msg, *args, **kwargs):
        levelno = self.LEVELS.get(lvl.lower(), 20) if isinstance(lvl, str) else int(lvl)
        self._write(levelno, msg, args, kwargs.get("exc_info"))

    # The server writes the access log and reopens the files (SIGUSR1) itself.
    def access(self, *args, **kwargs):
        pass

    def reopen_files(self):
        pass

    def close_on_exec(self):
        pass


class _SettingView:
    __slots__ = ("name", "value")

    def __init__(self, name, value):
        self.name, self.value = name, value

    def get(self):
        return self.value


class Config:
    """cfg: every gunicorn setting by its name, with the value SharpWsgi runs with (gunicorn's default where
    SharpWsgi has no such setting), and settings[name].value as gunicorn's Config has it."""

    def __init__(self, values):
        self.__dict__.update(values)
        self.settings = {name: _SettingView(name, value) for name, value in values.items()}

    def __getattr__(self, name):
        raise AttributeError("No configuration setting for: %s" % name)


class _WorkerTmp:
    """worker.tmp: gunicorn's heartbeat file; SharpWsgi's workers beat over a pipe, so this one only answers."""

    def notify(self):
        pass

    def last_update(self):
        import time
        return time.monotonic()

    def close(self):
        pass


class Server:
    """The server (gunicorn's arbiter) as hooks see it."""

    def __init__(self, cfg, log, state):
        self.cfg, self.log = cfg, log
        self.LISTENERS = []
        self.app = None
        self.master_name = "Master"
        self.proc_name = cfg.proc_name or cfg.default_proc_name
        self.timeout = cfg.timeout
        self.address = list(cfg.bind)
        self.WORKERS = {}
        self.update(state)

    def update(self, state):
        self.pid = state.get("pid") or os.getppid()
        self.num_workers = state["num_workers"]
        self.worker_age = state.get("worker_age", 0)
        known = self.WORKERS
        self.WORKERS = {}
        for w in state.get("workers", []):
            worker = known.get(w["pid"]) or Worker(self.cfg, self.log, w["age"], w["pid"], self.pid)
            worker.booted = w.get("booted", False)
            self.WORKERS[w["pid"]] = worker


class Worker:
    """A worker as hooks see it: gunicorn's Worker attributes (age, pid, ppid, cfg, log, alive, booted, nr,
    max_requests, timeout, tmp, wsgi once the app is loaded)."""

    def __init__(self, cfg, log, age, pid, ppid, max_requests=None):
        self.cfg, self.log = cfg, log
        self.age, self.pid, self.ppid = age, pid, ppid
        self.alive = True
        self.booted = False
        self.aborted = False
        self.nr = 0
        self.max_requests = max_requests or cfg.max_requests or sys.maxsize
        self.timeout = cfg.timeout / 2.0
        self.tmp = _WorkerTmp()
        self.sockets = []
        self.app = None
        self.wsgi = None
        self.reloader = None

    def __str__(self):
        return "<Worker %s>" % self.pid


class Request:
    """req: the request as gunicorn's parser has it (method, uri, path, query, fragment, version, headers as
    (NAME, value) pairs with upper-cased names, scheme, remote_addr, body), read from the WSGI environ."""

    __slots__ = ("method", "uri", "path", "query", "fragment", "version", "headers", "trailers", "scheme",
                 "remote_addr", "peer_addr", "body", "must_close", "req_number", "proxy_protocol_info")

    def __init__(self, environ, number):
        self.method = environ.get("REQUEST_METHOD")
        self.uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        target = self.uri.split("#", 1)
        self.fragment = target[1] if len(target) > 1 else ""
        path, _, query = target[0].partition("?")
        if "://" in path:  # absolute-form: gunicorn's path is the URL's path
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        self.path, self.query = path, query
        protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        try:
            major, _, minor = protocol.split("/", 1)[1].partition(".")
            self.version = (int(major), int(minor or 0))
        except (IndexError, ValueError):
            self.version = (1, 1)
        headers = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers.append((key[5:].replace("_", "-"), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                headers.append((key.replace("_", "-"), value))
        self.headers = headers
        self.trailers = []
        self.scheme = environ.get("wsgi.url_scheme", "http")
        port = environ.get("REMOTE_PORT")
        self.peer_addr = self.remote_addr = (environ.get("REMOTE_ADDR", ""), int(port) if port else 0)
        self.body = environ.get("wsgi.input")
        self.must_close = False
        self.req_number = number
        self.proxy_protocol_info = None


class Response:
    """resp: status ("200 OK"), status_code, headers (the app's list), sent (body bytes written),
    response_length (its Content-Length or None), as gunicorn's Response has them after the request."""

    __slots__ = ("status", "status_code", "headers", "sent", "response_length", "version", "chunked",
                 "headers_sent", "must_close")

    def __init__(self, status, headers, sent, length, version):
        self.status = status
        try:
            self.status_code = int(status.split()[0])
        except (AttributeError, IndexError, ValueError):
            self.status_code = None
        self.headers = headers
        self.sent = sent
        self.response_length = length if length is not None and length >= 0 else None
        self.version = version
        self.chunked = self.response_length is None and version >= (1, 1)
        self.headers_sent = True
        self.must_close = False


def _report(log, what):
    log.exception("Exception in %s hook", what)


# ------------------------------------------------------------------------------------------------- worker side

class WorkerSide:
    """The hooks of one interpreter of a worker: the file executed there, its worker-side hooks, and the objects
    they are handed. The worker calls these methods from C# with the GIL held."""

    def __init__(self, location, cfg_json, emit, state_json):
        state = json.loads(state_json)
        self.log = Log(emit)
        self.cfg = Config(json.loads(cfg_json))
        self.module = load(location)
        self.hooks = hooks_of(self.module)
        self.server = Server(self.cfg, self.log, state)
        self.worker = Worker(self.cfg, self.log, state["age"], os.getpid(), self.server.pid, state.get("max_requests"))
        self.pre_request_hook = self.hooks.get("pre_request")
        self.post_request_hook = self.hooks.get("post_request")
        self.wants_requests = self.pre_request_hook is not None or self.post_request_hook is not None
        self._numbers = 0

    def post_fork(self):
        hook = self.hooks.get("post_fork")
        if hook is not None:
            hook(self.server, self.worker)

    def post_worker_init(self, app):
        self.worker.wsgi = app
        self.worker.booted = True
        hook = self.hooks.get("post_worker_init")
        if hook is not None:
            hook(self.worker)

    def request_started(self, environ):
        """pre_request; returns the req object post_request gets. An exception fails the request (500)."""
        self._numbers += 1
        self.worker.nr += 1
        req = Request(environ, self._numbers)
        if self.pre_request_hook is not None:
            self.pre_request_hook(self.worker, req)
        return req

    def request_finished(self, req, environ, status, code, headers, sent, length):
        """post_request, after the response went out (status None: the server answered CODE itself); an
        exception is logged, as gunicorn does."""
        if self.post_request_hook is None:
            return
        try:
            if status is None:
                from http import HTTPStatus
                try:
                    status = "%d %s" % (code, HTTPStatus(code).phrase)
                except ValueError:
                    status = str(code)
            resp = Response(status, list(headers) if headers is not None else [], sent, length, req.version)
            self.post_request_hook(self.worker, req, environ, resp)
        except BaseException:
            _report(self.log, "post_request")

    def signalled(self, name):
        """worker_int (INT, QUIT) and worker_abort (ABRT, the heartbeat kill); an exception is logged."""
        self.worker.alive = False
        if name == "worker_abort":
            self.worker.aborted = True
        hook = self.hooks.get(name)
        if hook is None:
            return
        try:
            hook(self.worker)
        except BaseException:
            _report(self.log, name)

    def exiting(self):
        self.worker.alive = False
        hook = self.hooks.get("worker_exit")
        if hook is None:
            return
        try:
            hook(self.server, self.worker)
        except BaseException:
            self.log.warning("Exception during worker exit:\n%s", format_error(sys.exc_info()[1]))


# --------------------------------------------------------------------------------------------------- host mode

def _route_logging(log):
    """The host's Python logging reaches the error log too, unless the file configured logging itself."""
    import logging

    class Handler(logging.Handler):
        def emit(self, record):
            try:
                log._emit(record.levelno, self.format(record))
            except Exception:
                self.handleError(record)

    root = logging.getLogger()
    if not root.handlers:
        handler = Handler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
        if root.level == logging.WARNING:
            root.setLevel(logging.INFO)


def host(location):
    """The supervisor-side hooks, one call per JSON line on stdin; replies (log lines, then done or error) on
    the original stdout. The hooks' own prints go to stderr, and stdin reads as empty to them."""
    # The supervisor's signals are the supervisor's: Ctrl-C in a terminal or systemd's TERM reach the whole group,
    # and the host must live to run child_exit and on_exit as the supervisor stops. It ends when stdin does.
    import signal
    for name in ("SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTTIN", "SIGTTOU", "SIGWINCH"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    # Descriptors the supervisor had open when it started this process (listening sockets, a worker's control
    # pipe) are not the hooks' business, and holding them would keep them open after their owner is done.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    lock = threading.Lock()

    def send(message):
        line = json.dumps(message)
        with lock:
            replies.write(line + "\n")
            replies.flush()

    log = Log(lambda levelno, text: send({"log": levelno, "message": text}))
    start = json.loads(requests.readline())
    filename = None
    try:
        filename = config_filename(location)
        cfg = Config(start["cfg"])
        hooks = hooks_of(load(location))
    except BaseException as error:
        send({"error": describe_error(error, filename)})
        return 1
    _route_logging(log)
    server = Server(cfg, log, start["server"])
    send({"ready": sorted(hooks)})
    for line in requests:
        call = json.loads(line)
        server.update(call["server"])
        name = call["hook"]
        hook = hooks.get(name)
        try:
            if hook is not None:
                args = [server]
                if "worker" in call:
                    w = call["worker"]
                    worker = server.WORKERS.get(w["pid"]) or Worker(cfg, log, w["age"], w["pid"], server.pid)
                    worker.booted = w.get("booted", False)
                    worker.alive = w.get("alive", True)
                    args.append(worker)
                args.extend(call.get("args", []))
                hook(*args)
            send({"done": name})
        except BaseException as error:
            send({"failed": name, "traceback": format_error(error)})
            if isinstance(error, (SystemExit, KeyboardInterrupt)):
                return 1
    return 0


def main():
    mode, location = sys.argv[1], sys.argv[2]
    if mode == "evaluate":
        answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
        sys.stdout.flush()
        os.dup2(2, 1)  # what the file prints goes to stderr, never into the answer
        result = evaluate(location, set(json.loads(sys.argv[3])))
        answer.write(json.dumps(result) + "\n")
        answer.flush()
        os._exit(0)
    os._exit(host(location))


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] in ("evaluate", "host"):
    main()
