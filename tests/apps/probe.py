"""PEP 3333 probe: one router WSGI app whose routes exercise every rule a WSGI server must follow.
Run: sharpwsgi tests/apps/probe.py   (standard library only; driven by tests/SharpWsgi.Tests/Functional/*Probe*, Framing*, Validator*)

Every route sets Content-Type (except 204/304), so the app itself is clean under wsgiref.validate. Bodies that
carry bytes are reported as latin-1 strings inside JSON (ensure_ascii), so a test sees every byte exactly.

Per-request records: routes taking ?id=ID append events to a module-level record (e.g. 'call', 'close',
'reraised_same'); GET /closes?id=ID[&wait=EVENT&count=N&timeout=S] returns {"closes": n, "events": [...],
"fields": {...}, "timed_out": bool}, waiting (a condition variable, no polling) until EVENT happened N times.

Routes (PATH_INFO; anything unmatched falls back to /environ with X-Probe-Route: fallback):
  /environ                      environ as JSON (non-str values repr'd), their types, the body read and checks
  /input/<mode>?n=&hint=        read the body with one wsgi.input method; modes: read read_n read_minus1 read_none
                                read_zero readline readline_n readlines readlines_hint iter mixed
  /start_response/<case>        bad status/header cases (report whether start_response raised), second_call,
                                exc_info_replace, exc_info_after_headers?id=, exc_info_keyword, custom_reason,
                                custom_code, write_callable
  /lazy /lazy_empty_first /generator?n= /generator_with_empty /single /two_elements /empty
  /write /write_and_iter /content_length/<over|over_split|under|exact>
  /head?id= /status/<code>[?body=1[&cl=1]] /hop_by_hop?name=&value= /connection_close /repeated_headers /write_non_bytes
  /close_tracking?id=&mode=normal|raise|raise_first|no_start_response|non_bytes|endless
  /closes?id=  /error/<before|before_after_start|after|after_cl>?token=
  /file_wrapper/<real|bytesio|iterate_real>?id=&seek=&cl=&nocl=1&blksize=
  /errors_stream?token=  /recursion?mode=python|c  /slow_stream?n=&size=&delay_ms=
"""
import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs

CT_JSON = ('Content-Type', 'application/json')
CT_TEXT = ('Content-Type', 'text/plain')

# ---- the data file for wsgi.file_wrapper: FILE_SIZE bytes, byte i = (i * 7 + 3) % 256 ----------------------
FILE_SIZE = 300000
FILE_PATH = os.path.join(tempfile.gettempdir(), 'sharpwsgi-probe-data-%d.bin' % FILE_SIZE)
FILE_DATA = bytes((i * 7 + 3) % 256 for i in range(FILE_SIZE))


def _ensure_data_file():
    try:
        with open(FILE_PATH, 'rb') as f:
            if f.read() == FILE_DATA:
                return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(FILE_PATH))
    with os.fdopen(fd, 'wb') as f:
        f.write(FILE_DATA)
    os.replace(tmp, FILE_PATH)  # atomic: concurrent servers never see a half-written file


_ensure_data_file()

# ---- per-request records ---------------------------------------------------------------------------------------
_cond = threading.Condition()
_records = {}
_keep = {}  # strong references to tracked objects, so only explicit close() calls count (never finalizers)


def _rec(rid):
    r = _records.get(rid)
    if r is None:
        r = _records[rid] = {'events': [], 'fields': {}}
    return r


def record(rid, event, **fields):
    if not rid:
        return
    with _cond:
        r = _rec(rid)
        r['events'].append(event)
        r['fields'].update(fields)
        _cond.notify_all()


def keep(rid, obj):
    if rid:
        with _cond:
            _keep.setdefault(rid, []).append(obj)


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True).items()}


def latin1(b):
    return b.decode('latin-1')


def json_response(start_response, obj, status='200 OK', extra_headers=()):
    body = json.dumps(obj, sort_keys=True).encode('ascii')
    start_response(status, [CT_JSON, ('Content-Length', str(len(body)))] + list(extra_headers))
    return [body]


def read_body(environ):
    stream = environ['wsgi.input']
    length = environ.get('CONTENT_LENGTH', '')
    # read(-1) rather than read(): one argument keeps wsgiref.validate quiet; wsgi.input_terminated makes it safe.
    return stream.read(int(length)) if length else stream.read(-1)


