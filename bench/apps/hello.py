"""hello: the PEP 3333 minimal application (no Content-Length: the server frames the body)."""


def application(environ, start_response):
    start_response('200 OK', [('Content-type', 'text/plain')])
    return [b'Hello world!\n']
