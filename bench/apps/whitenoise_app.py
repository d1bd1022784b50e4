"""whitenoise serving the static benchmark's files (bench/lib/static.py sets STATIC_BENCH_ROOT), the way a Django
site without nginx commonly serves them; anything else is a 404 from the (trivial) app behind it."""
import os

from whitenoise import WhiteNoise


def _not_found(environ, start_response):
    start_response('404 Not Found', [('Content-Type', 'text/plain'), ('Content-Length', '10')])
    return [b'not found\n']


# autorefresh off: production mode, the file list is read once at start (as in whitenoise's Django defaults).
application = WhiteNoise(_not_found, root=os.environ['STATIC_BENCH_ROOT'], prefix='static/', max_age=60,
                         autorefresh=False)