# ---- /environ -------------------------------------------------------------------------------------------------
def environ_route(environ, start_response, extra_headers=()):
    values, types = {}, {}
    for key, value in environ.items():
        types[key] = type(value).__name__
        values[key] = value if type(value) is str else repr(value)
    body = read_body(environ)
    inp, err = environ['wsgi.input'], environ['wsgi.errors']
    checks = {
        'non_str_cgi_keys': sorted(k for k, v in environ.items() if '.' not in k and type(v) is not str),
        'input_methods': [m for m in ('read', 'readline', 'readlines', '__iter__') if hasattr(inp, m)],
        'errors_methods': [m for m in ('write', 'writelines', 'flush') if hasattr(err, m)],
        'file_wrapper_callable': callable(environ.get('wsgi.file_wrapper')),
        'environ_is_dict': type(environ) is dict,
    }
    return json_response(start_response, {
        'environ': values, 'types': types, 'body': latin1(body), 'body_len': len(body), 'checks': checks,
    }, extra_headers=extra_headers)


# ---- /input/<mode> --------------------------------------------------------------------------------------------
def _until_empty(fn):
    out = []
    while True:
        b = fn()
        if not b:
            return out
        out.append(b)


def input_route(environ, start_response, mode):
    q = query(environ)
    inp = environ['wsgi.input']
    n = int(q.get('n', '5'))
    hint = int(q.get('hint', '7'))
    if mode == 'read':
        chunks = [inp.read()]
    elif mode == 'read_n':
        chunks = _until_empty(lambda: inp.read(n))
    elif mode == 'read_minus1':
        chunks = [inp.read(-1)]
    elif mode == 'read_none':
        chunks = [inp.read(None)]
    elif mode == 'read_zero':
        chunks = [inp.read(0), inp.read(-1)]
    elif mode == 'readline':
        chunks = _until_empty(inp.readline)
    elif mode == 'readline_n':
        chunks = _until_empty(lambda: inp.readline(n))
    elif mode == 'readlines':
        chunks = inp.readlines()
    elif mode == 'readlines_hint':
        chunks = inp.readlines(hint)
        chunks = [list(chunks), inp.read(-1)]  # the lines, then what the hint left unread
        lines, rest = chunks
        types = sorted({type(x).__name__ for x in lines} | {type(rest).__name__})
        after = [latin1(inp.read(1)), latin1(inp.readline())]
        return json_response(start_response, {
            'mode': mode, 'lines': [latin1(x) for x in lines], 'rest': latin1(rest), 'types': types, 'after': after})
    elif mode == 'iter':
        chunks = list(inp)
    elif mode == 'mixed':
        chunks = [inp.readline(), inp.read(3), inp.readline(), inp.read(-1)]
    else:
        return json_response(start_response, {'error': 'unknown mode ' + mode}, '404 Not Found')
    types = sorted({type(c).__name__ for c in chunks})
    after = [latin1(inp.read(1)), latin1(inp.readline())]
    whole = b''.join(chunks)
    out = {'mode': mode, 'types': types, 'after': after, 'lengths': [len(c) for c in chunks],
           'total': len(whole), 'sha256': hashlib.sha256(whole).hexdigest()}
    if len(whole) <= 65536:
        out['chunks'] = [latin1(c) for c in chunks]
    return json_response(start_response, out)


