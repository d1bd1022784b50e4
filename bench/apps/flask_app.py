"""flask: a small JSON route on Debian's Flask (python3-flask)."""
from flask import Flask

app = Flask(__name__)


@app.route('/')
def index():
    return {'message': 'Hello, World!', 'server': 'bench', 'items': [1, 2, 3]}


application = app
