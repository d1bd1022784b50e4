"""Registers an atexit hook that writes the file named by SHARPWSGI_TEST_ATEXIT_FILE: a worker that ends runs the
app's atexit hooks, as a gunicorn worker's interpreter does when it exits."""
import atexit
import os
import sys

PATH = os.environ['SHARPWSGI_TEST_ATEXIT_FILE']


@atexit.register
def _written_at_exit():
    with open(PATH, 'a') as f:
        f.write('atexit ran in %d\n' % os.getpid())


def application(environ, start_response):
    body = ('%s %s %d' % (sys.executable, sys.argv[0], os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