# ---- /start_response/<case> -----------------------------------------------------------------------------------
OK_HEADERS = [CT_TEXT]
BAD_CASES = {
    'status_bytes': (b'200 OK', OK_HEADERS),
    'status_int': (200, OK_HEADERS),
    'status_no_reason': ('200', OK_HEADERS),
    'status_non_numeric': ('abc OK', OK_HEADERS),
    'status_short_code': ('20 OK', OK_HEADERS),
    'status_long_code': ('2000 OK', OK_HEADERS),
    'status_crlf': ('200 OK\r\nX-Injected: 1', OK_HEADERS),
    'status_lf': ('200 OK\nX-Injected: 1', OK_HEADERS),
    'status_nul': ('200 OK\x00', OK_HEADERS),
    'status_non_latin1': ('200 \u20ac', OK_HEADERS),
    'headers_not_list': ('200 OK', (CT_TEXT,)),
    'header_not_tuple': ('200 OK', [CT_TEXT, 'X-A: v']),
    'header_tuple_len3': ('200 OK', [CT_TEXT, ('X-A', 'v', 'w')]),
    'header_name_bytes': ('200 OK', [CT_TEXT, (b'X-A', 'v')]),
    'header_value_bytes': ('200 OK', [CT_TEXT, ('X-A', b'v')]),
    'header_value_int': ('200 OK', [CT_TEXT, ('X-A', 5)]),
    'header_value_cr': ('200 OK', [CT_TEXT, ('X-A', 'a\rb')]),
    'header_value_lf': ('200 OK', [CT_TEXT, ('X-A', 'a\nb')]),
    'header_value_crlf_injection': ('200 OK', [CT_TEXT, ('X-A', 'a\r\nX-Injected: 1')]),
    'header_value_nul': ('200 OK', [CT_TEXT, ('X-A', 'a\x00b')]),
    'header_value_non_latin1': ('200 OK', [CT_TEXT, ('X-A', '\u20ac')]),
    'header_name_crlf': ('200 OK', [CT_TEXT, ('X-A\r\nX-Injected', 'v')]),
    'header_name_non_latin1': ('200 OK', [CT_TEXT, ('X-\u20ac', 'v')]),
    'header_name_colon': ('200 OK', [CT_TEXT, ('X-A:B', 'v')]),
    'header_name_space': ('200 OK', [CT_TEXT, ('X A', 'v')]),
    'header_name_empty': ('200 OK', [CT_TEXT, ('', 'v')]),
}


def _replace_with_report(start_response, report, status='200 OK'):
    """Answers with a JSON report, replacing whatever start_response holds (exc_info is legal before headers)."""
    body = json.dumps(report, sort_keys=True).encode('ascii')
    try:
        raise RuntimeError('probe: replacing the response with a report')
    except RuntimeError:
        start_response(status, [CT_JSON, ('Content-Length', str(len(body)))], sys.exc_info())
    return [body]


def start_response_route(environ, start_response, case):
    q = query(environ)
    rid = q.get('id')
    if case in BAD_CASES:
        status, headers = BAD_CASES[case]
        try:
            start_response(status, headers)
        except Exception as e:  # the server must raise here; report what it raised
            return _replace_with_report(start_response, {
                'case': case, 'raised': True, 'type': type(e).__name__, 'message': str(e)})
        return _replace_with_report(start_response, {'case': case, 'raised': False, 'type': None, 'message': None})
    if case == 'second_call':
        start_response('200 OK', [CT_TEXT])
        try:
            start_response('200 OK', [CT_TEXT])
        except Exception as e:
            return _replace_with_report(start_response, {'raised': True, 'type': type(e).__name__, 'message': str(e)})
        return _replace_with_report(start_response, {'raised': False})
    if case == 'second_call_exc_info_none':
        start_response('200 OK', [CT_TEXT], None)
        try:
            start_response('200 OK', [CT_TEXT], None)
        except Exception as e:
            return _replace_with_report(start_response, {'raised': True, 'type': type(e).__name__, 'message': str(e)})
        return _replace_with_report(start_response, {'raised': False})
    if case == 'exc_info_replace':
        start_response('200 OK', [CT_TEXT, ('X-First', '1')])
        try:
            raise ValueError('probe: replace')
        except ValueError:
            start_response('500 Internal Server Error', [CT_TEXT, ('X-Second', '2')], sys.exc_info())
        return [b'replaced']
    if case == 'exc_info_keyword':
        start_response('200 OK', [CT_TEXT, ('X-First', '1')])
        try:
            raise ValueError('probe: replace by keyword')
        except ValueError:
            start_response('503 Service Unavailable', [CT_TEXT, ('X-Second', '2')], exc_info=sys.exc_info())
        return [b'replaced by keyword']
    if case == 'exc_info_after_headers':
        write = start_response('200 OK', [CT_TEXT])
        write(b'partial;')  # headers are on the wire now
        try:
            raise ValueError('probe: after headers')
        except ValueError as original:
            try:
                start_response('500 Internal Server Error', [CT_TEXT], sys.exc_info())
            except ValueError as again:
                record(rid, 'reraised_same' if again is original else 'reraised_other')
            except Exception as other:
                record(rid, 'raised_other', type=type(other).__name__, message=str(other))
            else:
                record(rid, 'not_reraised')
        record(rid, 'done')
        return [b'end']
    if case == 'write_callable':
        write = start_response('200 OK', [CT_JSON])
        body = json.dumps({'callable': callable(write)}).encode('ascii')
        return [body]
    if case == 'custom_reason':
        start_response('200 Probe Reason Phrase', [CT_TEXT, ('Content-Length', '6')])
        return [b'reason']
    if case == 'custom_code':
        start_response('299 Probe Custom', [CT_TEXT, ('Content-Length', '6')])
        return [b'custom']
    return json_response(start_response, {'error': 'unknown case ' + case}, '404 Not Found')


