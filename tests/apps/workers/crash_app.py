"""Boots normally, unless the file named by $WORKERS_TEST_CRASH_FILE exists: then the process dies at import
with os._exit(7) (a crash, not an import error). Run: WORKERS_TEST_CRASH_FILE=/tmp/x sharpwsgi -w 2 tests/apps/workers/crash_app.py
  / -> {"pid"}
"""
import json
import os
import sys

_flag = os.environ.get('WORKERS_TEST_CRASH_FILE')
if _flag and os.path.exists(_flag):
    sys.stderr.write('CRASH-AT-BOOT pid=%d\n' % os.getpid())
    sys.stderr.flush()
    os._exit(7)


def application(environ, start_response):
    body = json.dumps({'pid': os.getpid()}).encode('ascii')
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
