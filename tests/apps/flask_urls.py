"""Flask app for the behind-a-proxy tests: what Flask makes of the environ a proxy's headers produced.
Run: sharpwsgi --python /usr/bin/python3 tests/apps/flask_urls.py   (Debian's python3-flask)

GET /x answers JSON: the external URL Flask builds for itself (url_for(..., _external=True)), request.remote_addr,
request.scheme and is_secure, the X-Forwarded-For header as the app got it, and the server's proxy keys.
"""
from flask import Flask, jsonify, request, url_for

app = Flask(__name__)


@app.route('/x')
def x():
    environ = request.environ
    return jsonify(
        url=url_for('x', _external=True),
        remote_addr=request.remote_addr,
        remote_port=environ.get('REMOTE_PORT'),
        scheme=request.scheme,
        is_secure=request.is_secure,
        https=environ.get('HTTPS'),
        x_forwarded_for=request.headers.get('X-Forwarded-For'),
        forwarded=request.headers.get('Forwarded'),
        proxy_addr=environ.get('sharpwsgi.proxy_addr'),
        proxy_port=environ.get('sharpwsgi.proxy_port'),
    )