# ---- response shapes ------------------------------------------------------------------------------------------
def lazy(environ, start_response):
    def gen():
        start_response('200 OK', [CT_TEXT, ('X-Lazy', 'yes')])
        yield b'lazy-'
        yield b'body'
    return gen()


def lazy_empty_first(environ, start_response):
    def gen():
        start_response('200 OK', [CT_TEXT, ('X-Phase', 'first')])
        yield b''  # nothing to send yet: headers must not go out
        yield b''
        try:
            raise ValueError('probe: change of mind')
        except ValueError:
            start_response('503 Service Unavailable', [CT_TEXT, ('X-Phase', 'second')], sys.exc_info())
        yield b'second'
    return gen()


def generator(environ, start_response):
    n = int(query(environ).get('n', '5'))
    start_response('200 OK', [CT_TEXT])
    return (('chunk-%d\n' % i).encode('ascii') for i in range(n))


def generator_with_empty(environ, start_response):
    start_response('200 OK', [CT_TEXT])
    return iter([b'a', b'', b'b', b'', b'c'])


def single(environ, start_response):
    start_response('200 OK', [CT_TEXT])
    return [b'hello single']


def two_elements(environ, start_response):
    start_response('200 OK', [CT_TEXT])
    return [b'first,', b'second']


def empty(environ, start_response):
    start_response('200 OK', [CT_TEXT])
    return []


def write_route(environ, start_response):
    write = start_response('200 OK', [CT_TEXT])
    write(b'one,')
    write(b'two')
    return []


def write_and_iter(environ, start_response):
    write = start_response('200 OK', [CT_TEXT])
    write(b'written-')
    return [b'iter1-', b'iter2']


def content_length(environ, start_response, case):
    if case == 'over':
        start_response('200 OK', [CT_TEXT, ('Content-Length', '5')])
        return [b'0123456789']
    if case == 'over_split':
        start_response('200 OK', [CT_TEXT, ('Content-Length', '5')])
        return iter([b'012', b'3456789', b'abc'])
    if case == 'under':
        start_response('200 OK', [CT_TEXT, ('Content-Length', '10')])
        return iter([b'01234'])
    if case == 'exact':
        start_response('200 OK', [CT_TEXT, ('Content-Length', '10')])
        return iter([b'01234', b'56789'])
    return json_response(start_response, {'error': 'unknown case ' + case}, '404 Not Found')


def head(environ, start_response):
    rid = query(environ).get('id')
    record(rid, 'call', method=environ['REQUEST_METHOD'])
    start_response('200 OK', [CT_TEXT])
    return [b'head body 17 byte']


def status(environ, start_response, code):
    q = query(environ)
    body = q.get('body') == '1'
    reason = {'204': 'No Content', '205': 'Reset Content', '304': 'Not Modified'}.get(code, 'Probe')
    headers = [('X-Probe-Status', code)]
    if body and q.get('cl') == '1':
        headers.append(('Content-Length', '16'))
    start_response('%s %s' % (code, reason), headers)
    return [b'must not be sent'] if body else []


def hop_by_hop(environ, start_response):
    q = query(environ)
    start_response('200 OK', [CT_TEXT, (q.get('name', 'Transfer-Encoding'), q.get('value', 'chunked'))])
    return [b'hop-by-hop header was accepted']


def repeated_headers(environ, start_response):
    start_response('200 OK', [CT_TEXT, ('Set-Cookie', 'a=1; Path=/'), ('X-Rep', 'one'), ('Set-Cookie', 'b=2'),
                              ('X-Rep', 'two'), ('Server', 'probe-server'), ('Date', 'Thu, 01 Jan 1970 00:00:00 GMT')])
    return [b'repeated']


