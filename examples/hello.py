"""The PEP 3333 example app. Run: dotnet run -c Release --project src/SharpWsgi -- examples/hello.py"""


def simple_app(environ, start_response):
    """Simplest possible application object"""
    status = '200 OK'
    response_headers = [('Content-type', 'text/plain')]
    start_response(status, response_headers)
    return [b'Hello world!\n']


# `sharpwsgi examples/hello.py` looks up `application` (then `app`); the PEP calls it simple_app.
application = simple_app
