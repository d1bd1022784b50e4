"""--interpreters benchmark (issue 11): one worker with N interpreters against N workers and gunicorn gthread.

Every row runs the same pyenv CPython (3.13, else 3.12; --python to choose), the same threads per interpreter or
process (--threads, 4) and the same apps (bench/apps/hello.py and flask_app.py, Flask from Debian's
/usr/lib/python3/dist-packages on the path of every server, its C speedups falling back to pure Python):

  sharpwsgi -w 1 --interpreters N     sharpwsgi -w N     gunicorn gthread -w N  (PYTHONPATH=Debian's dist-packages)

wrk (keep-alive, -c CONNECTIONS) measures throughput after a warm-up; peak RSS is summed over the server's process
tree (sampled every 100 ms from /proc). Targets: throughput >= 0.95x `-w N`, RSS <= 0.6x `-w N` and <= gunicorn's.
Prints a Markdown table and writes bench/results/<date>-interpreters.md and .json.
"""
import argparse
import datetime
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(BENCH, 'apps')
DEBIAN = '/usr/lib/python3/dist-packages'
PAGE = os.sysconf('SC_PAGE_SIZE')


def pyenv_python():
    root = os.environ.get('PYENV_ROOT') or os.path.expanduser('~/.pyenv')
    for minor in (13, 12):
        found = sorted(glob.glob(os.path.join(root, 'versions', '3.%d.*' % minor)),
                       key=lambda d: int(d.rsplit('.', 1)[1]) if d.rsplit('.', 1)[1].isdigit() else -1)
        for d in reversed(found):
            exe = os.path.join(d, 'bin', 'python3.%d' % minor)
            if os.path.exists(exe):
                return exe
    return None


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tree(pid):
    """pids of pid and its descendants."""
    children = {}
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.split('/')[2]))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss(pids):
    total = 0
    for p in pids:
        try:
            with open('/proc/%d/statm' % p) as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ValueError):
            pass
    return total


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.1):
            self.peak = max(self.peak, rss(tree(self.pid)))


def servers(args):
    n, t, py = args.procs, args.threads, args.python
    sharp = [args.sharpwsgi, '--log-level', 'warning', '--threads', str(t), '--pythonpath', DEBIAN,
             '--python', py, '--chdir', APPS]
    return [
        ('sharpwsgi -w 1 --interpreters %d' % n, lambda app, port: (
            sharp + ['--bind', '127.0.0.1:%d' % port, '-w', '1', '--interpreters', str(n), app + '.py'], {})),
        ('sharpwsgi -w %d' % n, lambda app, port: (
            sharp + ['--bind', '127.0.0.1:%d' % port, '-w', str(n), app + '.py'], {})),
        ('gunicorn gthread -w %d' % n, lambda app, port: (
            [py, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port, '--workers', str(n), '--worker-class',
             'gthread', '--threads', str(t), '--log-level', 'warning', '--chdir', APPS, app + ':application'],
            {'PYTHONPATH': DEBIAN})),
    ]


def wait_ready(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('server exited with %s' % proc.returncode)
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError('server not ready within %ss' % timeout)


def wrk(port, seconds, connections):
    out = subprocess.run(['wrk', '-t2', '-c%d' % connections, '-d%ds' % seconds, 'http://127.0.0.1:%d/' % port],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    return float(m.group(1)), int(errors.group(1)) if errors else 0


def measure(label, launch, app, args):
    port = free_port()
    argv, extra_env = launch(app, port)
    env = dict(os.environ, **extra_env)
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        wrk(port, args.warmup, args.connections)
        sampler = Sampler(proc.pid)
        sampler.start()
        req_s, errors = wrk(port, args.duration, args.connections)
        sampler.stop.set()
        sampler.join()
        return {'server': label, 'app': app, 'req_s': req_s, 'non_2xx': errors, 'peak_rss_bytes': sampler.peak}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sharpwsgi', required=True)
    ap.add_argument('--python', default=pyenv_python(), help='a CPython 3.12+ (default: pyenv 3.13, else 3.12)')
    ap.add_argument('--procs', type=int, default=2, help='interpreters, workers (default 2)')
    ap.add_argument('--threads', type=int, default=4)
    ap.add_argument('--connections', type=int, default=64)
    ap.add_argument('--duration', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--apps', default='hello,flask_app')
    ap.add_argument('--quick', action='store_true', help='2 s runs, 1 s warm-up (a smoke test)')
    ap.add_argument('--command', default='bench/interpreters.sh')
    ap.add_argument('--out', default=os.path.join(BENCH, 'results'))
    args = ap.parse_args()
    if args.quick:
        args.duration, args.warmup = 2, 1
    if not args.python:
        sys.exit('no pyenv CPython 3.12 or 3.13 found; pass --python')
    version = subprocess.run([args.python, '-c', 'import platform; print(platform.python_version())'],
                             capture_output=True, text=True, check=True).stdout.strip()
    results = []
    for app in args.apps.split(','):
        for label, launch in servers(args):
            r = measure(label, launch, app, args)
            results.append(r)
            print('%-10s %-34s %9.0f req/s  rss %6.1f MB%s' % (
                app, label, r['req_s'], r['peak_rss_bytes'] / 2**20,
                '  (%d non-2xx)' % r['non_2xx'] if r['non_2xx'] else ''), flush=True)

    lines = ['# --interpreters benchmark, %s' % datetime.date.today().isoformat(), '',
             'Command: `%s`. Python %s (%s), %d threads each, wrk -c%d, %d s after a %d s warm-up, %d CPUs.' % (
                 args.command, version, args.python, args.threads, args.connections, args.duration, args.warmup,
                 os.cpu_count()),
             'Load average at the end: %.1f (a busy machine makes req/s noisy; RSS much less so).' % os.getloadavg()[0],
             '',
             '| app | server | req/s | peak RSS (MB) | req/s vs -w %d | RSS vs -w %d | RSS vs gunicorn |' % (
                 args.procs, args.procs),
             '| --- | --- | ---: | ---: | ---: | ---: | ---: |']
    for app in args.apps.split(','):
        rows = [r for r in results if r['app'] == app]
        workers = rows[1]
        gunicorn = rows[2]
        for r in rows:
            lines.append('| %s | %s | %.0f | %.1f | %.2fx | %.2fx | %.2fx |' % (
                app, r['server'], r['req_s'], r['peak_rss_bytes'] / 2**20, r['req_s'] / workers['req_s'],
                r['peak_rss_bytes'] / workers['peak_rss_bytes'], r['peak_rss_bytes'] / gunicorn['peak_rss_bytes']))
    lines += ['', 'Targets for the first row: req/s >= 0.95x `-w %d`; RSS <= 0.6x `-w %d` and <= gunicorn\'s.' % (
        args.procs, args.procs)]
    text = '\n'.join(lines) + '\n'
    print()
    print(text)
    if not args.quick:
        os.makedirs(args.out, exist_ok=True)
        stem = os.path.join(args.out, '%s-interpreters' % datetime.date.today().isoformat())
        with open(stem + '.md', 'w') as f:
            f.write(text)
        with open(stem + '.json', 'w') as f:
            json.dump({'python': version, 'results': results, 'args': vars(args)}, f, indent=1)
        print('wrote %s.md and .json' % stem)


if __name__ == '__main__':
    main()
