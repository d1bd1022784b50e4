"""The probe app (probe.py) wrapped in wsgiref.validate.validator, recording every complaint instead of losing it.
Run: sharpwsgi tests/apps/validated_probe.py

The validator raises AssertionError on a violation (from the app call, from its wrappers of start_response,
wsgi.input, wsgi.errors and write, and from the body iterator's next/close) and reports an iterator that is
garbage-collected without close() from __del__ (an "unraisable" exception); it also emits WSGIWarning. All three are
recorded here with the request they belong to. Requests are tagged with an X-Vtag header (HTTP_X_VTAG).

Reserved paths (not validated):
  GET /__validator_complaints[?await=TAG1,TAG2&timeout=S]
      -> {"complaints": [...], "closed": [...tags whose body was closed...], "missing": [...]}
      With await, waits (a condition variable, no polling) until the response bodies of those tagged requests have
      been closed by the server; a tag still open at the timeout is listed in "missing" and recorded as a complaint.

With VALIDATED_PROBE_SHARED=DIR (several interpreters or processes serve, each with its own module state), complaints
and closed tags also go to DIR as JSON lines, and the report reads them from there (polling every 10 ms).
"""
import json
import os
import sys
import threading
import time
import traceback
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import validator, WSGIWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe  # noqa: E402

_cond = threading.Condition()
_local = threading.local()  # the tag of the request this Python thread is running (for warnings)
complaints = []
_closed = set()
_inner = validator(probe.application)


_shared = os.environ.get('VALIDATED_PROBE_SHARED')


def _share(name, record):
    if _shared:
        line = (json.dumps(record, sort_keys=True) + '\n').encode('utf-8')
        fd = os.open(os.path.join(_shared, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _shared_lines(name):
    try:
        with open(os.path.join(_shared, name), encoding='utf-8') as f:
            return [json.loads(line) for line in f if line.endswith('\n')]
    except FileNotFoundError:
        return []


def complain(kind, tag, detail):
    with _cond:
        complaints.append({'kind': kind, 'tag': tag, 'detail': detail})
        _share('complaints.jsonl', complaints[-1])
        _cond.notify_all()


def _unraisable(info):
    if isinstance(info.exc_value, AssertionError):
        complain('unraisable', None, '%s in %r: %s' % (type(info.exc_value).__name__, info.object, info.exc_value))
    else:
        sys.__unraisablehook__(info)


sys.unraisablehook = _unraisable

warnings.simplefilter('always', WSGIWarning)
_show = warnings.showwarning


def _showwarning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, WSGIWarning):
        complain('warning', getattr(_local, 'tag', None), str(message))
    else:
        _show(message, category, filename, lineno, file, line)


warnings.showwarning = _showwarning


class Recorded:
    """Wraps the validator's iterator: records AssertionErrors from next()/close() and when close() happened."""

    def __init__(self, inner, tag):
        self.inner, self.tag = inner, tag
        self.it = iter(inner)
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed:
            complain('server', self.tag, 'next() called after close()')
        try:
            return next(self.it)
        except AssertionError:
            complain('assertion', self.tag, traceback.format_exc())
            raise

    def close(self):
        if self.closed:
            complain('server', self.tag, 'close() called twice')
        self.closed = True
        try:
            self.inner.close()
        except AssertionError:
            complain('assertion', self.tag, traceback.format_exc())
            raise
        finally:
            with _cond:
                _closed.add(self.tag)
                _share('closed.jsonl', {'tag': self.tag})
                _cond.notify_all()


def _report(environ, start_response):
    q = {k: v[-1] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    wanted = [t for t in q.get('await', '').split(',') if t]
    deadline = time.monotonic() + float(q.get('timeout', '15'))
    if _shared:
        return _shared_report(wanted, deadline, start_response)
    with _cond:
        while any(t not in _closed for t in wanted):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _cond.wait(left)
        missing = [t for t in wanted if t not in _closed]
    for t in missing:
        complain('server', t, 'the response body was not closed within the timeout')
    with _cond:
        out = {'complaints': list(complaints), 'closed': sorted(t for t in _closed if t is not None), 'missing': missing}
    body = json.dumps(out, sort_keys=True).encode('ascii')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def _shared_report(wanted, deadline, start_response):
    while True:
        closed = {r['tag'] for r in _shared_lines('closed.jsonl')}
        if all(t in closed for t in wanted) or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    missing = [t for t in wanted if t not in closed]
    for t in missing:
        complain('server', t, 'the response body was not closed within the timeout')
    out = {'complaints': _shared_lines('complaints.jsonl'), 'closed': sorted(t for t in closed if t is not None),
           'missing': missing}
    body = json.dumps(out, sort_keys=True).encode('ascii')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/__validator_complaints':
        return _report(environ, start_response)
    tag = _local.tag = environ.get('HTTP_X_VTAG')
    try:
        result = _inner(environ, start_response)
    except AssertionError:
        complain('assertion', tag, traceback.format_exc())
        raise
    return Recorded(result, tag)
