"""static10k: a 10 KB bytes body built once at import."""
BODY = bytes(range(256)) * 40  # 10240 bytes
HEADERS = [('Content-Type', 'application/octet-stream'), ('Content-Length', str(len(BODY)))]


def application(environ, start_response):
    start_response('200 OK', list(HEADERS))
    return [BODY]
