"""Imports a module that exists only in a virtualenv's site-packages (the venv test creates it). Run: VIRTUAL_ENV=/path/to/venv sharpwsgi tests/apps/startup/venv_app.py"""
import json
import sys

import sharpwsgi_venv_marker


def application(environ, start_response):
    body = json.dumps({
        'marker': sharpwsgi_venv_marker.MARKER,
        'prefix': sys.prefix,
        'python': sys.version.split()[0],
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