def write_non_bytes(environ, start_response):
    write = start_response('200 OK', [CT_JSON])
    try:
        write('a str, not bytes')
    except Exception as e:
        report = {'raised': True, 'type': type(e).__name__, 'message': str(e)}
    else:
        report = {'raised': False}
    return [json.dumps(report, sort_keys=True).encode('ascii')]


def connection_close(environ, start_response):
    start_response('200 OK', [CT_TEXT, ('Connection', 'close'), ('Content-Length', '7')])
    return [b'closing']


# ---- close() tracking -----------------------------------------------------------------------------------------
class TrackedBody:
    """An iterable whose close() is recorded; modes choose how iteration ends."""

    def __init__(self, rid, mode, start_response, chunks=3, total=2000, size=65536):
        self.rid, self.mode, self.start_response = rid, mode, start_response
        self.i, self.chunks, self.total = 0, chunks, total
        self.block = b'x' * size
        self.produced = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        m = self.mode
        if m == 'raise_first':
            raise RuntimeError('probe: close_tracking raise_first')
        if m == 'non_bytes':
            return 'a str, not bytes'
        if m == 'endless':
            if self.produced >= self.total:
                raise StopIteration
            self.produced += 1
            return self.block
        if m == 'raise' and self.i == 2:
            raise RuntimeError('probe: close_tracking raise')
        if self.i > self.chunks:
            raise StopIteration
        return ('part%d;' % self.i).encode('ascii')

    def close(self):
        record(self.rid, 'close', produced=self.produced, nexts=self.i)


def close_tracking(environ, start_response):
    q = query(environ)
    rid = q.get('id')
    mode = q.get('mode', 'normal')
    record(rid, 'call', method=environ['REQUEST_METHOD'])
    if mode != 'no_start_response':
        start_response('200 OK', [CT_TEXT])
    body = TrackedBody(rid, mode, start_response, total=int(q.get('total', '2000')))
    keep(rid, body)
    return body


def closes(environ, start_response):
    q = query(environ)
    rid = q.get('id', '')
    wait = q.get('wait')
    count = int(q.get('count', '1'))
    deadline = time.monotonic() + float(q.get('timeout', '15'))
    timed_out = False
    with _cond:
        while wait and _rec(rid)['events'].count(wait) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            _cond.wait(left)
        r = _rec(rid)
        out = {'closes': r['events'].count('close'), 'events': list(r['events']), 'fields': dict(r['fields']),
               'timed_out': timed_out}
    return json_response(start_response, out)


# ---- errors ---------------------------------------------------------------------------------------------------
def error(environ, start_response, case):
    token = query(environ).get('token', 'none')
    if case == 'before':
        raise RuntimeError('probe-error-before-' + token)
    if case == 'before_after_start':
        start_response('200 OK', [CT_TEXT, ('X-Should-Not-Appear', '1')])
        raise RuntimeError('probe-error-before-after-start-' + token)
    if case == 'after':
        def gen():
            start_response('200 OK', [CT_TEXT])
            yield b'partial body'
            raise RuntimeError('probe-error-after-' + token)
        return gen()
    if case == 'after_cl':
        def gen():
            start_response('200 OK', [CT_TEXT, ('Content-Length', '100')])
            yield b'0123456789'
            raise RuntimeError('probe-error-after-cl-' + token)
        return gen()
    return json_response(start_response, {'error': 'unknown case ' + case}, '404 Not Found')


def errors_stream(environ, start_response):
    token = query(environ).get('token', 'none')
    err = environ['wsgi.errors']
    err.write('probe-errors-write-%s\n' % token)
    err.writelines(['probe-errors-writelines-%s\n' % token])
    err.flush()
    start_response('200 OK', [CT_TEXT])
    return [b'logged']


# ---- wsgi.file_wrapper ----------------------------------------------------------------------------------------
class TrackedFile(io.FileIO):
    rid = None

    def close(self):
        if not self.closed:
            record(self.rid, 'close')
        else:
            record(self.rid, 'close_again')
        super().close()


