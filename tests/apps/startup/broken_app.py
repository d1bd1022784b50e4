"""A module that fails at import, for the startup error test. Run: sharpwsgi tests/apps/startup/broken_app.py (exits non-zero)"""


def _fail_while_importing():
    raise RuntimeError('boom while importing broken_app')


_fail_while_importing()


def application(environ, start_response):  # never reached
    start_response('200 OK', [])
    return [b'unreachable']
