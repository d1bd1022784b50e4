#!/usr/bin/python3
"""The static-file benchmark of issue 9: a 10 KB and a 1 MB file over keep-alive HTTP/1.1 (wrk -c64) from
sharpwsgi --static, from nginx (Debian; sendfile on, its own config in a temp directory) and from whitenoise
(Debian python3-whitenoise) on gunicorn gthread. Targets: sharpwsgi >= 0.8x nginx and >= 5x whitenoise, per file.

Run it through bench/static.sh (installs the peers, builds sharpwsgi, takes the benchmark lock).
Only the Python standard library is used; process stopping and wrk's report script are the suite's.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, HERE)

import servers as S  # noqa: E402
import suite  # noqa: E402

PYTHON = '/usr/bin/python3'
FILES = {'10k': 10 * 1024, '1m': 1024 * 1024}
TARGETS = {'nginx': 0.8, 'whitenoise': 5.0}  # sharpwsgi / peer, req/s

NGINX_HTTP = """    # Debian's nginx.conf defaults for files: sendfile with full packets
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{
            alias {root}/;
            expires 60s;
        }}
    }}
"""


class Server:
    def __init__(self, name, argv, env=None, stop_signal='TERM', cwd=None):
        self.name, self.argv, self.env, self.stop_signal, self.cwd = name, argv, env, stop_signal, cwd


def make_server(ctx, name, port, workdir):
    """The three contenders at equal processes: sharpwsgi workers, nginx workers, gunicorn workers."""
    sharp = Server('sharpwsgi', [ctx.sharpwsgi, '--bind', '127.0.0.1:%d' % port, '--workers', str(ctx.procs),
                                 '--log-level', 'warning', '--python', PYTHON, '--static', '/static/=' + ctx.root,
                                 os.path.join(BENCH, 'apps', 'hello.py')])
    # The same with the body copied through Kestrel (what TLS and HTTP/2 get): the gain of sendfile(2).
    copy = Server('sharpwsgi-copy', sharp.argv[:-1] + ['--no-sendfile', sharp.argv[-1]])
    conf = os.path.join(workdir, 'nginx.conf')
    with open(conf, 'w') as f:
        f.write(S.nginx_conf('static.py', ctx.procs, workdir, NGINX_HTTP.format(port=port, root=ctx.root)))
    nginx = Server('nginx', ['/usr/sbin/nginx', '-p', workdir, '-c', conf, '-e',
                             os.path.join(workdir, 'nginx-start.log')], stop_signal='QUIT')
    env = dict(os.environ, STATIC_BENCH_ROOT=ctx.root)
    white = Server('whitenoise', [PYTHON, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port,
                                  '--workers', str(ctx.procs), '--worker-class', 'gthread',
                                  '--threads', str(ctx.threads), '--log-level', 'warning',
                                  '--chdir', os.path.join(BENCH, 'apps'), 'whitenoise_app:application'], env=env)
    return {'sharpwsgi': sharp, 'sharpwsgi-copy': copy, 'nginx': nginx, 'whitenoise': white}[name]


def make_files(root):
    """Incompressible bytes (no server may win by compressing), written once per run."""
    os.makedirs(root, exist_ok=True)
    for name, size in FILES.items():
        with open(os.path.join(root, 'file-%s.bin' % name), 'wb') as f:
            f.write(os.urandom(size))


def probe(port, name):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        conn.request('GET', '/static/file-%s.bin' % name)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return 'status %d' % r.status
        return None if len(body) == FILES[name] else 'got %d bytes' % len(body)
    finally:
        conn.close()


def start(ctx, server, port, workdir):
    log_path = os.path.join(workdir, server.name + '.log')
    with open(log_path, 'ab') as log:
        proc = subprocess.Popen(server.argv, cwd=server.cwd or workdir, env=server.env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ctx.start_timeout
    why = 'no answer'
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('%s exited with %s: %s' % (server.name, proc.returncode, suite.tail(log_path)))
        try:
            why = probe(port, '10k')
            if why is None:
                return proc
        except (OSError, http.client.HTTPException) as e:
            why = '%s: %s' % (type(e).__name__, e)
        time.sleep(0.01)
    suite.stop(proc, server.stop_signal)
    raise RuntimeError('%s: wrong answer after %ds (%s): %s' % (server.name, ctx.start_timeout, why,
                                                                suite.tail(log_path)))


def wrk(ctx, port, name, seconds):
    argv = ['wrk', '-t%d' % ctx.wrk_threads, '-c%d' % ctx.connections, '-d%ds' % seconds, '--timeout', '5s',
            '--latency', '-s', os.path.join(BENCH, 'wrk', 'report.lua'),
            'http://127.0.0.1:%d/static/file-%s.bin' % (port, name)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith('BENCH_JSON '):
            s = json.loads(line[len('BENCH_JSON '):])
            secs = s['duration_us'] / 1e6 if s['duration_us'] else 1
            return {'req_s': s['requests'] / secs, 'mb_s': s['bytes'] / secs / 1e6,
                    'p50_ms': s['p50_us'] / 1000, 'p99_ms': s['p99_us'] / 1000,
                    'errors': s['connect'] + s['read'] + s['write'] + s['timeout'] + s['status']}
    raise RuntimeError('wrk printed no result (exit %d): %s %s' % (out.returncode, out.stdout[-500:],
                                                                    out.stderr[-500:]))


def versions(ctx):
    def run(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired) as e:
            return 'unavailable (%s)' % e

    def deb(package):
        v = run(['dpkg-query', '-W', '-f=${Version}', package])
        return v if v and 'no packages found' not in v else 'not installed'

    return {'SharpWsgi': run([ctx.sharpwsgi, '--version']) + ' (commit %s)' % run(
                ['git', '-C', REPO, 'rev-parse', '--short', 'HEAD']),
            'nginx': deb('nginx'), 'gunicorn': deb('gunicorn'), 'whitenoise': deb('python3-whitenoise'),
            'wrk': deb('wrk'), 'Python': run([PYTHON, '--version']), 'kernel': platform.release(),
            'CPUs': str(os.cpu_count())}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sharpwsgi', required=True, help='the sharpwsgi executable to measure')
    p.add_argument('--command', default='bench/static.sh', help='how the run was started (for the report)')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--duration', type=int, default=10, help='seconds of load per file, server and round')
    p.add_argument('--warmup', type=int, default=2, help='seconds of unrecorded load before each run')
    p.add_argument('--connections', type=int, default=64)
    p.add_argument('--wrk-threads', type=int, default=2)
    p.add_argument('--procs', type=int, default=2, help='worker processes of every server')
    p.add_argument('--threads', type=int, default=4, help="gunicorn gthread's threads per worker")
    p.add_argument('--servers', default='sharpwsgi,nginx,whitenoise',
                   help='comma-separated; sharpwsgi-copy is sharpwsgi with --no-sendfile')
    p.add_argument('--files', default='10k,1m')
    p.add_argument('--start-timeout', type=int, default=30)
    p.add_argument('--quick', action='store_true', help='1 round, 2 s runs, 1 s warm-up (a smoke test)')
    p.add_argument('--out', default=os.path.join(BENCH, 'results'), help='directory of the report')
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.duration, a.warmup = 1, 2, 1
    a.servers = a.servers.split(',')
    a.files = [f for f in a.files.split(',') if f in FILES]
    return a


def main(argv):
    ctx = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix='sharpwsgi-static-bench-') as tmp:
        ctx.root = os.path.join(tmp, 'static')
        make_files(ctx.root)
        os.chmod(tmp, 0o755)  # nginx's workers run as www-data when started as root
        for round_no in range(1, ctx.rounds + 1):
            for server_name in ctx.servers:
                port = suite.free_port()
                server = make_server(ctx, server_name, port, tmp)
                proc = start(ctx, server, port, tmp)
                try:
                    for name in ctx.files:
                        if ctx.warmup:
                            wrk(ctx, port, name, ctx.warmup)
                        r = wrk(ctx, port, name, ctx.duration)
                        r.update(server=server.name, file=name, round=round_no)
                        rows.append(r)
                        print('round %d %-10s %-3s %9.0f req/s %8.1f MB/s p99 %.2f ms errors %d' % (
                            round_no, server.name, name, r['req_s'], r['mb_s'], r['p99_ms'], r['errors']),
                            flush=True)
                finally:
                    suite.stop(proc, server.stop_signal)
    write_report(ctx, rows)


def median(rows, server, name, key='req_s'):
    values = [r[key] for r in rows if r['server'] == server and r['file'] == name]
    return statistics.median(values) if values else None


def write_report(ctx, rows):
    day = datetime.date.today().isoformat()
    os.makedirs(ctx.out, exist_ok=True)
    base = os.path.join(ctx.out, '%s-static%s' % (day, '-quick' if ctx.quick else ''))
    with open(base + '.json', 'w') as f:
        json.dump({'command': ctx.command, 'rows': rows, 'versions': versions(ctx)}, f, indent=1)
    lines = ['# Static files: sharpwsgi --static vs nginx vs whitenoise on gunicorn (%s)' % day, '',
             '`%s` — %d round(s) x %d s per file and server (after %d s warm-up), wrk -t%d -c%d keep-alive, '
             '%d worker process(es) each (gunicorn gthread x %d threads). Figures are medians over rounds.' % (
                 ctx.command, ctx.rounds, ctx.duration, ctx.warmup, ctx.wrk_threads, ctx.connections, ctx.procs,
                 ctx.threads), '']
    if ctx.duration < 5 or ctx.rounds < 2:
        lines += ['**A smoke run, not a measurement** (too short to compare servers).', '']
    lines += ['| file | server | req/s | MB/s | p50 ms | p99 ms | errors |', '|---|---|---:|---:|---:|---:|---:|']
    for name in ctx.files:
        for server in ctx.servers:
            if median(rows, server, name) is None:
                continue
            errors = sum(r['errors'] for r in rows if r['server'] == server and r['file'] == name)
            lines.append('| %s | %s | %.0f | %.1f | %.2f | %.2f | %d |' % (
                name, server, median(rows, server, name), median(rows, server, name, 'mb_s'),
                median(rows, server, name, 'p50_ms'), median(rows, server, name, 'p99_ms'), errors))
    lines += ['', '## Targets (issue 9)', '', '| file | sharpwsgi / nginx (target ≥ %.1f) | '
              'sharpwsgi / whitenoise (target ≥ %.0f) |' % (TARGETS['nginx'], TARGETS['whitenoise']),
              '|---|---:|---:|']
    for name in ctx.files:
        cells = []
        for peer in ('nginx', 'whitenoise'):
            ours, theirs = median(rows, 'sharpwsgi', name), median(rows, peer, name)
            if ours is None or not theirs:
                cells.append('not run')
            else:
                ratio = ours / theirs
                cells.append('%.2fx %s' % (ratio, 'met' if ratio >= TARGETS[peer] else '**missed**'))
        lines.append('| %s | %s | %s |' % (name, cells[0], cells[1]))
    lines += ['', '## Versions', ''] + ['- **%s:** %s' % kv for kv in versions(ctx).items()]
    lines += ['', 'nginx: `sendfile on; tcp_nopush on;` (Debian defaults), `alias` on /static/, no open_file_cache. '
              'whitenoise: `WhiteNoise(app, root=..., prefix="static/", autorefresh=False)`, files via '
              "gunicorn's sendfile file_wrapper. sharpwsgi: `--static /static/=DIR` in front of bench/apps/hello.py.",
              '']
    with open(base + '.md', 'w') as f:
        f.write('\n'.join(lines))
    print('report: %s.md' % base)


if __name__ == '__main__':
    main(sys.argv[1:])
