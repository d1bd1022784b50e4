"""Routes for the HTTP/2 tests (tests/SharpWsgi.Tests/Functional/Http2Tests.cs).

/environ              the environ's str/int/bool values as JSON
/echo                 reads wsgi.input to the end; answers its length, sha256, CONTENT_LENGTH and the HTTP_ keys
/status?code=N        status N with Content-Length 5 and body b"hello" (the server must drop it for 204/304/HEAD)
/hop?name=N&value=V   sets a response header the app is not allowed to set (PEP 3333: hop-by-hop)
/short                Content-Length 100, 10 bytes sent: the stream must be reset, not left hanging
/long                 Content-Length 5, 10 bytes sent: 5 arrive, the rest is dropped
/stream?kb=N&live=1   N KiB (0: without end) in 16 KiB chunks; live=1 makes it text/event-stream (never spooled,
                      the thread waits for the client); close() is counted
/closes?settled=1     {"stream_closed": close() calls so far, "stream_started": streams started}; settled=1
                      first waits (at most 20 s) until every started stream has been closed
/wait?n=N             waits until N requests wait here at once (proves they run concurrently), then answers
/hold?n=N             as /wait, then holds the N requests until /release is asked (at most 20 s: then 504)
/release              lets the held requests answer
"""
import hashlib
import json
import threading

_lock = threading.Lock()
_settled = threading.Condition(_lock)
_stats = {"stream_closed": 0, "stream_started": 0}
_barriers = {}
_released = threading.Event()
_CHUNK = b"z" * 16384


def _query(environ):
    out = {}
    for part in environ.get("QUERY_STRING", "").split("&"):
        key, _, value = part.partition("=")
        if key:
            out[key] = value
    return out


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode("ascii")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _Stream:
    """The streamed body; close() is counted so a test can see that the Python side finished exactly once."""

    def __init__(self, kb):
        self._kb = kb
        with _lock:
            _stats["stream_started"] += 1

    def __iter__(self):
        sent = 0
        while self._kb == 0 or sent < self._kb:
            yield _CHUNK
            sent += 16

    def close(self):
        with _lock:
            _stats["stream_closed"] += 1
            _settled.notify_all()


def _wait(environ, start_response):
    n = int(_query(environ).get("n", "2"))
    with _lock:
        barrier = _barriers.setdefault(n, threading.Barrier(n))
    try:
        barrier.wait(20)
    except threading.BrokenBarrierError:
        return _json(start_response, {"ok": False}, "504 Gateway Timeout")
    return _json(start_response, {"ok": True})


def _hold(environ, start_response):
    n = int(_query(environ).get("n", "2"))
    with _lock:
        barrier = _barriers.setdefault(("hold", n), threading.Barrier(n))
    try:
        barrier.wait(20)
    except threading.BrokenBarrierError:
        return _json(start_response, {"ok": False}, "504 Gateway Timeout")
    if not _released.wait(20):
        return _json(start_response, {"ok": False, "released": False}, "504 Gateway Timeout")
    return _json(start_response, {"ok": True})


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = _query(environ)
    if path == "/environ":
        values = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool))}
        return _json(start_response, values)
    if path == "/echo":
        body = environ["wsgi.input"].read()
        return _json(start_response, {"len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                                      "content_length": environ.get("CONTENT_LENGTH"),
                                      "http_keys": sorted(k for k in environ if k.startswith("HTTP_"))})
    if path == "/status":
        code = int(query.get("code", "200"))
        start_response("%d Status" % code, [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/hop":
        start_response("200 OK", [("Content-Type", "text/plain"), (query["name"], query.get("value", "x"))])
        return [b"hop header accepted\n"]
    if path == "/short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return [b"0123456789"]
    if path == "/long":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"0123456789"]
    if path == "/stream":
        content_type = "text/event-stream" if query.get("live") == "1" else "application/octet-stream"
        start_response("200 OK", [("Content-Type", content_type)])
        return _Stream(int(query.get("kb", "1024")))
    if path == "/closes":
        with _lock:
            if query.get("settled") == "1":  # waits for every started stream to be closed (an event, not a sleep)
                _settled.wait_for(lambda: _stats["stream_closed"] >= _stats["stream_started"], 20)
            return _json(start_response, dict(_stats))
    if path == "/wait":
        return _wait(environ, start_response)
    if path == "/hold":
        return _hold(environ, start_response)
    if path == "/release":
        _released.set()
        return _json(start_response, {"released": True})
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such route\n"]
