"""bench/appcost.sh's driver: where a request's instructions go, the app called in process by python itself
against the same app served by a SharpWsgi worker (which is the same python executable, loading _sharpwsgi.so).

For each app (hello, flask, django: the djangopg site on SQLite), with Debian's /usr/bin/python3:
  in-process  callgrind runs bench/lib/inprocess.py twice, with WARMUP + 0 and WARMUP + COUNT requests; the
              difference divided by COUNT is one request, split by the object the instructions ran in.
  served      `sharpwsgi -w 1 --threads 1` whose worker python runs under callgrind (a --python wrapper);
              after WARMUP requests over one keep-alive connection the worker's counters are zeroed
              (callgrind_control -z), COUNT requests are sent, and the counters dumped (callgrind_control -d).
  cpu         the same two sides without valgrind: CPU seconds per request (time.process_time over --cpu-count
              requests in process; the worker's utime + stime from /proc over --cpu-seconds of wrk -c16 served).

The python column is the interpreter's object. Served, it also holds the C API work the server does for the app
(the environ, start_response's arguments), and in process the harness's own (a dict copy, a Python start_response):
hello's app is a few bytecodes, so hello's served-minus-in-process difference is taken as the harnesses' difference
and removed from the other apps. The target: the app's Python served <= 1.03x in process. Everything else served is
the server's own share: _sharpwsgi.so (Kestrel, the gateway), libc and the loader.
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


SERVER_OBJECTS = ('_sharpwsgi.so', '???')  # '???': the NativeAOT image's code, which valgrind maps to no file


def is_python(obj):
    return obj.startswith('python3') or obj.startswith('libpython') or '.cpython-' in obj


def callgrind_objects(path):
    """Self instructions per object file, read from a callgrind output file: {object: Ir}. A cost line after a
    calls= line is a call's inclusive cost, not the caller's own, and is skipped."""
    objects, per_object = {}, {}
    current, in_call = '???', False
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith(('ob=', 'cob=')):
                # "ob=(3) /path" names object 3 (also on cob= lines); "ob=(3)" refers to it later.
                m = re.match(r'c?ob=\((\d+)\)(?: (.*))?', line)
                name = '???'
                if m:
                    if m.group(2) is not None:
                        objects[m.group(1)] = os.path.basename(m.group(2))
                    name = objects.get(m.group(1), '???')
                elif line.split('=', 1)[1].strip():
                    name = os.path.basename(line.split('=', 1)[1].strip())
                if line.startswith('ob='):
                    current = name
            elif line.startswith('calls='):
                in_call = True
            elif line[:1].isdigit() or line[:1] in '+-*':
                parts = line.split()
                cost = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
                if in_call:
                    in_call = False
                else:
                    per_object[current] = per_object.get(current, 0) + cost
    return per_object


def group(per_object):
    """python (the interpreter and its extension modules), sharpwsgi, and the rest; plus each object's count."""
    groups = {'python': 0, 'sharpwsgi': 0, 'other': 0,
              'objects': dict(sorted(per_object.items(), key=lambda kv: -kv[1])[:8])}
    for obj, ir in per_object.items():
        if is_python(obj):
            groups['python'] += ir
        elif obj in SERVER_OBJECTS:
            groups['sharpwsgi'] += ir
        else:
            groups['other'] += ir
    groups['total'] = sum(per_object.values())
    return groups


def per_request(run, count, base=None):
    """A run's counts divided by COUNT (after subtracting a base run's), objects included."""
    out = {}
    for k, v in run.items():
        if k == 'objects':
            out[k] = {o: (ir - (base or {}).get(k, {}).get(o, 0)) / count for o, ir in v.items()}
        else:
            out[k] = (v - (base[k] if base else 0)) / count
    return out


def in_process(app, warmup, count, env, work):
    runs = []
    for n in (0, count):
        out = os.path.join(work, f'inproc-{app}-{n}.out')
        subprocess.run(['valgrind', '--tool=callgrind', f'--callgrind-out-file={out}', PYTHON,
                        os.path.join(REPO, 'bench/lib/inprocess.py'), os.path.join(REPO, APPS[app]),
                        str(warmup), str(n)], env=env, check=True, capture_output=True)
        runs.append(group(callgrind_objects(out)))
    return per_request(runs[1], count, runs[0])


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
    return per_request(group(callgrind_objects(os.path.join(work, dumps[0]))), count)


