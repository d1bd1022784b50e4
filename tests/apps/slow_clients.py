"""Routes for the slow-client tests: what a Python thread does while clients upload or read slowly.

/fast            a small answer (the side requests that must stay fast)
/upload?block=N  reads the whole body (in blocks of N when given), answers its length
/stream?mb=N     a generator of N MiB in 64 KiB chunks, no Content-Length (chunked)
/live?kb=N       text/event-stream: N KiB of events, the server must not buffer it
/spin?s=N        a pure-Python loop for N seconds (holds a thread without ever blocking)
/stats           how many streams and live streams Python finished (close() called)
"""
import json
import threading
import time

_lock = threading.Lock()
_stats = {"stream_closed": 0, "live_closed": 0, "upload_done": 0}
_CHUNK = b"x" * 65536
_EVENT = b"data: " + b"y" * 1016 + b"\n\n"


def _count(key):
    with _lock:
        _stats[key] += 1


class _Counted:
    """An iterable whose close() is counted: proof that the Python side finished."""

    def __init__(self, chunks, key):
        self._chunks = chunks
        self._key = key

    def __iter__(self):
        return iter(self._chunks)

    def close(self):
        _count(self._key)


def _arg(environ, name, default):
    for part in environ.get("QUERY_STRING", "").split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return float(value)
    return default


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/upload":
        block = int(_arg(environ, "block", 0))
        if block:
            total = 0
            while True:
                data = environ["wsgi.input"].read(block)
                if not data:
                    break
                total += len(data)
        else:
            total = len(environ["wsgi.input"].read())
        _count("upload_done")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(total).encode()]
    if path == "/stream":
        chunks = int(_arg(environ, "mb", 20) * 16)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Counted((_CHUNK for _ in range(chunks)), "stream_closed")
    if path == "/live":
        events = int(_arg(environ, "kb", 65536))
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return _Counted((_EVENT for _ in range(events)), "live_closed")
    if path == "/spin":
        end = time.monotonic() + _arg(environ, "s", 5)
        n = 0
        while time.monotonic() < end:
            n += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(n).encode()]
    if path == "/stats":
        with _lock:
            body = json.dumps(_stats).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
