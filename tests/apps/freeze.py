"""Routes for the frozen-worker tests: a C call that holds the GIL, as a hung extension module does.

/fast                  a small answer: the worker's pid (the side load)
/whoami                the pid, REMOTE_ADDR, REMOTE_PORT and the HTTP_* keys, as JSON
/freeze?s=N&marker=P   writes the pid to file P, then calls libc sleep(N) through ctypes.PyDLL, which keeps the GIL
                       for the whole call: every Python thread of this worker (and its monitor) stands still
"""
import ctypes
import json
import os
from urllib.parse import parse_qs

_libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call (CDLL would release it)


def application(environ, start_response):
    if environ["PATH_INFO"] == "/freeze":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        marker = query.get("marker", [None])[0]
        if marker:
            with open(marker + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(marker + ".tmp", marker)  # whole or absent: the test polls for it
        _libc.sleep(int(query.get("s", ["5"])[0]))
    if environ["PATH_INFO"] == "/whoami":
        body = json.dumps({
            "pid": os.getpid(), "remote_addr": environ["REMOTE_ADDR"], "remote_port": environ["REMOTE_PORT"],
            "headers": sorted(k for k in environ if k.startswith("HTTP_")),
        }).encode()
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
