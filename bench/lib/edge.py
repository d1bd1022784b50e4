#!/usr/bin/python3
"""The edge benchmark of issue 8: TLS and HTTP/2.

TLS run: hello and flask over HTTPS (keep-alive, TLS 1.3) with wrk against SharpWsgi alone, nginx (TLS) in front
of gunicorn gthread, and nginx (TLS) in front of uWSGI, at equal Python processes and threads.
HTTP/2 run: h2load against SharpWsgi (hello): h2 over TLS, h2c prior knowledge, and HTTP/1.1 (h2load --h1) over
TLS and cleartext at the same number of concurrent requests.

Run it through bench/edge.sh (installs the tools, builds sharpwsgi, takes the benchmark lock).
Only the Python standard library is used; process handling and /proc sampling are suite.py's.
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import ssl
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

TLS_APPS = ('hello', 'flask')
H2_APP = 'hello'
# Issue 8's targets: SharpWsgi alone / nginx + gunicorn over TLS, per app; h2 / h1 of SharpWsgi.
TLS_TARGETS = {'hello': 2.0, 'flask': 1.3}
H2_TARGET = 0.8


# ---------------------------------------------------------------- certificate

def make_certificate(tmp):
    """A throwaway self-signed EC P-256 certificate for 127.0.0.1, shared by every server of the run.
    P-256 is what most TLS sites deploy next to RSA and the cheapest handshake of the two; with keep-alive the
    handshake is a small part of the run anyway."""
    cert, key = os.path.join(tmp, 'cert.pem'), os.path.join(tmp, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', key, '-out', cert], check=True, capture_output=True)
    os.chmod(key, 0o644)  # nginx reads it as root, but keep it simple for non-root runs too
    return cert, key


# ---------------------------------------------------------------- how each stack is started

NGINX_HTTP = """{upstream}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        # the same policy as SharpWsgi's default: ECDHE with AES-GCM or ChaCha20 (TLS 1.3 has its own three)
        ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;
        ssl_session_cache shared:SSL:10m;
        location / {{
{location}
        }}
    }}
"""

GUNICORN_UPSTREAM = """    upstream gunicorn {{
        server {server};
        keepalive 32;                # idle connections to gunicorn kept per nginx worker
        keepalive_requests 1000000;
    }}"""
GUNICORN_LOCATION = """            proxy_pass http://gunicorn;
            proxy_http_version 1.1;      # needed for upstream keep-alive
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;"""
UWSGI_LOCATION = """            include /etc/nginx/uwsgi_params;
            uwsgi_pass unix:{socket};"""


class Proc:
    """One process of a stack: argv, files to write first, the signal that stops it, and how to know it is up."""

    def __init__(self, name, argv, files=None, stop_signal='TERM', ready_socket=None):
        self.name = name
        self.argv = argv
        self.files = files or {}
        self.stop_signal = stop_signal
        self.ready_socket = ready_socket  # unix socket path or ('127.0.0.1', port) the process listens on


def _sharpwsgi_argv(ctx, app, port, tls):
    argv = [ctx.sharpwsgi, '--bind', '127.0.0.1:%d' % port, '--workers', str(ctx.procs),
            '--threads', str(ctx.threads), '--python', S.PYTHON, '--log-level', 'warning']
    if tls:
        argv += ['--certfile', ctx.cert, '--keyfile', ctx.key]
    return argv + [os.path.join(ctx.apps_dir, S.APP_MODULE[app] + '.py')]


def _nginx(ctx, port, workdir, upstream, location):
    conf = S.nginx_conf('edge.py', ctx.nginx_workers, workdir, NGINX_HTTP.format(
        port=port, cert=ctx.cert, key=ctx.key, upstream=upstream, location=location))
    path = os.path.join(workdir, 'nginx.conf')
    # -e: the start-up error log too, so nginx never touches /var/log/nginx
    return Proc('nginx', [ctx.nginx, '-p', workdir, '-c', path, '-e', os.path.join(workdir, 'nginx-start.log')],
                files={path: conf}, ready_socket=('127.0.0.1', port))


def stack_sharpwsgi(ctx, app, port, workdir):
    return [Proc('sharpwsgi', _sharpwsgi_argv(ctx, app, port, tls=True), ready_socket=('127.0.0.1', port))]


def stack_gunicorn(ctx, app, port, workdir):
    if ctx.gunicorn_upstream == 'unix':
        sock = os.path.join(workdir, 'gunicorn.sock')
        bind, server, ready = 'unix:' + sock, 'unix:' + sock, sock
    else:
        bport = suite.free_port()
        bind = server = '127.0.0.1:%d' % bport
        ready = ('127.0.0.1', bport)
    gunicorn = Proc('gunicorn', [S.PYTHON, '-m', 'gunicorn', '--bind', bind, '--workers', str(ctx.procs),
                                 '--worker-class', 'gthread', '--threads', str(ctx.threads),
                                 '--log-level', 'warning', '--chdir', ctx.apps_dir,
                                 '%s:application' % S.APP_MODULE[app]], ready_socket=ready)
    return [gunicorn, _nginx(ctx, port, workdir, GUNICORN_UPSTREAM.format(server=server), GUNICORN_LOCATION)]


def stack_uwsgi(ctx, app, port, workdir):
    sock = os.path.join(workdir, 'uwsgi.sock')
    uwsgi = Proc('uwsgi', ['uwsgi', '--plugin', 'python3', '--uwsgi-socket', sock, '--chmod-socket=666', '--master',
                           '--processes', str(ctx.procs), '--threads', str(ctx.threads), '--chdir', ctx.apps_dir,
                           '--wsgi-file', os.path.join(ctx.apps_dir, S.APP_MODULE[app] + '.py'), '--need-app',
                           '--die-on-term', '--disable-logging', '--listen', '1024',
                           '--pidfile', os.path.join(workdir, 'uwsgi.pid')],
                 stop_signal='INT', ready_socket=sock)
    return [uwsgi, _nginx(ctx, port, workdir, '', UWSGI_LOCATION.format(socket=sock))]


TLS_SERVERS = (
    ('sharpwsgi', 'SharpWsgi (TLS)', stack_sharpwsgi),
    ('nginx-gunicorn', 'nginx (TLS) + gunicorn gthread', stack_gunicorn),
    ('nginx-uwsgi', 'nginx (TLS) + uWSGI', stack_uwsgi),
)


def tls_shapes(ctx):
    pt = '%d procs x %d threads' % (ctx.procs, ctx.threads)
    up = 'a unix socket' if ctx.gunicorn_upstream == 'unix' else '127.0.0.1 TCP'
    return {
        'sharpwsgi': 'sharpwsgi %s, --certfile/--keyfile, TLS defaults' % pt,
        'nginx-gunicorn': 'nginx %s worker(s), TLS 1.2/1.3; proxy_pass over %s with upstream keepalive 32 '
                          '(HTTP/1.1) to gunicorn gthread %s' % (ctx.nginx_workers, up, pt),
        'nginx-uwsgi': 'nginx %s worker(s), TLS 1.2/1.3; uwsgi_pass over a unix socket (uwsgi protocol, one '
                       'connection per request) to uWSGI %s' % (ctx.nginx_workers, pt),
    }


# ---------------------------------------------------------------- start, check, stop

def _connectable(target):
    import socket
    fam = socket.AF_UNIX if isinstance(target, str) else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(target)
        return True
    except OSError:
        return False
    finally:
        s.close()


def probe(ctx, app, port, tls):
    """One GET like the load's: None and the TLS details if the answer is right, else why not."""
    if tls:
        conn = http.client.HTTPSConnection('127.0.0.1', port, timeout=5, context=ctx.client_ssl)
    else:
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        conn.request('GET', '/')
        r = conn.getresponse()
        body = r.read()
        info = {}
        if tls and conn.sock is not None:
            info = {'version': conn.sock.version(), 'cipher': conn.sock.cipher()[0]}
        if r.status != 200:
            return 'status %d' % r.status, info
        return S.check_body(app, body), info
    finally:
        conn.close()


