"""For the access log tests: /log writes through Python logging and wsgi.errors; every answer says the request ID
the app saw (HTTP_X_REQUEST_ID) and sets an X-App response header; ?status=NNN answers with that status."""
import logging

log = logging.getLogger('access_log_app')


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/log':
        log.warning('app warning here')
        environ['wsgi.errors'].write('errors stream here\n')
    body = ('id=%s' % environ.get('HTTP_X_REQUEST_ID', '')).encode('latin-1')
    query = environ.get('QUERY_STRING', '')
    status = query[len('status='):] + ' Chosen' if query.startswith('status=') else '200 OK'
    start_response(status, [('Content-Type', 'text/plain'), ('Content-Length', str(len(body))),
                              ('X-App', 'yes')])
    return [body]
