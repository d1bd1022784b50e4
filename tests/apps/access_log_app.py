"""For the access log tests: /log writes through Python logging and wsgi.errors; every answer says the request ID
the app saw (HTTP_X_REQUEST_ID) and sets an X-App response header."""
import logging

log = logging.getLogger('access_log_app')


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/log':
        log.warning('app warning here')
        environ['wsgi.errors'].write('errors stream here\n')
    body = ('id=%s' % environ.get('HTTP_X_REQUEST_ID', '')).encode('latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body))),
                              ('X-App', 'yes')])
    return [body]
