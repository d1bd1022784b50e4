"""sleep10ms: an I/O-bound request (time.sleep releases the GIL): shows what threads buy."""
import time

BODY = b'slept 10 ms\n'


def application(environ, start_response):
    time.sleep(0.01)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(BODY)))])
    return [BODY]
