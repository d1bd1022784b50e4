"""Counts and checksums an uploaded body by streaming wsgi.input. Run: dotnet run -c Release --project src/SharpWsgi -- examples/upload.py (then: curl -T bigfile localhost:8000/)"""
import hashlib
import json


def application(environ, start_response):
    stream = environ['wsgi.input']
    digest = hashlib.sha256()
    total = 0
    lines = 0
    # Read in fixed-size blocks: memory stays flat whatever the upload size (Content-Length or chunked).
    while True:
        block = stream.read(64 * 1024)
        if not block:
            break
        total += len(block)
        lines += block.count(b'\n')
        digest.update(block)
    body = json.dumps({
        'method': environ['REQUEST_METHOD'],
        'content_type': environ.get('CONTENT_TYPE'),
        'content_length': environ.get('CONTENT_LENGTH'),
        'bytes': total,
        'lines': lines,
        'sha256': digest.hexdigest(),
    }).encode() + b'\n'
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