class Running:
    def __init__(self):
        self.procs = []  # (Proc, Popen)
        self.logs = []


def start_stack(ctx, stack, app, port, workdir, tls=True):
    """Starts the stack's processes in order, each in its own session, waiting for each one's socket; then
    polls the front with the app's request until it answers right. Returns (running, startup_ms, error)."""
    run = Running()
    t0 = time.monotonic()
    try:
        for p in stack:
            for path, text in p.files.items():
                with open(path, 'w') as f:
                    f.write(text)
            log_path = os.path.join(workdir, p.name + '.log')
            run.logs.append(log_path)
            with open(log_path, 'ab') as log:
                popen = subprocess.Popen(p.argv, cwd=ctx.apps_dir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            run.procs.append((p, popen))
            deadline = time.monotonic() + ctx.start_timeout
            while not _connectable(p.ready_socket):
                if popen.poll() is not None:
                    return run, None, '%s exited with code %s: %s' % (p.name, popen.returncode, suite.tail(log_path))
                if time.monotonic() > deadline:
                    return run, None, '%s not listening after %ds: %s' % (p.name, ctx.start_timeout,
                                                                          suite.tail(log_path))
                time.sleep(0.005)
        deadline = time.monotonic() + ctx.start_timeout
        why = 'no answer'
        while time.monotonic() < deadline:
            try:
                why, info = probe(ctx, app, port, tls)
                if why is None:
                    run.tls = info
                    return run, (time.monotonic() - t0) * 1000, None
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                why = '%s: %s' % (type(e).__name__, e)
            time.sleep(0.005)
        return run, None, 'wrong answer after %ds (%s): %s' % (ctx.start_timeout, why,
                                                               ' | '.join(suite.tail(x, 5) for x in run.logs))
    except BaseException:
        stop_stack(run)
        raise


def end_stack(running, result, workdir):
    """Stops a measured stack; keeps its logs in the result when the run failed, else removes its directory."""
    killed = stop_stack(running)
    if killed:
        result['stop_note'] = '%d process(es) needed SIGKILL' % killed
    if 'error' in result:
        result['logs'] = running.logs
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def stop_stack(run):
    """Front first (nginx), then the backend; each by its own PID, then its group (suite.stop)."""
    killed = 0
    for p, popen in reversed(run.procs):
        killed += suite.stop(popen, p.stop_signal)
    return killed


def openssl_check(port, alpn=None):
    """What a default OpenSSL 3 client (as wrk is) negotiates: one s_client handshake, -brief's lines."""
    argv = ['openssl', 's_client', '-connect', '127.0.0.1:%d' % port, '-servername', '127.0.0.1', '-brief']
    if alpn:
        argv += ['-alpn', alpn]
    try:
        out = subprocess.run(argv, input='', capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return {'error': 'openssl s_client timed out'}
    info = {}
    for line in (out.stdout + out.stderr).splitlines():
        k, sep, v = line.partition(':')
        key = {'Protocol version': 'protocol', 'Ciphersuite': 'cipher', 'Server Temp Key': 'key_exchange',
               'Peer signature type': 'signature', 'ALPN protocol': 'alpn'}.get(k.strip())
        if sep and key:
            info[key] = v.strip()
    return info or {'error': (out.stdout + out.stderr).strip()[-300:]}


# ---------------------------------------------------------------- load generators

def wrk(ctx, url, seconds, latency=True):
    argv = ['wrk', '-t%d' % ctx.wrk_threads, '-c%d' % ctx.connections, '-d%ds' % seconds, '--timeout', '5s',
            '-s', os.path.join(BENCH, 'wrk', 'report.lua')]
    if latency:
        argv.append('--latency')
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith('BENCH_JSON '):
            s = json.loads(line[len('BENCH_JSON '):])
            return {
                'req_s': s['requests'] / (s['duration_us'] / 1e6) if s['duration_us'] else 0.0,
                'requests': s['requests'],
                'p50_ms': s['p50_us'] / 1000, 'p99_ms': s['p99_us'] / 1000, 'max_ms': s['max_us'] / 1000,
                'errors': s['connect'] + s['read'] + s['write'] + s['timeout'] + s['status'],
                'errors_detail': {k: s[k] for k in ('connect', 'read', 'write', 'timeout', 'status')},
            }
    raise RuntimeError('wrk printed no result (exit %d): %s %s' % (out.returncode, out.stdout[-500:],
                                                                    out.stderr[-500:]))


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(round(q / 100 * (len(sorted_values) - 1))))]


