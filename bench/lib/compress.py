#!/usr/bin/python3
"""The compression benchmark of issue 19: what on-the-fly compression costs the server, per KB of body, for
sharpwsgi --compress (brotli, gzip) and for nginx's gzip, in one run under the same load. Two bodies: an HTML list
page (about 200 KB, a Django admin change list's shape) and a JSON API list (about 140 KB). Each contender serves
them with and without compression; the cost of compressing is the server CPU per request with it minus without it,
divided by the body's KB. sharpwsgi serves the body from a WSGI app (bench/apps/page.py); nginx (Debian, its own
config in a temp directory) serves the same bytes as a file, `gzip on` (its default level 1, and level 6) or off.

Run it through bench/compress.sh (installs nginx and wrk, builds sharpwsgi, takes the benchmark lock). Only the
Python standard library is used; process stopping, CPU sampling and wrk's report script are the suite's.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, HERE)

import servers as S  # noqa: E402
import suite  # noqa: E402

PYTHON = '/usr/bin/python3'
BODIES = ('html', 'json')
# name: (server kind, Accept-Encoding sent, Content-Encoding expected, baseline contender)
CONTENDERS = {
    'sharpwsgi': ('sharpwsgi', None, None, None),
    'sharpwsgi-gzip': ('sharpwsgi-compress', 'gzip', 'gzip', 'sharpwsgi'),
    'sharpwsgi-br': ('sharpwsgi-compress', 'gzip, deflate, br', 'br', 'sharpwsgi'),
    'nginx': ('nginx', None, None, None),
    'nginx-gzip': ('nginx-gzip1', 'gzip', 'gzip', 'nginx'),
    'nginx-gzip6': ('nginx-gzip6', 'gzip', 'gzip', 'nginx'),
}

NGINX_HTTP = """    types {{ text/html html; application/json json; }}
    sendfile on;
    tcp_nopush on;
{gzip}    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
"""
NGINX_GZIP = """    gzip on;
    gzip_comp_level {level};
    gzip_types application/json;
    gzip_vary on;
"""


def make_bodies(root):
    """Deterministic bodies, written once per run."""
    rnd = random.Random(1)
    rows = ''.join(
        '<tr class="row%d"><td class="action-checkbox"><input type="checkbox" name="_selected_action" value="%d" '
        'class="action-select"></td><th class="field-name"><a href="/admin/shop/item/%d/change/">Item %d</a></th>'
        '<td class="field-price">%d.%02d</td><td class="field-updated nowrap">Dec. %d, 2026, %d:%02d p.m.</td>'
        '</tr>\n' % (i % 2 + 1, rnd.randrange(10 ** 5), rnd.randrange(10 ** 5), rnd.randrange(2 ** 31),
                     rnd.randrange(1000), rnd.randrange(100), rnd.randrange(1, 29), rnd.randrange(1, 13),
                     rnd.randrange(60)) for i in range(700))
    html = ('<!DOCTYPE html><html lang="en"><head><title>Select item to change | Django site admin</title>'
            '<link rel="stylesheet" href="/static/admin/css/base.css"></head><body><div id="content">'
            '<table id="result_list">\n%s</table></div></body></html>\n' % rows).encode()
    items = [{'id': i, 'username': 'user%d' % rnd.randrange(10 ** 6), 'email': 'u%d@example.com' % rnd.randrange(
        10 ** 9), 'is_active': rnd.random() < 0.9, 'score': round(rnd.random() * 100, 3),
        'joined': '2026-%02d-%02dT10:%02d:00Z' % (rnd.randrange(1, 13), rnd.randrange(1, 29), rnd.randrange(60))}
        for i in range(1100)]
    body = json.dumps({'count': len(items), 'results': items}, separators=(',', ':')).encode()
    os.makedirs(root, exist_ok=True)
    sizes = {}
    for name, data in (('html', html), ('json', body)):
        with open(os.path.join(root, 'body.' + name), 'wb') as f:
            f.write(data)
        sizes[name] = len(data)
    return sizes


def argv_for(ctx, kind, port, workdir, body):
    if kind.startswith('sharpwsgi'):
        argv = [ctx.sharpwsgi, '--bind', '127.0.0.1:%d' % port, '--workers', str(ctx.procs), '--log-level',
                'warning', '--python', PYTHON]
        if kind == 'sharpwsgi-compress':
            argv.append('--compress')
        return argv + [os.path.join(BENCH, 'apps', 'page.py')], dict(
            os.environ, COMPRESS_BENCH_BODY=os.path.join(ctx.root, 'body.' + body)), 'TERM'
    level = {'nginx': None, 'nginx-gzip1': 1, 'nginx-gzip6': 6}[kind]
    conf = os.path.join(workdir, 'nginx.conf')
    gzip = NGINX_GZIP.format(level=level) if level else ''
    with open(conf, 'w') as f:
        f.write(S.nginx_conf('compress.py', ctx.procs, workdir, NGINX_HTTP.format(port=port, root=ctx.root,
                                                                                   gzip=gzip)))
    return ['/usr/sbin/nginx', '-p', workdir, '-c', conf, '-e', os.path.join(workdir, 'nginx-start.log')], None, \
        'QUIT'


def target(kind, body):
    return '/body.%s' % body if kind.startswith('nginx') else '/'


def probe(port, path, accept, expected, size):
    """None when the server answers the body with the expected encoding, else why not."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        conn.request('GET', path, headers={'Accept-Encoding': accept} if accept else {})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            return 'status %d' % r.status
        got = r.getheader('Content-Encoding')
        if got != expected:
            return 'Content-Encoding %s, expected %s' % (got, expected)
        if got == 'gzip':
            data = zlib.decompress(data, 31)
        if got != 'br' and len(data) != size:
            return 'got %d bytes of %d' % (len(data), size)
        return None
    finally:
        conn.close()


