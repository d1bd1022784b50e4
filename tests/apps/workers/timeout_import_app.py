"""Imports RequestTimeout at module level, as an app naturally would. Run: sharpwsgi --request-timeout 1 tests/apps/workers/timeout_import_app.py
  /loop -> a pure-Python loop for up to 30 s; a RequestTimeout raised into it is caught here and recorded
  /     -> {"pid", "caught": [...]}
"""
import json
import os
import time

from sharpwsgi import RequestTimeout

caught = []


def application(environ, start_response):
    if environ.get('PATH_INFO') == '/loop':
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                pass
        except RequestTimeout as e:
            caught.append(type(e).__module__ + '.' + type(e).__name__)
            raise
    body = json.dumps({'pid': os.getpid(), 'caught': caught}).encode('ascii')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
