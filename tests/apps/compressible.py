"""Plain WSGI app for --compress. Query parameters: size (bytes of HTML-like text), type (Content-Type), chunks (a
generator of that many chunks of size bytes each, else one list item with its Content-Length), pause (seconds the
generator waits, by a threading.Event the test sets through /release, before its last chunk), status, encoding (a
Content-Encoding of its own), cache (Cache-Control), etag, buffering (an X-Accel-Buffering value), vary, random=1
(random hex digits, which compress to about half: a body too large for the socket buffers once compressed).
/release sets the event a paused generator waits for.
"""
import random as _random
import threading
from urllib.parse import parse_qs

_released = threading.Event()
_LINE = b'<tr><td class="name">row</td><td class="value">a value that repeats, as HTML does</td></tr>\n'


def _text(size, salt=0, noisy=False):
    if noisy:
        return _random.Random(salt).randbytes(size // 2).hex().encode()
    whole = (_LINE * (size // len(_LINE) + 1))[:size]
    return bytes(whole) if salt == 0 else whole.replace(b'row', b'r%02d' % (salt % 100), 1)


def application(environ, start_response):
    if environ['PATH_INFO'] == '/release':
        _released.set()
        start_response('204 No Content', [])
        return []
    q = {k: v[-1] for k, v in parse_qs(environ['QUERY_STRING'], keep_blank_values=True).items()}
    size = int(q.get('size', '20000'))
    chunks = int(q.get('chunks', '0'))
    noisy = q.get('random') == '1'
    headers = [('Content-Type', q.get('type', 'text/html; charset=utf-8'))]
    for param, name in (('encoding', 'Content-Encoding'), ('cache', 'Cache-Control'), ('etag', 'ETag'),
                        ('buffering', 'X-Accel-Buffering'), ('vary', 'Vary')):
        if param in q:
            headers.append((name, q[param]))
    if chunks == 0:
        body = _text(size, noisy=noisy)
        headers.append(('Content-Length', str(len(body))))
        start_response(q.get('status', '200 OK'), headers)
        return [body]
    start_response(q.get('status', '200 OK'), headers)

    def stream():
        for i in range(chunks):
            if i == chunks - 1 and 'pause' in q:
                _released.wait(float(q['pause']))
                _released.clear()
            yield _text(size, i + 1, noisy)
    return stream()
