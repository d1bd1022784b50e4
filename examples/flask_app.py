"""A small Flask app (an HTML page and a JSON route). Run: dotnet run -c Release --project src/SharpWsgi -- examples/flask_app.py (with Flask installed: pip install flask, or Debian's python3-flask with --python /usr/bin/python3)"""
import platform

from flask import Flask, jsonify, render_template_string, request

app = Flask(__name__)

PAGE = """<!doctype html>
<html>
<head><title>SharpWsgi + Flask</title></head>
<body>
  <h1>Hello from Flask on SharpWsgi</h1>
  <p>Python {{ python }}; you asked for <code>{{ path }}</code>.</p>
  <p>Try <a href="{{ url_for('api_hello', name='world') }}">the JSON route</a>.</p>
</body>
</html>
"""


@app.route('/')
def index():
    return render_template_string(PAGE, python=platform.python_version(), path=request.path)


@app.route('/api/hello/<name>')
def api_hello(name):
    return jsonify(greeting=f'Hello, {name}!', method=request.method, args=request.args.to_dict())