def start(ctx, name, body, port, workdir):
    kind, accept, expected, _ = CONTENDERS[name]
    argv, env, stop_signal = argv_for(ctx, kind, port, workdir, body)
    log_path = os.path.join(workdir, name + '.log')
    with open(log_path, 'ab') as log:
        proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ctx.start_timeout
    why = 'no answer'
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('%s exited with %s: %s' % (name, proc.returncode, suite.tail(log_path)))
        try:
            why = probe(port, target(kind, body), accept, expected, ctx.sizes[body])
            if why is None:
                return proc, stop_signal
        except (OSError, http.client.HTTPException) as e:
            why = '%s: %s' % (type(e).__name__, e)
        time.sleep(0.01)
    suite.stop(proc, stop_signal)
    raise RuntimeError('%s: wrong answer after %ds (%s): %s' % (name, ctx.start_timeout, why, suite.tail(log_path)))


def wrk(ctx, port, path, accept, seconds):
    argv = ['wrk', '-t%d' % ctx.wrk_threads, '-c%d' % ctx.connections, '-d%ds' % seconds, '--timeout', '5s',
            '--latency', '-s', os.path.join(BENCH, 'wrk', 'report.lua')]
    if accept:
        argv += ['-H', 'Accept-Encoding: ' + accept]
    argv.append('http://127.0.0.1:%d%s' % (port, path))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith('BENCH_JSON '):
            return json.loads(line[len('BENCH_JSON '):])
    raise RuntimeError('wrk printed no result (exit %d): %s %s' % (out.returncode, out.stdout[-500:],
                                                                    out.stderr[-500:]))


def measure(ctx, name, body, round_no, workdir):
    kind, accept, _, _ = CONTENDERS[name]
    port = suite.free_port()
    proc, stop_signal = start(ctx, name, body, port, workdir)
    try:
        if ctx.warmup:
            wrk(ctx, port, target(kind, body), accept, ctx.warmup)
        sampler = suite.Sampler(proc.pid)
        sampler.start()
        s = wrk(ctx, port, target(kind, body), accept, ctx.duration)
        cpu = sampler.finish()
    finally:
        suite.stop(proc, stop_signal)
    secs = s['duration_us'] / 1e6 if s['duration_us'] else 1
    requests = max(1, s['requests'])
    errors = s['connect'] + s['read'] + s['write'] + s['timeout'] + s['status']
    row = {'contender': name, 'body': body, 'round': round_no, 'req_s': s['requests'] / secs,
           'cpu_us_per_req': cpu * 1e6 / requests, 'bytes_per_resp': s['bytes'] / requests,
           'p99_ms': s['p99_us'] / 1000, 'errors': errors}
    print('round %d %-14s %-4s %8.0f req/s %8.1f us CPU/req %9.0f B/resp errors %d' % (
        round_no, name, body, row['req_s'], row['cpu_us_per_req'], row['bytes_per_resp'], errors), flush=True)
    return row


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
            'nginx': deb('nginx'), 'zlib (nginx)': deb('zlib1g'), 'wrk': deb('wrk'),
            'Python': run([PYTHON, '--version']), 'kernel': platform.release(), 'CPUs': str(os.cpu_count())}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sharpwsgi', required=True, help='the sharpwsgi executable to measure')
    p.add_argument('--command', default='bench/compress.sh', help='how the run was started (for the report)')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--duration', type=int, default=10, help='seconds of load per body, contender and round')
    p.add_argument('--warmup', type=int, default=2, help='seconds of unrecorded load before each run')
    p.add_argument('--connections', type=int, default=16)
    p.add_argument('--wrk-threads', type=int, default=1)
    p.add_argument('--procs', type=int, default=1, help='worker processes of every server')
    p.add_argument('--contenders', default=','.join(CONTENDERS))
    p.add_argument('--bodies', default=','.join(BODIES))
    p.add_argument('--start-timeout', type=int, default=30)
    p.add_argument('--quick', action='store_true', help='1 round, 2 s runs, 1 s warm-up (a smoke test)')
    p.add_argument('--out', default=os.path.join(BENCH, 'results'), help='directory of the report')
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.duration, a.warmup = 1, 2, 1
    a.contenders = [c for c in a.contenders.split(',') if c in CONTENDERS]
    a.bodies = [b for b in a.bodies.split(',') if b in BODIES]
    return a


