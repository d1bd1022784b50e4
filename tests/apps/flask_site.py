"""Flask site for the end-to-end tests: a page, a form POST protected by a CSRF token, a redirect, a JSON route, 404s.
Run: sharpwsgi --python /usr/bin/python3 tests/apps/flask_site.py   (Debian's python3-flask)

Flask has no CSRF protection of its own (Flask-WTF adds it); this app does what it does: a random token kept in
the signed session cookie, echoed in a hidden field, compared on POST (400 when missing or wrong).
"""
import hmac
import platform
import secrets

import flask
from flask import Flask, abort, jsonify, redirect, render_template_string, request, session, url_for

app = Flask(__name__)
app.secret_key = 'sharpwsgi-tests-not-secret'

PAGE = """<!doctype html>
<html><head><title>Flask site</title></head>
<body><h1>Hello from Flask</h1><p>Python {{ python }}, script root "{{ root }}".</p></body></html>
"""

FORM = """<!doctype html>
<html><head><title>Guest book</title></head>
<body>
<form method="post" action="{{ url_for('form') }}">
  <input type="hidden" name="csrf_token" value="{{ token }}">
  <label>Name <input name="name"></label>
  <button type="submit">Sign</button>
</form>
</body></html>
"""

THANKS = """<!doctype html>
<html><head><title>Thanks</title></head><body><h1>Thanks, {{ name }}!</h1></body></html>
"""


def _csrf_token():
    if 'csrf_token' not in session:
        session['csrf_token'] = secrets.token_urlsafe(32)
    return session['csrf_token']


@app.before_request
def _check_csrf():
    if request.method == 'POST':
        expected = session.get('csrf_token')
        given = request.form.get('csrf_token', '')
        if not expected or not hmac.compare_digest(expected, given):
            abort(400, description='CSRF token missing or incorrect')


@app.route('/')
def index():
    return render_template_string(PAGE, python=platform.python_version(), root=request.script_root)


@app.route('/form', methods=['GET', 'POST'])
def form():
    if request.method == 'POST':
        name = request.form.get('name', '').strip()
        if not name:
            abort(400, description='name is required')
        return redirect(url_for('thanks', name=name), code=303)
    return render_template_string(FORM, token=_csrf_token())


@app.route('/thanks')
def thanks():
    return render_template_string(THANKS, name=request.args.get('name', ''))


@app.route('/old')
def old():
    return redirect(url_for('index'))


@app.route('/api/info')
def info():
    return jsonify(python=platform.python_version(), flask=getattr(flask, '__version__', '?'),
                   path=request.path, script_root=request.script_root, args=request.args.to_dict())
