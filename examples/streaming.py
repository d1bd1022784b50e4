"""A generator streaming its body in chunks. Run: dotnet run -c Release --project src/SharpWsgi -- examples/streaming.py (then: curl -N localhost:8000/?count=5)"""
from urllib.parse import parse_qs
import time


def application(environ, start_response):
    query = parse_qs(environ.get('QUERY_STRING', ''))
    count = int(query.get('count', ['10'])[0])
    delay = float(query.get('delay', ['0.2'])[0])

    # No Content-Length: the server sends the body chunked on HTTP/1.1, one chunk per yield.
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])

    def body():
        for i in range(1, count + 1):
            yield f'chunk {i} of {count}\n'.encode()
            if i < count and delay > 0:
                time.sleep(delay)

    return body()
