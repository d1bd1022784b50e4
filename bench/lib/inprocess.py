"""Calls a WSGI app in this process, the way a server would, with no server: the "in-process" side of
bench/appcost.sh. Each request gets a fresh environ (a copy of a GET / template with the CGI keys, the headers
a browser sends and the wsgi.* keys), the body is iterated to the end and close() is called.

    python3 bench/lib/inprocess.py APP_FILE WARMUP COUNT

Serves WARMUP requests, then COUNT more, and prints one JSON line: the CPU seconds (time.process_time) of the
COUNT requests. Under callgrind, two runs with different COUNTs give the instructions of one request.
"""
import importlib.util
import io
import json
import os
import sys
import time


def load(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location('bench_app', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, 'application', None) or module.app


TEMPLATE = {
    'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '', 'PATH_INFO': '/', 'QUERY_STRING': '', 'RAW_URI': '/',
    'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '8000', 'SERVER_PROTOCOL': 'HTTP/1.1',
    'REMOTE_ADDR': '127.0.0.1', 'REMOTE_PORT': '40000', 'SERVER_SOFTWARE': 'inprocess',
    'HTTP_HOST': '127.0.0.1:8000', 'HTTP_USER_AGENT': 'appcost', 'HTTP_ACCEPT': '*/*',
    'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http', 'wsgi.multithread': True, 'wsgi.multiprocess': False,
    'wsgi.run_once': False, 'wsgi.errors': sys.stderr,
}


def request(app):
    environ = dict(TEMPLATE)
    environ['wsgi.input'] = io.BytesIO(b'')
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)
        return lambda data: None

    body = app(environ, start_response)
    try:
        size = sum(len(chunk) for chunk in body)
    finally:
        if hasattr(body, 'close'):
            body.close()
    if not status or not status[0].startswith('200'):
        raise SystemExit('inprocess.py: the app answered %r' % (status[:1],))
    return size


def main():
    app = load(sys.argv[1])
    warmup, count = int(sys.argv[2]), int(sys.argv[3])
    for _ in range(warmup):
        request(app)
    start = time.process_time()
    for _ in range(count):
        request(app)
    print(json.dumps({'cpu_s': time.process_time() - start, 'count': count}))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown in the count, as a worker's os._exit


if __name__ == '__main__':
    main()
