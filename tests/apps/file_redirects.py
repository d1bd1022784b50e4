"""Plain WSGI app for X-Accel-Redirect and X-Sendfile: it names a file (or anything it is told to) in a response
header and sends a body the server must drop. Query parameters: loc (the header's value), header (X-Accel-Redirect
or X-Sendfile), type (a Content-Type of its own, or 'none'), status, length (a Content-Length of its own), and
raise=1 to fail after the head. Other paths answer 200 'app:' + PATH_INFO, so a test sees when the app was reached.
"""
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path != '/file':
        body = ('app:' + path).encode('latin-1')
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
        return [body]
    q = {k: v[-1] for k, v in parse_qs(environ['QUERY_STRING'], keep_blank_values=True).items()}
    headers = [(q.get('header', 'X-Accel-Redirect'), q['loc']),
               ('Content-Disposition', 'attachment; filename="report.pdf"'),
               ('Cache-Control', 'private, max-age=30'),
               ('Set-Cookie', 'downloaded=1; Path=/'),
               ('X-Accel-Limit-Rate', '1048576'),
               ('ETag', '"app-etag"')]
    if q.get('type', 'text/html; charset=utf-8') != 'none':
        headers.append(('Content-Type', q.get('type', 'text/html; charset=utf-8')))
    body = b'the app body, which nobody must see'
    if 'length' in q:
        headers.append(('Content-Length', q['length']))
    start_response(q.get('status', '200 OK'), headers)
    if q.get('raise') == '1':
        def failing():
            yield b'x'
            raise RuntimeError('failed after naming the file')
        return failing()
    return [body]