def h2load(ctx, url, clients, streams, h1, seconds, log_file=None):
    argv = ['h2load', '-t', str(ctx.wrk_threads), '-c', str(clients), '-m', str(streams), '-D', str(seconds)]
    if h1:
        argv.append('--h1')
    if log_file:
        argv += ['--log-file', log_file]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout + out.stderr
    m = re.search(r'finished in ([\d.]+)(m?s), ([\d.]+) req/s', text)
    req = re.search(r'requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, '
                    r'(\d+) errored, (\d+) timeout', text)
    codes = re.search(r'status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx', text)
    if not (m and req and codes):
        raise RuntimeError('h2load printed no result (exit %d): %s' % (out.returncode, text[-800:]))
    total, started, done, ok, failed, errored, timeout = (int(x) for x in req.groups())
    non2xx = sum(int(x) for x in codes.groups()[1:])
    res = {
        'req_s': float(m.group(3)),
        'requests': done,
        'succeeded': ok,
        'failed': failed, 'errored': errored, 'timeout': timeout, 'non2xx': non2xx,
        'errors': failed + errored + timeout + non2xx,
        'h2load_exit': out.returncode,
    }
    tls = {}
    for key, pat in (('protocol', r'TLS Protocol: (\S+)'), ('cipher', r'Cipher: (\S+)'),
                     ('key_exchange', r'Server Temp Key: ([^\n]+)'), ('alpn', r'Application protocol: (\S+)')):
        found = re.search(pat, text)
        if found:
            tls[key] = found.group(1).strip()
    res['negotiated'] = tls
    if log_file and os.path.exists(log_file):
        # per request: start time (µs since epoch), status, µs to the end of the response
        lat = []
        with open(log_file) as f:
            for line in f:
                parts = line.split('\t')
                if len(parts) >= 3 and parts[1].startswith('2'):
                    lat.append(int(parts[2]))
        lat.sort()
        res['p50_ms'] = percentile(lat, 50) / 1000 if lat else None
        res['p99_ms'] = percentile(lat, 99) / 1000 if lat else None
    return res


# ---------------------------------------------------------------- one measured run

def measure(ctx, run, load):
    """Samples every process of the running stack around `load()`; adds CPU per request and machine load."""
    samplers = [(p.name, suite.Sampler(popen.pid)) for p, popen in run.procs]
    busy0, t0, wall0 = suite.cpu_busy_seconds(), os.times(), time.monotonic()
    for _, s in samplers:
        s.start()
    try:
        res = load()
    finally:
        cpu = {name: s.finish() for name, s in samplers}
    busy1, t1, wall1 = suite.cpu_busy_seconds(), os.times(), time.monotonic()
    client_cpu = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
    driver_cpu = (t1.user + t1.system) - (t0.user + t0.system)
    cores = os.cpu_count() or 1
    wall = wall1 - wall0
    total = sum(cpu.values())
    n = res['requests']
    res.update({
        'cpu_seconds': cpu,
        'cpu_us_per_req': total * 1e6 / n if n else None,
        'cpu_us_per_req_by_process': {k: v * 1e6 / n if n else None for k, v in cpu.items()},
        'peak_rss_bytes': sum(s.peak_rss for _, s in samplers),
        'server_cpu_pct': 100 * total / wall / cores,
        'client_cpu_pct': 100 * client_cpu / wall / cores,
        'other_cpu_pct': max(0.0, 100 * ((busy1[0] - busy0[0]) - total - client_cpu - driver_cpu) / wall / cores),
        'steal_pct': 100 * (busy1[1] - busy0[1]) / wall / cores,
    })
    return res


