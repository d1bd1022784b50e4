"""stream100: a generator yielding 100 chunks of 100 bytes (no Content-Length: chunked on HTTP/1.1)."""
CHUNKS = [(b'chunk %03d ' % i).ljust(99, b'.') + b'\n' for i in range(100)]


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])

    def body():
        for chunk in CHUNKS:
            yield chunk

    return body()