def main(argv):
    ctx = parse_args(argv)
    ctx.load_before = suite.loadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix='sharpwsgi-compress-bench-') as tmp:
        ctx.root = os.path.join(tmp, 'bodies')
        ctx.sizes = make_bodies(ctx.root)
        os.chmod(tmp, 0o755)  # nginx's workers run as www-data when started as root
        for round_no in range(1, ctx.rounds + 1):
            for name in ctx.contenders:
                for body in ctx.bodies:
                    rows.append(measure(ctx, name, body, round_no, tmp))
    ctx.load_after = suite.loadavg()
    write_report(ctx, rows)


def median(rows, name, body, key):
    values = [r[key] for r in rows if r['contender'] == name and r['body'] == body]
    return statistics.median(values) if values else None


def write_report(ctx, rows):
    day = datetime.date.today().isoformat()
    os.makedirs(ctx.out, exist_ok=True)
    base = os.path.join(ctx.out, '%s-compress%s' % (day, '-quick' if ctx.quick else ''))
    with open(base + '.json', 'w') as f:
        json.dump({'command': ctx.command, 'sizes': ctx.sizes, 'rows': rows, 'versions': versions(ctx)}, f,
                  indent=1)
    lines = ['# Compression on the fly: sharpwsgi --compress vs nginx gzip (%s)' % day, '',
             '`%s` — %d round(s) x %d s per body and contender (after %d s warm-up), wrk -t%d -c%d keep-alive, '
             '%d worker process(es) each. Figures are medians over rounds; CPU is the server\'s (all its '
             'processes, user + system) per request.' % (ctx.command, ctx.rounds, ctx.duration, ctx.warmup,
                                                        ctx.wrk_threads, ctx.connections, ctx.procs), '']
    lines += ['Machine load average (1, 5, 15 min) before the run: %s; after: %s. Other work on the machine inflates '
              'every CPU figure alike; the contenders of one run are measured under the same conditions.' % (
                  ctx.load_before, ctx.load_after), '']
    if ctx.duration < 5 or ctx.rounds < 2:
        lines += ['**A smoke run, not a measurement** (too short to compare servers).', '']
    lines += ['| body | contender | req/s | CPU µs/req | bytes/resp | ratio | compression µs/KB | p99 ms | errors |',
              '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for body in ctx.bodies:
        size = ctx.sizes[body]
        for name in ctx.contenders:
            cpu = median(rows, name, body, 'cpu_us_per_req')
            if cpu is None:
                continue
            wire = median(rows, name, body, 'bytes_per_resp')
            base_name = CONTENDERS[name][3]
            base_cpu = median(rows, base_name, body, 'cpu_us_per_req') if base_name else None
            per_kb = '%.2f' % ((cpu - base_cpu) / (size / 1024)) if base_cpu is not None else '—'
            errors = sum(r['errors'] for r in rows if r['contender'] == name and r['body'] == body)
            lines.append('| %s (%d KB) | %s | %.0f | %.1f | %.0f | %.1f%% | %s | %.2f | %d |' % (
                body, size // 1024, name, median(rows, name, body, 'req_s'), cpu, wire, 100.0 * wire / size,
                per_kb, median(rows, name, body, 'p99_ms'), errors))
    lines += ['', '"bytes/resp" is what wrk read per response, head included; "ratio" is that over the body\'s '
              'size. "compression µs/KB" is the CPU per request above the same server without compression '
              '(sharpwsgi without --compress; nginx with gzip off), over the body\'s KB: the price of '
              'compressing one KB on the fly.', '',
              'sharpwsgi: `--compress` (brotli quality 2, window 2^18; gzip is zlib-ng level 2, .NET\'s zlib), the '
              'body from bench/apps/page.py (a one-item list with its Content-Length). nginx: the same bytes as a '
              'file (`sendfile on`), `gzip on; gzip_comp_level 1` (its default) or `6`, `gzip_types '
              'application/json`.', '', '## Versions', '']
    lines += ['- **%s:** %s' % kv for kv in versions(ctx).items()]
    with open(base + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('report: %s.md' % base)


if __name__ == '__main__':
    main(sys.argv[1:])
