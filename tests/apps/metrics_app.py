"""The metrics tests' app: answers the status asked for (/status/NNN), raises on /raise, tells its pid on /pid,
sleeps on /sleep?SECONDS. With METRICS_TEST_GATE set, the import waits until that file exists (a worker that is
still booting), and /wait holds its request until GATE.release exists."""
import os
import time

_gate = os.environ.get("METRICS_TEST_GATE")
while _gate and not os.path.exists(_gate):
    time.sleep(0.02)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/raise":
        raise RuntimeError("metrics test: the app raised")
    if path == "/wait":
        # Holds a request in flight (for a shutdown the test watches): says it is here, waits for release.
        open(_gate + ".entered", "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(_gate + ".release") and time.monotonic() < deadline:
            time.sleep(0.02)
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    status = 200
    if path.startswith("/status/"):
        status = int(path[len("/status/"):])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    elif environ.get("wsgi.input_terminated"):
        environ["wsgi.input"].read()  # a chunked body
    body = b"x" * 10
    start_response(f"{status} Test", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