def run_tls(ctx, key, label, stack_fn, app, round_no):
    workdir = tempfile.mkdtemp(prefix='%s-%s-' % (key, app), dir=ctx.tmp)
    os.chmod(workdir, 0o755)
    port = suite.free_port()
    result = {'run': 'tls', 'server': key, 'app': app, 'round': round_no}
    stack = stack_fn(ctx, app, port, workdir)
    result['config'] = {p.name: p.files for p in stack if p.files}
    result['argv'] = {p.name: p.argv for p in stack}
    running, startup_ms, error = start_stack(ctx, stack, app, port, workdir)
    url = 'https://127.0.0.1:%d/' % port
    try:
        if error:
            result['error'] = error
            return result
        result['startup_ms'] = round(startup_ms, 1)
        result['probe_tls'] = running.tls
        if round_no == 1:
            result['openssl_check'] = openssl_check(port)  # no ALPN, like wrk
        try:
            if ctx.warmup > 0:
                wrk(ctx, url, ctx.warmup, latency=False)
            result.update(measure(ctx, running, lambda: wrk(ctx, url, ctx.duration)))
        except (RuntimeError, subprocess.TimeoutExpired) as e:  # one broken run must not end the benchmark
            result['error'] = str(e)
            return result
        dead = [p.name for p, popen in running.procs if popen.poll() is not None]
        if dead:
            result['error'] = 'exited during the run: ' + ', '.join(dead)
        try:
            why, _ = probe(ctx, app, port, True)
            if why:
                result['after_probe'] = why
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            result['after_probe'] = str(e)
        return result
    finally:
        end_stack(running, result, workdir)


