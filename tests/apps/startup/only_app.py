"""A module with only `app` (no `application`): `sharpwsgi only_app` must find it. Run: sharpwsgi --pythonpath tests/apps/startup only_app"""


def app(environ, start_response):
    body = b'{"app": "only_app.app"}'
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