class TrackedBytesIO(io.BytesIO):
    rid = None

    def read(self, size=-1):
        record(self.rid, 'read:%s' % size)
        return super().read(size)

    def close(self):
        record(self.rid, 'close')
        super().close()


def file_wrapper(environ, start_response, case):
    q = query(environ)
    rid = q.get('id')
    blksize = int(q.get('blksize', '8192'))
    wrap = environ['wsgi.file_wrapper']
    if case in ('real', 'iterate_real'):
        f = TrackedFile(FILE_PATH, 'rb')
        f.rid = rid
        keep(rid, f)
        seek = int(q.get('seek', '0'))
        if seek:
            f.seek(seek)
        headers = [('Content-Type', 'application/octet-stream')]
        if 'cl' in q:
            headers.append(('Content-Length', q['cl']))
        elif q.get('nocl') != '1':
            headers.append(('Content-Length', str(FILE_SIZE - seek)))
        wrapper = wrap(f, blksize)
        keep(rid, wrapper)
        if case == 'iterate_real':
            data = b''.join(wrapper)  # the wrapper must be iterable from Python too
            wrapper.close()
            start_response('200 OK', [('Content-Type', 'application/octet-stream')])
            return [data]
        start_response('200 OK', headers)
        return wrapper
    if case == 'bytesio':
        f = TrackedBytesIO(FILE_DATA[:50000])
        f.rid = rid
        keep(rid, f)
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        wrapper = wrap(f, blksize)
        keep(rid, wrapper)
        return wrapper
    return json_response(start_response, {'error': 'unknown case ' + case}, '404 Not Found')


# ---- recursion and streaming ----------------------------------------------------------------------------------
def recursion(environ, start_response):
    mode = query(environ).get('mode', 'python')
    depth = [0]

    def py(n):
        depth[0] = n
        return py(n + 1)

    def c(n):  # every level goes through C (list -> map -> call), so it uses the C stack
        depth[0] = n
        return list(map(c, (n + 1,)))

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(10000)
    raised = None
    try:
        (py if mode == 'python' else c)(1)
    except RecursionError as e:
        raised = type(e).__name__
    finally:
        sys.setrecursionlimit(old)
    return json_response(start_response, {'mode': mode, 'raised': raised, 'depth': depth[0]})


def slow_stream(environ, start_response):
    q = query(environ)
    n, size = int(q.get('n', '200')), int(q.get('size', '1000'))
    delay = int(q.get('delay_ms', '0')) / 1000.0
    start_response('200 OK', [CT_TEXT])

    def gen():
        for i in range(n):
            if delay:
                time.sleep(delay)
            yield bytes([65 + i % 26]) * size
    return gen()


# ---- router ---------------------------------------------------------------------------------------------------
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    parts = path.split('/')
    first = parts[1] if len(parts) > 1 else ''
    rest = '/'.join(parts[2:])
    if path == '/environ' or path.startswith('/environ/'):
        return environ_route(environ, start_response)
    if first == 'input' and rest:
        return input_route(environ, start_response, rest)
    if first == 'start_response' and rest:
        return start_response_route(environ, start_response, rest)
    if first == 'content_length' and rest:
        return content_length(environ, start_response, rest)
    if first == 'status' and rest:
        return status(environ, start_response, rest)
    if first == 'error' and rest:
        return error(environ, start_response, rest)
    if first == 'file_wrapper' and rest:
        return file_wrapper(environ, start_response, rest)
    route = ROUTES.get(path)
    if route is not None:
        return route(environ, start_response)
    return environ_route(environ, start_response, extra_headers=[('X-Probe-Route', 'fallback')])


ROUTES = {
    '/lazy': lazy,
    '/lazy_empty_first': lazy_empty_first,
    '/generator': generator,
    '/generator_with_empty': generator_with_empty,
    '/single': single,
    '/two_elements': two_elements,
    '/empty': empty,
    '/write': write_route,
    '/write_and_iter': write_and_iter,
    '/head': head,
    '/hop_by_hop': hop_by_hop,
    '/connection_close': connection_close,
    '/repeated_headers': repeated_headers,
    '/write_non_bytes': write_non_bytes,
    '/close_tracking': close_tracking,
    '/closes': closes,
    '/errors_stream': errors_stream,
    '/recursion': recursion,
    '/slow_stream': slow_stream,
}
