"""bench: the process layout (issue 16). Start to the first 200 and the RSS of the supervisor and its one worker, for
a sharpwsgi command line serving bench/apps/hello.py at -w 1; 5 starts, median:
    python3 bench/lib/layout.py LABEL COMMAND [ARGS...]
e.g. `python3 bench/lib/layout.py launcher dist/sharpwsgi --python /usr/bin/python3`, or with
bench/lib/python-supervisor.sh as COMMAND (the supervisor itself in python). Results: bench/results/*-layout.md.
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def first_200(port):
    try:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=1)
        c.request('GET', '/')
        r = c.getresponse()
        r.read()
        return r.status == 200
    except OSError:
        return False


def measure(cmd):
    port = free_port()
    started = time.monotonic()
    p = subprocess.Popen(cmd + ['-b', f'127.0.0.1:{port}', '-w', '1', '--log-level', 'warning',
                                os.path.join(REPO, 'bench/apps/hello.py')],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not first_200(port):
            if p.poll() is not None:
                raise SystemExit(f'layout.py: {cmd[0]} exited with {p.returncode}')
            time.sleep(0.005)  # polling the port: the measured quantity is when it first answers
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # RSS half a second after the first 200, when start-up allocations have settled
        with open(f'/proc/{p.pid}/task/{p.pid}/children') as f:
            workers = [int(x) for x in f.read().split()]
        return elapsed, rss_mb(p.pid), sum(rss_mb(w) for w in workers)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait()


def main():
    label, cmd = sys.argv[1], sys.argv[2:]
    runs = [measure(cmd) for _ in range(5)]
    print(json.dumps({
        'label': label,
        'start_ms': round(statistics.median(r[0] for r in runs) * 1000),
        'supervisor_mb': round(statistics.median(r[1] for r in runs), 1),
        'worker_mb': round(statistics.median(r[2] for r in runs), 1),
    }))


if __name__ == '__main__':
    main()
