"""Fails at import, for the worker boot failure test. Run: sharpwsgi -w 2 tests/apps/workers/broken_app.py (exits 4)"""


def _fail_while_importing():
    raise LookupError('workers-test: broken_app cannot be imported')


_fail_while_importing()


def application(environ, start_response):  # never reached
    start_response('200 OK', [])
    return [b'unreachable']
