"""bench/appcost.sh's driver: where a request's instructions go, the app called in process by python itself
against the same app served by a SharpWsgi worker (which is the same python executable, loading _sharpwsgi.so).

For each app (hello, flask, django: the djangopg site on SQLite), with Debian's /usr/bin/python3:
  in-process  callgrind runs bench/lib/inprocess.py twice, with WARMUP + 0 and WARMUP + COUNT requests; the
              difference divided by COUNT is one request, split by the object the instructions ran in.
  served      `sharpwsgi -w 1 --threads 1` whose worker python runs under callgrind (a --python wrapper);
              after WARMUP requests over one keep-alive connection the worker's counters are zeroed
              (callgrind_control -z), COUNT requests are sent, and the counters dumped (callgrind_control -d).
  cpu         the same two sides without valgrind: CPU seconds per request (time.process_time in process; the
              worker's utime + stime from /proc over the COUNT requests when served).

The python column is the interpreter's object (the app's Python, and the C API calls the server makes); the
target is served python <= 1.03x in-process python. Everything else in the served column is the server's own
share: _sharpwsgi.so (Kestrel, the gateway), libc and the kernel's vDSO.
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = {
    'hello': 'bench/apps/hello.py',
    'flask': 'bench/apps/flask_app.py',
    'django': 'bench/apps/djangopg_app.py',
}
PYTHON = '/usr/bin/python3'
LISTENING = re.compile(r'Listening at: http://127\.0\.0\.1:(\d+)')
WORKER = re.compile(r'Started worker \(pid: (\d+)\)')


def callgrind_objects(path):
    """Self instructions per object file from a callgrind output file: {object: Ir}."""
    out = subprocess.run(['callgrind_annotate', '--inclusive=no', '--threshold=100', path],
                         capture_output=True, text=True, check=True).stdout
    per_object = {}
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\S.*\[(.+)\]\s*$', line)
        if m:
            obj = os.path.basename(m.group(2))
            per_object[obj] = per_object.get(obj, 0) + int(m.group(1).replace(',', ''))
    return per_object


def group(per_object):
    """python (the interpreter and its extension modules), sharpwsgi, and the rest."""
    groups = {'python': 0, 'sharpwsgi': 0, 'other': 0}
    for obj, ir in per_object.items():
        if obj.startswith('python3') or obj.startswith('libpython') or '.cpython-' in obj:
            groups['python'] += ir
        elif obj == '_sharpwsgi.so':
            groups['sharpwsgi'] += ir
        else:
            groups['other'] += ir
    groups['total'] = sum(per_object.values())
    return groups


def in_process(app, warmup, count, env, work):
    runs = []
    for n in (0, count):
        out = os.path.join(work, f'inproc-{app}-{n}.out')
        subprocess.run(['valgrind', '--tool=callgrind', f'--callgrind-out-file={out}', PYTHON,
                        os.path.join(REPO, 'bench/lib/inprocess.py'), os.path.join(REPO, APPS[app]),
                        str(warmup), str(n)], env=env, check=True, capture_output=True)
        runs.append(group(callgrind_objects(out)))
    return {k: (runs[1][k] - runs[0][k]) / count for k in runs[0]}


def in_process_cpu(app, warmup, count, env):
    out = subprocess.run([PYTHON, os.path.join(REPO, 'bench/lib/inprocess.py'), os.path.join(REPO, APPS[app]),
                          str(warmup), str(count)], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])['cpu_s'] / count


class Server:
    def __init__(self, binary, app, python, env, extra):
        self.log = tempfile.TemporaryFile(mode='w+')
        args = [binary, '-w', '1', '--threads', '1', '--timeout', '0', '--python', python,
                '-b', '127.0.0.1:0', *extra, os.path.join(REPO, APPS[app])]
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 600
        self.port = self.worker = None
        while self.port is None:
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit('appcost.py: the server did not start:\n' + self.output())
            text = self.output()
            m, w = LISTENING.search(text), WORKER.search(text)
            if m and w:
                self.port, self.worker = int(m.group(1)), int(w.group(1))
            else:
                time.sleep(0.2)  # polling a log file for the start-up line (not a test: nothing to wait on)
        self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=600)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def get(self, n):
        for _ in range(n):
            self.conn.request('GET', '/', headers={'User-Agent': 'appcost', 'Accept': '*/*'})
            r = self.conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f'appcost.py: status {r.status}')

    def cpu(self):
        with open(f'/proc/{self.worker}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def served(binary, app, warmup, count, env, work):
    out = os.path.join(work, f'served-{app}.%p.out')
    wrapper = os.path.join(work, 'python-under-callgrind')
    with open(wrapper, 'w') as f:
        f.write(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {PYTHON} "$@"\n')
    os.chmod(wrapper, 0o755)
    server = Server(binary, app, wrapper, env, [])
    try:
        server.get(warmup)
        subprocess.run(['callgrind_control', '-z', str(server.worker)], check=True, capture_output=True)
        server.get(count)
        subprocess.run(['callgrind_control', '-d', str(server.worker)], check=True, capture_output=True)
    finally:
        server.stop()
    dumps = sorted(p for p in os.listdir(work) if p.startswith(f'served-{app}.') and '.out.' in p)
    if not dumps:
        raise SystemExit(f'appcost.py: no callgrind dump for {app} in {work}: {os.listdir(work)}')
    return {k: v / count for k, v in group(callgrind_objects(os.path.join(work, dumps[0]))).items()}


def served_cpu(binary, app, warmup, count, env):
    server = Server(binary, app, PYTHON, env, [])
    try:
        server.get(warmup)
        before = server.cpu()
        server.get(count)
        return (server.cpu() - before) / count
    finally:
        server.stop()


def prepare_django(env, work):
    db = os.path.join(work, 'django.sqlite3')
    env['BENCH_SQLITE'] = db
    manage = os.path.join(REPO, 'bench/apps/djangopg/manage.py')
    for command in (['migrate', '--noinput'], ['seed']):
        subprocess.run([PYTHON, manage, *command], env=env, check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--binary', default=os.path.join(REPO, 'dist/sharpwsgi'))
    ap.add_argument('--apps', default='hello,flask,django')
    ap.add_argument('--warmup', type=int, default=50)
    ap.add_argument('--count', type=int, default=200)
    ap.add_argument('--cpu-count', type=int, default=2000, help='requests per CPU measurement (no valgrind)')
    ap.add_argument('--name', default=datetime.date.today().isoformat() + '-appcost')
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix='sharpwsgi-appcost-')
    env = dict(os.environ)
    rows = []
    try:
        prepare_django(env, work)
        for app in args.apps.split(','):
            print(f'appcost: {app} in process (callgrind)', flush=True)
            inside = in_process(app, args.warmup, args.count, env, work)
            print(f'appcost: {app} served (callgrind)', flush=True)
            outside = served(args.binary, app, args.warmup, args.count, env, work)
            print(f'appcost: {app} CPU per request, both sides', flush=True)
            cpu_in = in_process_cpu(app, args.warmup, args.cpu_count, env)
            cpu_out = served_cpu(args.binary, app, args.warmup, args.cpu_count, env)
            rows.append({'app': app, 'in_process': inside, 'served': outside, 'cpu_in_s': cpu_in,
                         'cpu_served_s': cpu_out})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    version = subprocess.run([PYTHON, '-c', 'import sys; print(sys.version.split()[0])'], capture_output=True,
                             text=True).stdout.strip()
    lines = [f'# Where a request goes: in process vs served ({args.name})', '',
             f'`bench/appcost.sh`; Debian python3 {version} (/usr/bin/python3, libpython linked in statically) '
             f'on both sides; {args.binary} -w 1 --threads 1; {args.warmup} warm-up requests, then {args.count} '
             'measured (callgrind, instructions per request) and '
             f'{args.cpu_count} (CPU, no valgrind). The python column is the interpreter executable\'s own '
             'instructions (the app, and the C API calls the server makes); the server\'s share is the rest.', '',
             '| app | in process: python | served: python | python ÷ in process | served: _sharpwsgi.so | '
             'served: other | served total | server share | CPU µs in process | CPU µs served |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in rows:
        i, s = r['in_process'], r['served']
        share = s['total'] - s['python']
        lines.append(
            f"| {r['app']} | {i['python'] / 1e3:,.0f} k | {s['python'] / 1e3:,.0f} k | "
            f"{s['python'] / i['python']:.3f}× | {s['sharpwsgi'] / 1e3:,.0f} k | {s['other'] / 1e3:,.0f} k | "
            f"{s['total'] / 1e3:,.0f} k | {share / s['total']:.0%} | {r['cpu_in_s'] * 1e6:,.0f} | "
            f"{r['cpu_served_s'] * 1e6:,.0f} |")
    report = '\n'.join(lines) + '\n'
    os.makedirs(os.path.join(REPO, 'bench/results'), exist_ok=True)
    path = os.path.join(REPO, 'bench/results', args.name + '.md')
    with open(path, 'w') as f:
        f.write(report)
    with open(path[:-3] + '.json', 'w') as f:
        json.dump(rows, f, indent=1)
    print(report)
    print(f'appcost: wrote {path}')


if __name__ == '__main__':
    main()
