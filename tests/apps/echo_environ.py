"""Answers any method and path with the request's environ as JSON (for corpus replay and round trips).
Run: sharpwsgi tests/apps/echo_environ.py

Every call is counted per client port (REMOTE_PORT), so a test can ask afterwards how many requests of one
connection reached the app. With $ECHO_ENVIRON_CALLS naming a file, calls are appended to it (one port per line), so
the count covers every worker process; otherwise they are counted in this process. Two paths are reserved for the tests and never echoed or counted:
  /__calls?port=N          -> {"calls": <calls from client port N>, "total": <all calls>}
  /__barrier?n=N&timeout=S -> waits until N requests wait here at once (proves N Python threads); 200 or 504
Everything else answers 200 with {"environ": {...str/int/bool values...}, "body_b64": "...", "body_len": n}.
The body is read with wsgi.input.read(CONTENT_LENGTH), or read() when there is none; if that raises (a malformed chunked body), the exception propagates
so the server decides the response.
"""
import base64
import json
import os
import threading
from urllib.parse import parse_qs

_lock = threading.Lock()
_calls_by_port = {}
_total = 0
_barriers = {}
_calls_file = os.environ.get('ECHO_ENVIRON_CALLS')


def _json(start_response, obj, status='200 OK'):
    body = json.dumps(obj, sort_keys=True).encode('ascii')
    start_response(status, [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def _calls(environ, start_response):
    query = parse_qs(environ.get('QUERY_STRING', ''))
    port = query.get('port', [''])[0]
    if _calls_file:
        try:
            with open(_calls_file) as f:
                ports = f.read().split()
        except FileNotFoundError:
            ports = []
        return _json(start_response, {'calls': ports.count(port), 'total': len(ports)})
    with _lock:
        return _json(start_response, {'calls': _calls_by_port.get(port, 0), 'total': _total})


def _barrier(environ, start_response):
    query = parse_qs(environ.get('QUERY_STRING', ''))
    n = int(query.get('n', ['2'])[0])
    timeout = float(query.get('timeout', ['10'])[0])
    with _lock:
        barrier = _barriers.setdefault(n, threading.Barrier(n))
    try:
        barrier.wait(timeout)
    except threading.BrokenBarrierError:
        with _lock:
            if _barriers.get(n) is barrier:
                del _barriers[n]
        return _json(start_response, {'ok': False, 'thread': threading.get_ident()}, '504 Gateway Timeout')
    return _json(start_response, {'ok': True, 'thread': threading.get_ident()})


def application(environ, start_response):
    global _total
    path = environ.get('PATH_INFO', '')
    if path == '/__calls':
        return _calls(environ, start_response)
    if path == '/__barrier':
        return _barrier(environ, start_response)

    port = str(environ.get('REMOTE_PORT', ''))
    if _calls_file:
        # One short O_APPEND write per call: atomic across threads and worker processes.
        fd = os.open(_calls_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (port + '\n').encode('ascii'))
        finally:
            os.close(fd)
    with _lock:
        _calls_by_port[port] = _calls_by_port.get(port, 0) + 1
        _total += 1

    stream = environ['wsgi.input']
    length = environ.get('CONTENT_LENGTH', '')
    # With Content-Length read exactly that much (classic WSGI); without it (chunked), read to the end
    # as wsgi.input_terminated allows.
    body = stream.read(int(length)) if length else stream.read()
    values = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int, float)):
            values[key] = value
        elif isinstance(value, tuple):
            values[key] = list(value)
        else:
            values[key] = '<%s>' % type(value).__name__
    return _json(start_response, {
        'environ': values,
        'body_b64': base64.b64encode(body).decode('ascii'),
        'body_len': len(body),
    })
