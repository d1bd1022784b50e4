"""The compression benchmark's app: one body read once at import ($COMPRESS_BENCH_BODY, its type from the
extension), returned as a one-item list with its Content-Length, as Django's HttpResponse does."""
import os

_PATH = os.environ['COMPRESS_BENCH_BODY']
with open(_PATH, 'rb') as _f:
    _BODY = _f.read()
_TYPE = 'application/json' if _PATH.endswith('.json') else 'text/html; charset=utf-8'


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', _TYPE), ('Content-Length', str(len(_BODY)))])
    return [_BODY]
