"""The worker tests' app (tests/SharpWsgi.Tests/Workers). Run: sharpwsgi -w 2 tests/apps/workers/pid_app.py

Module state shows which process, which import and which Python thread served a request:
  /            -> {"pid", "version", "import_id", "multiprocess", "multithread"} (JSON); also any other path
  /slow?s=S&size=N -> writes "SLOW-START pid=P" to stderr, sleeps S seconds, then answers N bytes (b"0123456789" repeated)
  /sleep?s=S   -> writes "SLEEP-START pid=P" to stderr, then time.sleep(S) (blocks its Python thread; 200 if it returns)
  /loop?s=S    -> a pure-Python loop for up to S seconds; a RequestTimeout raised into it is recorded, then re-raised
  /interrupted -> {"interrupted": [paths whose loop or sleep was interrupted by RequestTimeout], "pid"}
  /gil?s=S     -> writes "GIL-START pid=P", then ctypes.PyDLL(None).sleep(S) (default 600): a C call that keeps
                  the GIL (the heartbeat stops), then answers {"pid"}
  /log?m=TEXT  -> writes "LOGGED: TEXT" to wsgi.errors (the server's error log)
$WORKERS_TEST_VERSION_FILE (if set) names a file whose stripped text is read at import as "version", so a test can
change it and see whether a reload imported the module afresh; the version "broken" makes the import fail.
"""
import ctypes
import json
import os
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs

_version_file = os.environ.get('WORKERS_TEST_VERSION_FILE')
VERSION = open(_version_file).read().strip() if _version_file else 'none'
if VERSION == 'broken':
    raise RuntimeError('workers-test: pid_app refuses to import version "broken"')
IMPORT_ID = uuid.uuid4().hex
_lock = threading.Lock()
_interrupted = []


def _json(start_response, obj):
    body = json.dumps(obj).encode('ascii')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def _marker(text):
    sys.stderr.write('%s pid=%d\n' % (text, os.getpid()))
    sys.stderr.flush()


def _interruptible(path, body):
    from sharpwsgi import RequestTimeout
    try:
        return body()
    except RequestTimeout:
        with _lock:
            _interrupted.append(path)
        raise


def application(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    query = parse_qs(environ.get('QUERY_STRING', ''))

    def arg(name, default):
        return float(query[name][0]) if name in query else default

    if path == '/slow':
        _marker('SLOW-START')
        time.sleep(arg('s', 1))
        size = int(arg('size', 100))
        body = (b'0123456789' * (size // 10 + 1))[:size]
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(size))])
        return [body]
    if path == '/sleep':
        def sleep():
            _marker('SLEEP-START')
            time.sleep(arg('s', 1))
            return _json(start_response, {'slept': True, 'pid': os.getpid()})
        return _interruptible(path, sleep)
    if path == '/loop':
        def loop():
            deadline = time.monotonic() + arg('s', 30)
            n = 0
            while time.monotonic() < deadline:
                n += 1
            return _json(start_response, {'looped': n, 'pid': os.getpid()})
        return _interruptible(path, loop)
    if path == '/interrupted':
        with _lock:
            return _json(start_response, {'interrupted': list(_interrupted), 'pid': os.getpid()})
    if path == '/log':
        environ['wsgi.errors'].write('LOGGED: ' + query.get('m', [''])[0] + '\n')
        environ['wsgi.errors'].flush()
        return _json(start_response, {'logged': True, 'pid': os.getpid()})
    if path == '/gil':
        _marker('GIL-START')
        ctypes.PyDLL(None).sleep(int(arg('s', 600)))
        return _json(start_response, {'pid': os.getpid()})
    return _json(start_response, {
        'pid': os.getpid(),
        'version': VERSION,
        'import_id': IMPORT_ID,
        'multiprocess': environ['wsgi.multiprocess'],
        'multithread': environ['wsgi.multithread'],
    })
