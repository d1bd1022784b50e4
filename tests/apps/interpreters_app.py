"""The --interpreters tests' app: which interpreter answered, its own module state, and a request that never ends.
Run: sharpwsgi --python python3.12 --interpreters 2 tests/apps/interpreters_app.py

  GET /whoami      -> JSON {"interpreter": id, "pid": ..., "count": requests this interpreter's module has seen,
                      "token": a random value drawn once per module import, "multiprocess": wsgi.multiprocess}
  GET /spin        -> writes "SPIN-START interpreter=ID" to stderr, then runs a pure-Python loop until
                      RequestTimeout interrupts it (then records that)
  GET /interrupted -> JSON {"interpreter": id, "interrupted": how many /spin this interpreter saw interrupted}
"""
import json
import os
import secrets
import sys
import threading

try:
    import _interpreters as _interp  # 3.13
except ImportError:
    import _xxsubinterpreters as _interp  # 3.12

from sharpwsgi import RequestTimeout

TOKEN = secrets.token_hex(8)
_lock = threading.Lock()
_count = 0
_interrupted = 0


def _interpreter_id():
    current = _interp.get_current()
    return int(current[0] if isinstance(current, tuple) else current)


def _json(start_response, value):
    body = json.dumps(value).encode('ascii')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def application(environ, start_response):
    global _count, _interrupted
    path = environ.get('PATH_INFO', '')
    with _lock:
        _count += 1
        count = _count
    if path == '/spin':
        # The test waits for this line: the interpreter is busy from here on.
        sys.stderr.write('SPIN-START interpreter=%d\n' % _interpreter_id())
        sys.stderr.flush()
        try:
            n = 0
            while True:
                n += 1
        except RequestTimeout:
            with _lock:
                _interrupted += 1
            raise
    if path == '/interrupted':
        return _json(start_response, {'interpreter': _interpreter_id(), 'interrupted': _interrupted})
    return _json(start_response, {'interpreter': _interpreter_id(), 'pid': os.getpid(), 'count': count,
                                  'token': TOKEN, 'multiprocess': environ['wsgi.multiprocess']})