def h2_modes(ctx):
    """(key, label, tls, h1, clients, streams per client): the same number of concurrent requests in each."""
    c, k = ctx.connections, ctx.h2_connections
    m = max(1, c // k)
    return [
        ('h2-tls', 'h2 over TLS, %d conns x 1 stream' % c, True, False, c, 1),
        ('h2c', 'h2c prior knowledge, %d conns x 1 stream' % c, False, False, c, 1),
        ('h2-tls-mux', 'h2 over TLS, %d conns x %d streams' % (k, m), True, False, k, m),
        ('h2c-mux', 'h2c prior knowledge, %d conns x %d streams' % (k, m), False, False, k, m),
        ('h1-tls', 'HTTP/1.1 over TLS (h2load --h1), %d conns' % c, True, True, c, 1),
        ('h1', 'HTTP/1.1 cleartext (h2load --h1), %d conns' % c, False, True, c, 1),
    ]


# h2 mode -> the HTTP/1.1 mode it is compared with (same transport, same concurrent requests)
H2_PAIRS = (('h2-tls', 'h1-tls'), ('h2-tls-mux', 'h1-tls'), ('h2c', 'h1'), ('h2c-mux', 'h1'))


def run_h2(ctx, mode, round_no):
    key, label, tls, h1, clients, streams = mode
    workdir = tempfile.mkdtemp(prefix='h2-%s-' % key, dir=ctx.tmp)
    os.chmod(workdir, 0o755)
    port = suite.free_port()
    result = {'run': 'h2', 'mode': key, 'label': label, 'app': H2_APP, 'round': round_no, 'clients': clients,
              'streams': streams}
    stack = [Proc('sharpwsgi', _sharpwsgi_argv(ctx, H2_APP, port, tls), ready_socket=('127.0.0.1', port))]
    running, startup_ms, error = start_stack(ctx, stack, H2_APP, port, workdir, tls=tls)
    url = '%s://127.0.0.1:%d/' % ('https' if tls else 'http', port)
    try:
        if error:
            result['error'] = error
            return result
        result['startup_ms'] = round(startup_ms, 1)
        log_file = os.path.join(workdir, 'h2load.tsv')
        try:
            if ctx.warmup > 0:
                h2load(ctx, url, clients, streams, h1, ctx.warmup)
            result.update(measure(ctx, running,
                                  lambda: h2load(ctx, url, clients, streams, h1, ctx.duration, log_file)))
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            result['error'] = str(e)
            return result
        want = 'http/1.1' if h1 else 'h2'
        if tls and result['negotiated'].get('alpn') != want:
            result['error'] = 'h2load negotiated %r, not %s' % (result['negotiated'].get('alpn'), want)
        if running.procs[0][1].poll() is not None:
            result['error'] = 'sharpwsgi exited during the run'
        return result
    finally:
        end_stack(running, result, workdir)


# ---------------------------------------------------------------- report

def median_of(rows, field):
    vals = [r[field] for r in rows if r.get(field) is not None and 'error' not in r]
    return statistics.median(vals) if vals else None


def fmt(v, pattern='%.0f'):
    return '—' if v is None else pattern % v


def ratio_row(name, goal, num, den, quick, failures=False):
    if failures:
        return '| %s | ≥ %.1fx | the h2 runs had failures: not counted | missed |' % (name, goal)
    if num is None or den is None or not den:
        return '| %s | ≥ %.1fx | not measured in this run | — |' % (name, goal)
    r = num / den
    verdict = 'met' if r >= goal else 'missed'
    if quick:
        verdict += ' (smoke run: does not count)'
    # three decimals, so that 0.798 does not read as a missed 0.80x
    return '| %s | ≥ %.1fx | %.0f / %.0f req/s = **%.3fx** | %s |' % (name, goal, num, den, r, verdict)


def render(data):
    meta, runs = data['meta'], data['runs']
    st = meta['settings']
    quick = st['quick']
    out = ['# SharpWsgi edge benchmark: TLS and HTTP/2 (issue 8)', '',
           '%s, `%s`, %d round(s) of %d s (after %d s warm-up), median reported. %s' % (
               meta['date'], meta['command'], st['rounds'], st['duration'], st['warmup'],
               'Took %d s.' % meta['elapsed_s'] if 'elapsed_s' in meta else '')]
    if quick:
        out += ['', '> **Smoke run (`--quick`)**: one short round, to check that everything runs. Not a measurement.']
    busy = [r for r in runs if r.get('other_cpu_pct', 0) > 10 or r.get('steal_pct', 0) > 10]
    if busy:
        out += ['', '> **Warning:** in %d of %d runs other jobs or steal used more than 10%% of the machine '
                    '(up to %.0f%%): the numbers are slower and noisier than on an idle machine.'
                % (len(busy), len(runs), max(max(r.get('other_cpu_pct', 0), r.get('steal_pct', 0)) for r in busy))]
    for n in meta.get('notes', []):
        out += ['', '> ' + n]
    m = meta['machine']
    out += ['', '## Machine and versions', '',
            '%s, %s cores, %s, %s, kernel %s; load average %s at the start, %s at the end.' % (
                m['cpu'], m['cores'], m['memory'], m['os'], m['kernel'], meta['loadavg_start'],
                meta.get('loadavg_end', '?')), '', '| | version |', '|---|---|']
    out += ['| %s | %s |' % kv for kv in meta['versions'].items()]

    out += ['', '## Settings', '',
            '- **Certificate:** %s, self-signed for 127.0.0.1, the same for every server.' % meta['certificate'],
            '- **Python:** %d processes x %d threads for every stack; nginx has %s worker process(es) on top, '
            'counted in CPU.' % (st['procs'], st['threads'], st['nginx_workers']),
            '- **Load:** wrk `-t%d -c%d` over https (keep-alive, no ALPN: HTTP/1.1); h2load `-t%d`, '
            '%d concurrent requests in every mode.' % (st['wrk_threads'], st['connections'], st['wrk_threads'],
                                                       st['connections']), '',
            '| stack | shape and config |', '|---|---|']
    out += ['| %s | %s |' % (label, meta['shapes'][key]) for key, label in meta['tls_servers']]

    tls_runs = [r for r in runs if r['run'] == 'tls']
    if tls_runs:
        out += ['', '### TLS as negotiated', '',
                'A default OpenSSL client (`openssl s_client -brief`, no ALPN, as wrk) and the probe (Python `ssl`), '
                'round 1:', '', '| app | stack | s_client: protocol, suite, key exchange | probe |',
                '|---|---|---|---|']
        names = dict(meta['tls_servers'])
        for r in tls_runs:
            if r['round'] == 1 and 'openssl_check' in r:
                oc = r['openssl_check']
                sc = oc.get('error') or '%s, %s, %s' % (oc.get('protocol'), oc.get('cipher'), oc.get('key_exchange'))
                pt = r.get('probe_tls', {})
                out.append('| %s | %s | %s | %s, %s |' % (r['app'], names.get(r['server'], r['server']), sc,
                                                        pt.get('version'), pt.get('cipher')))
        versions = {r['openssl_check'].get('protocol') for r in tls_runs if 'openssl_check' in r}
        if versions and versions != {'TLSv1.3'}:
            out += ['', '> **Not every stack negotiated TLS 1.3:** %s' % ', '.join(sorted(map(str, versions)))]

        out += ['', '## TLS run (wrk over https, keep-alive)']
        for app in meta['tls_apps']:
            rows = [r for r in tls_runs if r['app'] == app]
            base = median_of([r for r in rows if r['server'] == 'nginx-gunicorn'], 'req_s')
            out += ['', '### %s' % app, '',
                    '| stack | req/s | min–max | p50 ms | p99 ms | CPU µs/req (of which nginx) | errors | '
                    'vs nginx+gunicorn |', '|---|---:|---:|---:|---:|---:|---:|---:|']
            for key, label in meta['tls_servers']:
                rr = [r for r in rows if r['server'] == key]
                ok = [r for r in rr if 'error' not in r]
                failed = len(rr) - len(ok)
                rps = median_of(rr, 'req_s')
                nginx_cpu = [r['cpu_us_per_req_by_process'].get('nginx') for r in ok
                             if r['cpu_us_per_req_by_process'].get('nginx') is not None]
                cpu = fmt(median_of(rr, 'cpu_us_per_req'), '%.0f')
                if nginx_cpu:
                    cpu += ' (%.0f)' % statistics.median(nginx_cpu)
                spread = '%.0f–%.0f' % (min(r['req_s'] for r in ok), max(r['req_s'] for r in ok)) if ok else '—'
                errs = sum(r.get('errors', 0) for r in ok)
                out.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
                    label, fmt(rps), spread, fmt(median_of(rr, 'p50_ms'), '%.2f'), fmt(median_of(rr, 'p99_ms'), '%.2f'),
                    cpu, '%d%s' % (errs, ', %d run(s) FAILED' % failed if failed else ''),
                    '%.2fx' % (rps / base) if rps and base else '—'))

    h2_runs = [r for r in runs if r['run'] == 'h2']
    if h2_runs:
        out += ['', '## HTTP/2 run (h2load against SharpWsgi, %s)' % H2_APP, '',
                'Every mode has the same number of concurrent requests. Errors are h2load\'s failed + errored + '
                'timeout + non-2xx; a mode with any is marked. p50/p99 from h2load\'s per-request log.', '',
                '| mode | negotiated | req/s | min–max | p50 ms | p99 ms | CPU µs/req | errors (failed/errored/'
                'timeout/non-2xx) |', '|---|---|---:|---:|---:|---:|---:|---:|']
        for key, label in meta['h2_modes']:
            rr = [r for r in h2_runs if r['mode'] == key]
            ok = [r for r in rr if 'req_s' in r]
            bad = [r for r in rr if 'error' in r]
            neg = ok[0]['negotiated'] if ok else {}
            negs = '%s %s' % (neg.get('protocol', 'cleartext'), neg.get('alpn', 'h2c' if key.startswith('h2c')
                                                                           else 'http/1.1'))
            err = [sum(r.get(k, 0) for r in ok) for k in ('failed', 'errored', 'timeout', 'non2xx')]
            errs = '%d (%s)' % (sum(err), '/'.join(map(str, err)))
            if sum(err):
                errs = '**%s: with failures**' % errs
            if bad:
                errs += '; %d run(s) FAILED: %s' % (len(bad), bad[0]['error'][:120])
            spread = '%.0f–%.0f' % (min(r['req_s'] for r in ok), max(r['req_s'] for r in ok)) if ok else '—'
            out.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
                label, negs, fmt(median_of(rr, 'req_s')), spread, fmt(median_of(rr, 'p50_ms'), '%.2f'),
                fmt(median_of(rr, 'p99_ms'), '%.2f'), fmt(median_of(rr, 'cpu_us_per_req')), errs))
        labels = dict(meta['h2_modes'])
        out += ['', '| h2 / h1 | ratio |', '|---|---:|']
        for h2, h1 in H2_PAIRS:
            a, b = median_of([r for r in h2_runs if r['mode'] == h2], 'req_s'), \
                median_of([r for r in h2_runs if r['mode'] == h1], 'req_s')
            out.append('| %s / %s | %s |' % (labels[h2], labels[h1], '%.2fx' % (a / b) if a and b else '—'))

    out += ['', '## Targets', '', 'Computed from this run\'s medians.%s' % (
        ' One short round is too noisy for any of them to count.' if quick else ''), '',
        '| target | goal | measured | |', '|---|---|---|---|']
    for app, goal in TLS_TARGETS.items():
        rows = [r for r in tls_runs if r['app'] == app]
        out.append(ratio_row('%s over TLS: SharpWsgi / nginx + gunicorn gthread' % app, goal,
                             median_of([r for r in rows if r['server'] == 'sharpwsgi'], 'req_s'),
                             median_of([r for r in rows if r['server'] == 'nginx-gunicorn'], 'req_s'), quick))
    labels = dict(meta.get('h2_modes', []))
    for h2, h1 in H2_PAIRS:
        a = [r for r in h2_runs if r['mode'] == h2]
        out.append(ratio_row('%s hello: %s / %s' % ('h2' if 'tls' in h2 else 'h2c', labels.get(h2, h2),
                                                    labels.get(h1, h1)), H2_TARGET, median_of(a, 'req_s'),
                             median_of([r for r in h2_runs if r['mode'] == h1], 'req_s'), quick,
                             failures=any(r.get('errors') or 'error' in r for r in a)))

    out += ['', '## Notes', '',
            '- One machine: the load generator (one thread) runs beside the servers, so on 2 cores a stack gets '
            'roughly the other core; nginx\'s workers compete with the Python processes for it, which is part of '
            'the cost of the two-tier setup being measured.',
            '- nginx\'s upstream: gunicorn is reached over %s with HTTP/1.1 keep-alive (`proxy_http_version 1.1`, '
            '`proxy_set_header Connection ""`, `keepalive 32`); uWSGI over a unix socket with the uwsgi protocol, '
            'which opens one connection per request (it has no keep-alive).' % (
                'a unix socket' if st['gunicorn_upstream'] == 'unix' else '127.0.0.1 TCP'),
            '- gunicorn runs in the statically linked `/usr/bin/python3`, uWSGI and SharpWsgi embed Debian\'s '
            'shared libpython3.11, whose Python code runs slower (see bench/README.md).',
            '- CPU µs/req counts every process of the stack (nginx master and workers, the Python server\'s '
            'processes), not the load generator.',
            '- TLS 1.3 suites: wrk and s_client offer OpenSSL\'s default order (AES-256-GCM first) to every stack; '
            'h2load offers AES-128-GCM first, which nginx would take and SharpWsgi (server order) does not: only '
            'SharpWsgi is measured with h2load, so its h2/h1 ratios compare like with like.']
    conf = next((r['config'] for r in tls_runs if r['server'] == 'nginx-gunicorn' and r.get('config')), None)
    if conf:
        text = next(iter(conf['nginx'].values()))
        out += ['', '<details><summary>nginx.conf for nginx + gunicorn (one run\'s)</summary>', '', '```nginx',
                text.rstrip(), '```', '', '</details>']
    return '\n'.join(out) + '\n'


