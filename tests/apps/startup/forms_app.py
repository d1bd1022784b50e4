"""Apps for the APP-form startup tests; each answers JSON naming itself. Run: sharpwsgi tests/apps/startup/forms_app.py:custom

  forms_app                 -> application      forms_app:app        -> app
  forms_app:custom          -> custom           forms_app:create_app() -> factory (called once, counted)
  forms_app:not_callable    -> a startup error  (42 is not callable)
"""
import json
import os
import sys

FACTORY_CALLS = 0
not_callable = 42


def _make(name):
    def wsgi_app(environ, start_response):
        body = json.dumps({
            'app': name,
            'cwd': os.getcwd(),
            'python': sys.version.split()[0],
            'executable': sys.executable,
            'prefix': sys.prefix,
            'factory_calls': FACTORY_CALLS,
            'SCRIPT_NAME': environ.get('SCRIPT_NAME'),
            'PATH_INFO': environ.get('PATH_INFO'),
            'wsgi.multithread': environ.get('wsgi.multithread'),
        }).encode()
        start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
        return [body]
    wsgi_app.__name__ = name
    return wsgi_app


application = _make('application')
app = _make('app')
custom = _make('custom')


def create_app():
    global FACTORY_CALLS
    FACTORY_CALLS += 1
    return _make('factory')