def served_cpu(binary, app, warmup, seconds, env):
    """The worker's CPU per request under load (wrk -t1 -c16 for SECONDS; one worker, one Python thread)."""
    server = Server(binary, app, PYTHON, env, [])
    try:
        server.get(warmup)
        url = f'http://127.0.0.1:{server.port}/'
        before = server.cpu()
        out = subprocess.run(['wrk', '-t1', '-c16', f'-d{seconds}s', url], capture_output=True, text=True,
                             check=True).stdout
        used = server.cpu() - before
        requests = int(re.search(r'(\d+) requests in', out).group(1))
        return used / requests
    finally:
        server.stop()


def prepare_django(env, work):
    db = os.path.join(work, 'django.sqlite3')
    env['BENCH_SQLITE'] = db
    manage = os.path.join(REPO, 'bench/apps/djangopg/manage.py')
    for command in (['migrate', '--noinput'], ['seed']):
        for_django = subprocess.run([PYTHON, manage, *command], env=env, capture_output=True, text=True)
        if for_django.returncode != 0:
            raise SystemExit(f'appcost.py: manage.py {command[0]} failed:\n{for_django.stderr}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--binary', default=os.path.join(REPO, 'dist/sharpwsgi'))
    ap.add_argument('--apps', default='hello,flask,django')
    ap.add_argument('--warmup', type=int, default=50)
    ap.add_argument('--count', type=int, default=200)
    ap.add_argument('--cpu-count', type=int, default=2000, help='requests of the in-process CPU measurement')
    ap.add_argument('--cpu-seconds', type=int, default=5, help='seconds of wrk load for the served CPU measurement')
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
            cpu_out = served_cpu(args.binary, app, args.warmup, args.cpu_seconds, env)
            rows.append({'app': app, 'in_process': inside, 'served': outside, 'cpu_in_s': cpu_in,
                         'cpu_served_s': cpu_out})
    finally:
        if not os.environ.get('APPCOST_KEEP'):
            shutil.rmtree(work, ignore_errors=True)

    version = subprocess.run([PYTHON, '-c', 'import sys; print(sys.version.split()[0])'], capture_output=True,
                             text=True).stdout.strip()
    # The server's own C API work (environ dict, str objects, start_response's arguments) runs in the python
    # object too; hello's app is a few bytecodes, so hello's served-minus-in-process python is that work.
    hello = next((r for r in rows if r['app'] == 'hello'), None)
    capi = hello['served']['python'] - hello['in_process']['python'] if hello else 0
    lines = [f'# Where a request goes: in process vs served ({args.name})', '',
             f'`bench/appcost.sh`; Debian python3 {version} (/usr/bin/python3, libpython linked in statically) '
             f'on both sides; `{os.path.relpath(args.binary, REPO)} -w 1 --threads 1`; {args.warmup} warm-up '
             f'requests, then {args.count} measured with callgrind (instructions per request, self cost by object) '
             f'and without valgrind, CPU per request: {args.cpu_count} requests in process (time.process_time), '
             f'{args.cpu_seconds} s of `wrk -t1 -c16` served (the worker\'s utime + stime).', '',
             '- *python*: instructions in the interpreter executable: the app, and when served also the C API calls '
             f'the server makes for it (the environ, start_response\'s arguments): {capi / 1e3:,.1f} k per request, '
             'measured as hello served minus hello in process.',
             '- *app served ÷ in process*: python served less that work, against the same app called by python '
             'itself (target ≤ 1.03×).',
             '- *native*: the other objects (libc, the loader, SQLite and other libraries): the app\'s and the '
             'server\'s calls mixed.',
             '- *server*: _sharpwsgi.so (Kestrel, the gateway; valgrind maps part of the NativeAOT image to no '
             'file, counted here too); *server share*: of the served total.', '',
             '| app | python in process | python served | app served ÷ in process | native in process | '
             'native served | server | total in process | total served | server share | CPU µs in process | CPU µs served |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in rows:
        i, s = r['in_process'], r['served']
        app = s['python'] - capi
        lines.append(
            f"| {r['app']} | {i['python'] / 1e3:,.1f} k | {s['python'] / 1e3:,.1f} k | {app / i['python']:.3f}× | "
            f"{i['other'] / 1e3:,.1f} k | {s['other'] / 1e3:,.1f} k | {s['sharpwsgi'] / 1e3:,.1f} k | "
            f"{i['total'] / 1e3:,.1f} k | {s['total'] / 1e3:,.1f} k | {s['sharpwsgi'] / s['total']:.1%} | "
            f"{r['cpu_in_s'] * 1e6:,.0f} | {r['cpu_served_s'] * 1e6:,.0f} |")
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