# ---------------------------------------------------------------- main

def versions(ctx):
    def run(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001 - a missing tool is reported, not fatal
            return 'unavailable (%s)' % e

    def deb(package):
        v = run(['dpkg-query', '-W', '-f=${Version}', package])
        return v if v and 'no packages found' not in v else 'not installed'

    commit = run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'])
    dirty = subprocess.run(['git', '-C', REPO, 'status', '--porcelain', '--', 'src'], capture_output=True,
                           text=True).stdout.strip()
    return {
        'SharpWsgi': '%s (commit %s%s), %s' % (run([ctx.sharpwsgi, '--version']), commit,
                                              ', src/ has uncommitted changes' if dirty else '', ctx.sharpwsgi_build),
        'Python': run([S.PYTHON, '--version']),
        'nginx': run([ctx.nginx, '-v']),
        'gunicorn': deb('gunicorn'),
        'uWSGI': deb('uwsgi-core') + ' + uwsgi-plugin-python3 ' + deb('uwsgi-plugin-python3'),
        'Flask': deb('python3-flask'),
        'wrk': deb('wrk'),
        'h2load': run(['h2load', '--version']),
        'OpenSSL': run(['openssl', 'version']),
        '.NET': run(['dotnet', '--version']) if shutil.which('dotnet') else 'unavailable',
    }


def parse_args(argv):
    p = argparse.ArgumentParser(prog='bench/edge.sh', description='SharpWsgi TLS and HTTP/2 benchmark (issue 8)')
    p.add_argument('--quick', action='store_true', help='smoke test: 1 round, 2 s runs, 1 s warm-up')
    p.add_argument('--procs', '-P', type=int, default=2, help='Python processes per stack (default 2)')
    p.add_argument('--threads', '-T', type=int, default=4, help='threads per Python process (default 4)')
    p.add_argument('--nginx-workers', default=None, help='nginx worker_processes (default: --procs)')
    p.add_argument('--gunicorn-upstream', choices=('unix', 'tcp'), default='unix',
                   help='how nginx reaches gunicorn (default unix: a unix socket, with upstream keep-alive)')
    p.add_argument('--rounds', type=int, default=3, help='interleaved rounds (default 3)')
    p.add_argument('--duration', type=int, default=5, help='seconds of each measured run (default 5)')
    p.add_argument('--warmup', type=int, default=2, help='seconds of warm-up before each run (default 2)')
    p.add_argument('--connections', '-c', type=int, default=64,
                   help='connections (wrk, h2load h1 and h2 1-stream modes) = concurrent requests (default 64)')
    p.add_argument('--h2-connections', type=int, default=4,
                   help='connections of the multiplexed h2 modes; streams each = connections / this (default 4)')
    p.add_argument('--wrk-threads', type=int, default=1, help='wrk and h2load threads (default 1)')
    p.add_argument('--runs', default='tls,h2', help='which runs: tls,h2 (default both)')
    p.add_argument('--apps', default=','.join(TLS_APPS), help='apps of the TLS run (default hello,flask)')
    p.add_argument('--start-timeout', type=int, default=60)
    p.add_argument('--out', default=os.path.join(BENCH, 'results'))
    p.add_argument('--name', default=None, help='results file name without extension (default <date>-edge)')
    p.add_argument('--sharpwsgi', default=os.environ.get('SHARPWSGI_BIN') or os.path.join(REPO, 'dist/sharpwsgi'))
    p.add_argument('--nginx', default=shutil.which('nginx') or '/usr/sbin/nginx')
    p.add_argument('--report', metavar='JSON', help='only regenerate the Markdown report of a results JSON')
    p.add_argument('--command', default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.duration, a.warmup = 1, 2, 1
    a.nginx_workers = a.nginx_workers or str(a.procs)
    return a


class Ctx:
    pass


def main(argv):
    a = parse_args(argv)
    if a.report:
        with open(a.report) as f:
            data = json.load(f)
        md = os.path.splitext(a.report)[0] + '.md'
        with open(md, 'w') as f:
            f.write(render(data))
        print(md)
        return 0
    ctx = Ctx()
    ctx.__dict__.update(vars(a))
    ctx.apps = [x for x in a.apps.split(',') if x]
    for app in ctx.apps:
        if app not in TLS_APPS:
            sys.exit('unknown app %s (TLS run apps: %s)' % (app, ', '.join(TLS_APPS)))
    which = {x for x in a.runs.split(',') if x}
    if not which or which - {'tls', 'h2'}:
        sys.exit('--runs: tls, h2 or both')

    ctx.tmp = tempfile.mkdtemp(prefix='sharpwsgi-edge-')
    os.chmod(ctx.tmp, 0o755)
    jit = suite.private_jit_build(ctx.tmp, a.sharpwsgi)
    if jit:
        ctx.sharpwsgi = jit
        ctx.sharpwsgi_build = 'JIT build'
    else:
        copy = os.path.join(ctx.tmp, 'sharpwsgi')
        shutil.copy2(a.sharpwsgi, copy)
        ctx.sharpwsgi = copy
        ctx.sharpwsgi_build = 'NativeAOT'
    ctx.apps_dir = os.path.join(ctx.tmp, 'apps')
    shutil.copytree(os.path.join(BENCH, 'apps'), ctx.apps_dir, ignore=shutil.ignore_patterns('__pycache__'))
    for root, dirs, files in os.walk(ctx.tmp):
        os.chmod(root, 0o755)  # nginx's www-data workers reach the sockets in the run directories
    ctx.cert, ctx.key = make_certificate(ctx.tmp)
    ctx.client_ssl = ssl.create_default_context(cafile=ctx.cert)

    modes = h2_modes(ctx)
    n_tls = len(ctx.apps) * len(TLS_SERVERS) * a.rounds if 'tls' in which else 0
    n_h2 = len(modes) * a.rounds if 'h2' in which else 0
    print('SharpWsgi edge bench: %d TLS runs + %d HTTP/2 runs, about %d min' % (
        n_tls, n_h2, round((n_tls + n_h2) * (a.warmup + a.duration + 2) / 60)), flush=True)
    started = datetime.datetime.now()
    meta = {
        'date': started.strftime('%Y-%m-%d %H:%M'),
        'command': a.command or ' '.join(['bench/lib/edge.py'] + argv),
        'settings': {k: getattr(a, k) for k in ('procs', 'threads', 'nginx_workers', 'gunicorn_upstream', 'rounds',
                                                'duration', 'warmup', 'connections', 'h2_connections',
                                                'wrk_threads', 'quick')},
        'certificate': 'EC P-256 (prime256v1, ECDSA)',
        'tls_apps': ctx.apps if 'tls' in which else [],
        'tls_servers': [(k, label) for k, label, _ in TLS_SERVERS],
        'shapes': tls_shapes(ctx),
        'h2_modes': [(m[0], m[1]) for m in modes] if 'h2' in which else [],
        'notes': [],
        'machine': suite.machine_info(),
        'loadavg_start': suite.loadavg(),
        'versions': versions(ctx),
    }
    runs = []
    total, done = n_tls + n_h2, 0
    try:
        if 'tls' in which:
            for app in ctx.apps:
                for r in range(1, a.rounds + 1):
                    for key, label, fn in TLS_SERVERS:
                        done += 1
                        res = run_tls(ctx, key, label, fn, app, r)
                        runs.append(res)
                        print('[%d/%d] tls %-6s round %d  %-32s %s' % (done, total, app, r, label, describe(res)),
                              flush=True)
        if 'h2' in which:
            for r in range(1, a.rounds + 1):
                for mode in modes:
                    done += 1
                    res = run_h2(ctx, mode, r)
                    runs.append(res)
                    print('[%d/%d] h2  round %d  %-48s %s' % (done, total, r, mode[1], describe(res)), flush=True)
    except KeyboardInterrupt:
        print('interrupted: writing what was measured', flush=True)
        meta['notes'].append('The run was interrupted; some measurements are missing.')
    meta['loadavg_end'] = suite.loadavg()
    meta['elapsed_s'] = round((datetime.datetime.now() - started).total_seconds())

    os.makedirs(a.out, exist_ok=True)
    name = a.name or started.strftime('%Y-%m-%d') + '-edge' + ('-quick' if a.quick else '')
    base, n = os.path.join(a.out, name), 2
    while os.path.exists(base + '.json'):
        base, n = os.path.join(a.out, '%s-%d' % (name, n)), n + 1
    data = {'meta': meta, 'runs': runs}
    with open(base + '.json', 'w') as f:
        json.dump(data, f, indent=1)
    with open(base + '.md', 'w') as f:
        f.write(render(data))
    print('\n' + open(base + '.md').read())
    print('results: %s.md\nraw:     %s.json' % (base, base))
    failed = [r for r in runs if 'error' in r]
    if failed:
        print('%d run(s) failed; logs kept under %s' % (len(failed), ctx.tmp))
    else:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if failed else 0


def describe(res):
    if 'req_s' not in res:
        return 'FAILED: ' + res.get('error', '?')[:300]
    s = '%9.0f req/s  p50 %s ms  p99 %s ms  cpu %s us/req' % (
        res['req_s'], fmt(res.get('p50_ms'), '%6.2f'), fmt(res.get('p99_ms'), '%7.2f'),
        fmt(res.get('cpu_us_per_req'), '%6.1f'))
    if res.get('other_cpu_pct', 0) > 5 or res.get('steal_pct', 0) > 5:
        s += '  (other jobs %.0f%%, steal %.0f%%)' % (res['other_cpu_pct'], res['steal_pct'])
    if res.get('errors'):
        s += '  errors %d' % res['errors']
    if 'error' in res:
        s += '  ERROR: ' + res['error'][:200]
    return s


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
