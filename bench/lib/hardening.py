"""Issue 17's figures, each build side by side in one run: what idle non-readers hold, and what a frozen worker
costs a side load on fresh connections.

non-readers  16 clients ask for /stream?mb=100 (tests/apps/slow_clients.py, -w 2, --send-timeout 5) with a 4 KiB
             receive buffer and never read; the spool the workers hold (their deleted files) is summed at 3 s,
             at send-timeout + 3 s and at 30 s, with the slowest side request meanwhile.
frozen       tests/apps/freeze.py, -w 2: one worker is frozen for 8 s in a C call that holds the GIL while 4 clients
             send GET /fast on fresh connections for 12 s (3 s client timeout); failed requests are counted.
fresh        what accepting costs: ab -n 10000 -c 16 without keep-alive (a new connection per request, as nginx's
             proxy_pass by default) against /fast at -w 1 and -w 2, best of 3.

Usage: hardening.py --sharpwsgi BIN [--before BIN] [--out FILE]
"""
import argparse
import collections
import glob
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(REPO, 'tests', 'apps')
PYTHON = '/usr/bin/python3'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:
    """One sharpwsgi on 127.0.0.1, started and stopped by its PID."""

    def __init__(self, binary, app, *args, workers=2):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        argv = [binary, '--bind', '127.0.0.1:%d' % self.port, '--python', PYTHON, '--chdir', APPS] + list(args) + [app]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if len(self.workers()) >= workers and self.answers():
                return
            time.sleep(0.1)  # a poll interval while the server starts
        self.stop()
        raise RuntimeError('%s did not start' % binary)

    def answers(self):
        try:
            c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=2)
            c.request('GET', '/fast')
            c.getresponse().read()
            c.close()
            return True
        except OSError:
            return False

    def workers(self):
        try:
            with open('/proc/%d/task/%d/children' % (self.proc.pid, self.proc.pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def spool_bytes(self):
        total = 0
        for pid in self.workers():
            for fd in glob.glob('/proc/%d/fd/*' % pid):
                try:
                    if os.readlink(fd).endswith('(deleted)') and 'spool' in os.readlink(fd):
                        total += os.stat(fd).st_size
                except OSError:
                    pass
        return total

    def output(self):
        self.log.seek(0)
        return self.log.read().decode('utf-8', 'replace')

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def side_request(port, path='/fast', timeout=3):
    started = time.time()
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        c.request('GET', path)
        r = c.getresponse()
        r.read()
        return r.status, time.time() - started
    finally:
        c.close()


def non_readers(binary, clients=16, send_timeout=5):
    server = Server(binary, 'slow_clients.py', '-w', '2', '--send-timeout', str(send_timeout))
    socks = []
    try:
        for _ in range(clients):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(('127.0.0.1', server.port))
            s.sendall(b'GET /stream?mb=100 HTTP/1.1\r\nHost: bench\r\n\r\n')
            socks.append(s)
        started = time.time()
        marks = {3: None, send_timeout + 3: None, 30: None}
        slowest = 0.0
        while any(v is None for v in marks.values()):
            status, took = side_request(server.port)
            slowest = max(slowest, took)
            elapsed = time.time() - started
            for mark in marks:
                if marks[mark] is None and elapsed >= mark:
                    marks[mark] = server.spool_bytes()
            time.sleep(0.25)  # the sampling interval
        dropped = len(re.findall(r'dropped|took nothing', server.output()))
        return {'clients': clients, 'spool_mb': {m: round(v / 1e6, 1) for m, v in marks.items()},
                'slowest_side_ms': round(slowest * 1000, 1), 'drop_lines': dropped}
    finally:
        for s in socks:
            s.close()
        server.stop()


def frozen_worker(binary, freeze_s=8, duration=12, concurrency=4, timeout=3):
    server = Server(binary, 'freeze.py', '-w', '2', '--timeout', '60')
    results = collections.Counter()
    latencies = []
    lock = threading.Lock()
    stop_at = time.time() + duration

    def side():
        while time.time() < stop_at:
            try:
                status, took = side_request(server.port, timeout=timeout)
                key = str(status)
            except OSError as e:
                key, took = type(e).__name__, timeout
            with lock:
                results[key] += 1
                latencies.append(took)

    def freeze():
        try:
            side_request(server.port, '/freeze?s=%d' % freeze_s, timeout=freeze_s + 30)
        except OSError:
            pass

    try:
        threads = [threading.Thread(target=side) for _ in range(concurrency)]
        for t in threads:
            t.start()
        time.sleep(1)  # the side load runs a second before the freeze
        freezer = threading.Thread(target=freeze)
        freezer.start()
        for t in threads:
            t.join()
        freezer.join()
        latencies.sort()
        ok = results.pop('200', 0)
        return {'ok': ok, 'failed': sum(results.values()), 'failures': dict(results),
                'over_1s': sum(1 for x in latencies if x > 1), 'max_s': round(latencies[-1], 3)}
    finally:
        server.stop()


def fresh_connections(binary, workers):
    server = Server(binary, 'freeze.py', '-w', str(workers), '--log-level', 'warning', workers=workers)
    try:
        url = 'http://127.0.0.1:%d/fast' % server.port
        subprocess.run(['ab', '-q', '-n', '2000', '-c', '16', url], capture_output=True)  # warm-up
        best = 0.0
        for _ in range(3):
            out = subprocess.run(['ab', '-q', '-n', '10000', '-c', '16', url], capture_output=True, text=True).stdout
            m = re.search(r'Requests per second:\s+([\d.]+)', out)
            failed = re.search(r'Failed requests:\s+(\d+)', out)
            if m and failed and failed.group(1) == '0':
                best = max(best, float(m.group(1)))
        return round(best)
    finally:
        server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sharpwsgi', required=True)
    p.add_argument('--before', help='the build to compare with')
    p.add_argument('--out', help='markdown file to write')
    a = p.parse_args()
    builds = [('before', a.before)] if a.before else []
    builds.append(('after', a.sharpwsgi))
    rows = []
    for name, binary in builds:
        print('%s: non-readers...' % name, flush=True)
        nr = non_readers(binary)
        print('  ', nr, flush=True)
        print('%s: frozen worker...' % name, flush=True)
        fw = frozen_worker(binary)
        print('  ', fw, flush=True)
        print('%s: fresh connections...' % name, flush=True)
        fc = {w: fresh_connections(binary, w) for w in (1, 2)}
        print('  ', fc, flush=True)
        rows.append((name, binary, nr, fw, fc))
    lines = ['# Hardening figures (%s)' % time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), '',
             '`bench/hardening.sh`: %s' % ', '.join('%s = `%s`' % (n, b) for n, b, _, _, _ in rows), '',
             '## Non-readers: 16 clients, /stream?mb=100 never read, -w 2, --send-timeout 5', '',
             '| build | spool held at 3 s | at 8 s | at 30 s | slowest side request | drop log lines |',
             '|---|---|---|---|---|---|']
    for name, _, nr, _, _ in rows:
        mb = nr['spool_mb']
        keys = sorted(mb)
        lines.append('| %s | %s MB | %s MB | %s MB | %s ms | %d |' % (
            name, mb[keys[0]], mb[keys[1]], mb[keys[2]], nr['slowest_side_ms'], nr['drop_lines']))
    lines += ['', '## Frozen worker: -w 2, one worker in an 8 s GIL-holding C call, 4 clients on fresh connections '
              'for 12 s (3 s timeout)', '',
              '| build | answered | failed | over 1 s | slowest |', '|---|---|---|---|---|']
    for name, _, _, fw, _ in rows:
        lines.append('| %s | %d | %d %s | %d | %.3f s |' % (name, fw['ok'], fw['failed'],
                                                           fw['failures'] or '', fw['over_1s'], fw['max_s']))
    lines += ['', '## Fresh connections: ab -n 10000 -c 16, no keep-alive, /fast (best of 3 req/s)', '',
              '| build | -w 1 | -w 2 |', '|---|---|---|']
    for name, _, _, _, fc in rows:
        lines.append('| %s | %s | %s |' % (name, format(fc[1], ','), format(fc[2], ',')))
    text = '\n'.join(lines) + '\n'
    print(text)
    if a.out:
        with open(a.out, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    sys.exit(main())
