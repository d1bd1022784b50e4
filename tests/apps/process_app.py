"""What the process flags change, as a worker sees it (tests/SharpWsgi.Tests/Workers/ProcessFlagsTests.cs):
  /env?name=NAME -> {"set": true/false, "value": os.environ's value or null}
  /ids           -> {"pid", "uid", "euid", "gid", "egid", "groups", "umask"}
  /print?m=TEXT  -> prints "print TEXT" (sys.stdout), "stderr TEXT" (sys.stderr), and writes "fd1 TEXT" and
                    "fd2 TEXT" straight to descriptors 1 and 2, as a C extension would
Anything else answers 200 "ok".
"""
import json
import os
import sys
import threading
from urllib.parse import parse_qs

_umask_lock = threading.Lock()


def _json(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode('utf-8')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def _current_umask():
    # os.umask only sets: set it back at once (the lock keeps this app's threads from racing on it).
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    query = parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True)
    if path == '/env':
        name = query.get('name', [''])[0]
        return _json(start_response, {'set': name in os.environ, 'value': os.environ.get(name)})
    if path == '/ids':
        return _json(start_response, {
            'pid': os.getpid(), 'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(),
            'egid': os.getegid(), 'groups': os.getgroups(), 'umask': _current_umask(),
        })
    if path == '/print':
        text = query.get('m', [''])[0]
        print('print ' + text)
        sys.stderr.write('stderr %s\n' % text)
        os.write(1, ('fd1 %s\n' % text).encode('utf-8'))
        os.write(2, ('fd2 %s\n' % text).encode('utf-8'))
        return _json(start_response, {'printed': text})
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '2')])
    return [b'ok']
