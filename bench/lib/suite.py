#!/usr/bin/python3
"""The benchmark driver: starts each server in turn on 127.0.0.1, loads it with wrk, samples its
processes from /proc, stops it, and writes the raw results (JSON) and the report (Markdown + SVG).

Run it through bench/run.sh, which installs the peers and builds the .NET pieces first.
Only the Python standard library is used.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, HERE)

import database  # noqa: E402
import report  # noqa: E402
import servers as S  # noqa: E402

CLK_TCK = os.sysconf('SC_CLK_TCK')
PAGE = os.sysconf('SC_PAGE_SIZE')
ECHO_BODY = bytes(range(256)) * 40  # the same 10 KB wrk's post10k.lua sends


# ---------------------------------------------------------------- processes of one server

def _read_stat(pid):
    """(ppid, pgrp, session, utime+stime ticks, rss pages) of a process, or None if it is gone."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b')') + 2:].split()
    # fields[0] is field 3 (state) of proc(5)
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[11]) + int(fields[12]), int(fields[21])


def server_processes(root):
    """All live processes of the server started as `root`: its session, its process group, and any
    descendant that left them. {pid: (cpu_ticks, rss_pages)}"""
    table = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            st = _read_stat(int(name))
            if st:
                table[int(name)] = st
    members = {pid for pid, st in table.items() if pid == root or st[1] == root or st[2] == root}
    grew = True
    while grew:
        grew = False
        for pid, st in table.items():
            if pid not in members and st[0] in members:
                members.add(pid)
                grew = True
    return {pid: (table[pid][3], table[pid][4]) for pid in members}


def pss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                for line in f:
                    if line.startswith('Pss:'):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


class Sampler(threading.Thread):
    """Samples RSS (every 100 ms), PSS (every 500 ms) and CPU ticks of the server's processes."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root = root
        self.first = server_processes(root)
        self.last_cpu = {pid: v[0] for pid, v in self.first.items()}
        self.peak_rss = sum(v[1] for v in self.first.values()) * PAGE
        self.peak_pss = pss_kb(self.first) * 1024
        self.peak_procs = len(self.first)
        self._stop_event = threading.Event()

    def sample(self, with_pss):
        procs = server_processes(self.root)
        for pid, (cpu, _) in procs.items():
            self.last_cpu[pid] = cpu
        self.peak_rss = max(self.peak_rss, sum(v[1] for v in procs.values()) * PAGE)
        self.peak_procs = max(self.peak_procs, len(procs))
        if with_pss:
            self.peak_pss = max(self.peak_pss, pss_kb(procs) * 1024)

    def run(self):
        n = 0
        while not self._stop_event.wait(0.1):
            n += 1
            self.sample(with_pss=n % 5 == 0)

    def finish(self):
        self._stop_event.set()
        self.join()
        self.sample(with_pss=True)
        ticks = sum(cpu - self.first.get(pid, (0, 0))[0] for pid, cpu in self.last_cpu.items())
        return ticks / CLK_TCK


# ---------------------------------------------------------------- one server, one app, one round

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def probe(app, port):
    """One request like the load's; returns None if it got the expected answer, else why not."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        if app == 'echo10k':
            conn.request('POST', '/', body=ECHO_BODY, headers={'Content-Type': 'application/octet-stream'})
        else:
            conn.request('GET', '/')
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return 'status %d' % r.status
        why = S.check_body(app, body)
        if why:
            return why
        if app == 'echo10k' and body != ECHO_BODY:
            return 'echo body differs from the request body'
        return None
    finally:
        conn.close()


def tail(path, lines=15):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:]).strip()
    except OSError:
        return ''


def start(ctx, server, app, workdir):
    port = free_port()
    launch = server.launch(ctx, app, port, workdir)
    for path, text in launch.files.items():
        with open(path, 'w') as f:
            f.write(text)
    log_path = os.path.join(workdir, 'server.log')
    log = open(log_path, 'ab')
    env = dict(os.environ)
    env.update(ctx.app_env.get(app, {}))  # e.g. where the djangopg app finds PostgreSQL
    env.update(launch.env)
    t0 = time.monotonic()
    proc = subprocess.Popen(launch.argv, cwd=launch.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = t0 + ctx.start_timeout
    why = 'no answer'
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return proc, port, launch, None, 'exited with code %s before answering: %s' % (
                    proc.returncode, tail(log_path))
            try:
                why = probe(app, port)
                if why is None:
                    return proc, port, launch, (time.monotonic() - t0) * 1000, None
            except (OSError, http.client.HTTPException) as e:
                why = '%s: %s' % (type(e).__name__, e)
            time.sleep(0.005)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) while waiting: do not leave the server running
        stop(proc, launch.stop_signal)
        raise
    return proc, port, launch, None, 'not ready after %ds (%s): %s' % (ctx.start_timeout, why, tail(log_path))


def stop(proc, launch_signal):
    """Stops the server we started: its main process first, then anything left in its group/session."""
    root = proc.pid
    sig = getattr(signal, 'SIG' + launch_signal)
    try:
        os.kill(root, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        proc.poll()
        if not server_processes(root):
            break
        time.sleep(0.05)
    left = server_processes(root)
    if left:
        try:
            os.killpg(root, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in left:  # descendants that left the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    return len(left)


def cpu_busy_seconds():
    """(busy, steal) CPU seconds of the whole machine so far (all cores), from /proc/stat. Busy is
    user+nice+system+irq+softirq; steal is time the hypervisor gave to other machines."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]] + [0] * 8
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK


def wrk(ctx, app, port, seconds, latency=True):
    script = os.path.join(BENCH, 'wrk', 'post10k.lua' if app == 'echo10k' else 'report.lua')
    argv = ['wrk', '-t%d' % ctx.wrk_threads, '-c%d' % ctx.connections, '-d%ds' % seconds, '--timeout', '5s',
            '-s', script]
    if latency:
        argv.append('--latency')
    if ctx.connection_close:
        argv += ['-H', 'Connection: close']  # every request on a fresh connection: what accepting costs
    argv.append('http://127.0.0.1:%d/' % port)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith('BENCH_JSON '):
            return json.loads(line[len('BENCH_JSON '):]), out.stdout
    raise RuntimeError('wrk printed no result (exit %d): %s %s' % (out.returncode, out.stdout[-500:],
                                                                    out.stderr[-500:]))


def run_one(ctx, server, app, round_no):
    workdir = tempfile.mkdtemp(prefix='%s-%s-' % (server.key, app), dir=ctx.tmp)
    os.chmod(workdir, 0o755)
    result = {'server': server.key, 'app': app, 'round': round_no}
    proc, port, launch, startup_ms, error = start(ctx, server, app, workdir)
    try:
        if error:
            result['error'] = error
            return result
        result['startup_ms'] = round(startup_ms, 1)
        if ctx.warmup > 0:
            wrk(ctx, app, port, ctx.warmup, latency=False)
        sampler = Sampler(proc.pid)
        # The database's processes are sampled the same way: their CPU is reported apart, not as "other jobs".
        db_sampler = Sampler(ctx.db.pid) if ctx.db and app in S.DATABASE_APPS else None
        busy0, kids0, self0, wall0 = cpu_busy_seconds(), os.times(), os.times(), time.monotonic()
        sampler.start()
        if db_sampler:
            db_sampler.start()
        try:
            stats, text = wrk(ctx, app, port, ctx.duration)
        finally:
            cpu_seconds = sampler.finish()
            db_cpu = db_sampler.finish() if db_sampler else 0.0
        busy1, kids1, wall1 = cpu_busy_seconds(), os.times(), time.monotonic()
        wrk_cpu = (kids1.children_user + kids1.children_system) - (kids0.children_user + kids0.children_system)
        driver_cpu = (kids1.user + kids1.system) - (self0.user + self0.system)
        other = (busy1[0] - busy0[0]) - cpu_seconds - wrk_cpu - driver_cpu - db_cpu
        steal = busy1[1] - busy0[1]
        cores = os.cpu_count() or 1
        alive = proc.poll() is None
        requests = stats['requests']
        result.update({
            'req_s': requests / (stats['duration_us'] / 1e6) if stats['duration_us'] else 0.0,
            'requests': requests,
            'p50_ms': stats['p50_us'] / 1000,
            'p90_ms': stats['p90_us'] / 1000,
            'p99_ms': stats['p99_us'] / 1000,
            'max_ms': stats['max_us'] / 1000,
            'non2xx': stats['status'],
            'socket_errors': stats['connect'] + stats['read'] + stats['write'] + stats['timeout'],
            'errors_detail': {k: stats[k] for k in ('connect', 'read', 'write', 'timeout', 'status')},
            'peak_rss_bytes': sampler.peak_rss,
            'peak_pss_bytes': sampler.peak_pss,
            'processes': sampler.peak_procs,
            'cpu_us_per_req': cpu_seconds * 1e6 / requests if requests else None,
            'cpu_seconds': cpu_seconds,
            'server_cpu_pct': 100 * cpu_seconds / (wall1 - wall0) / cores,
            'wrk_cpu_pct': 100 * wrk_cpu / (wall1 - wall0) / cores,
            # CPU used by anything else on the machine during the run (other jobs): contaminates the result
            'other_cpu_pct': max(0.0, 100 * other / (wall1 - wall0) / cores),
            'steal_pct': 100 * steal / (wall1 - wall0) / cores,
            'bytes_read': stats['bytes'],
        })
        if db_sampler:
            result.update({
                'db_cpu_seconds': db_cpu,
                'db_cpu_us_per_req': db_cpu * 1e6 / requests if requests else None,
                'db_cpu_pct': 100 * db_cpu / (wall1 - wall0) / cores,
                'db_peak_rss_bytes': db_sampler.peak_rss,
            })
        if not alive:
            result['error'] = 'server exited during the run: ' + tail(os.path.join(workdir, 'server.log'))
        # a last probe: the server still answers correctly after the load
        try:
            why = probe(app, port)
            if why:
                result['after_probe'] = why
        except (OSError, http.client.HTTPException) as e:
            result['after_probe'] = str(e)
        return result
    finally:
        killed = stop(proc, launch.stop_signal)
        if killed:
            result['stop_note'] = '%d process(es) needed SIGKILL' % killed
        if 'error' in result:
            result['log'] = os.path.join(workdir, 'server.log')
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- setup and main loop

def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return ' '.join(f.read().split()[:3])
    except OSError:
        return '?'


def machine_info():
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ''
    try:
        with open('/proc/meminfo') as f:
            mem = '%.1f GiB' % (int(f.readline().split()[1]) / 1024 / 1024)
    except OSError:
        pass
    try:
        with open('/etc/debian_version') as f:
            debian = 'Debian ' + f.read().strip()
    except OSError:
        debian = platform.platform()
    return {'cpu': model, 'cores': os.cpu_count(), 'memory': mem, 'kernel': platform.release(), 'os': debian}


def parse_args(argv):
    p = argparse.ArgumentParser(prog='bench/run.sh', description='SharpWsgi side-by-side benchmark suite')
    p.add_argument('--quick', action='store_true', help='smoke test: 1 round, 2 s, hello only')
    p.add_argument('--procs', '-P', type=int, default=2, help='processes per server (default 2)')
    p.add_argument('--threads', '-T', type=int, default=4,
                   help='threads per process for threaded servers (default 4, SharpWsgi\'s default)')
    p.add_argument('--rounds', type=int, default=3, help='interleaved rounds per app (default 3)')
    p.add_argument('--duration', type=int, default=5, help='seconds of each measured wrk run (default 5)')
    p.add_argument('--warmup', type=int, default=2, help='seconds of wrk warm-up before each run (default 2)')
    p.add_argument('--connections', '-c', type=int, default=64, help='wrk connections (default 64)')
    p.add_argument('--wrk-threads', type=int, default=1, help='wrk threads (default 1)')
    p.add_argument('--apps', default=','.join(S.APPS), help='comma-separated apps (default: all): ' + ','.join(S.APPS))
    p.add_argument('--servers', default=None,
                   help='comma-separated servers (default: all but uwsgi-http11): ' +
                        ','.join(s.key for s in S.all_servers()))
    p.add_argument('--http11', action='store_true', help='also run uWSGI --http11-socket (reported separately)')
    p.add_argument('--start-timeout', type=int, default=60, help='seconds a server may take to answer')
    p.add_argument('--out', default=os.path.join(BENCH, 'results'), help='directory for the results')
    p.add_argument('--name', default=None, help='results file name without extension (default: the date)')
    p.add_argument('--sharpwsgi', default=os.environ.get('SHARPWSGI_BIN') or os.path.join(
        REPO, 'src/SharpWsgi/bin/Release/net10.0/sharpwsgi'), help='the sharpwsgi executable')
    p.add_argument('--sharpwsgi-before', default=os.environ.get('SHARPWSGI_BEFORE_BIN'),
                   help='another sharpwsgi build, run as the sharpwsgi-before variant with the same settings: an A/B '
                        'of a change in one run')
    p.add_argument('--connection-close', action='store_true',
                   help='wrk sends Connection: close, so every request opens a new connection')
    p.add_argument('--plain-kestrel', default=os.path.join(BENCH, 'PlainKestrel/bin/Release/net10.0/PlainKestrel'))
    p.add_argument('--apache2', default=shutil.which('apache2') or '/usr/sbin/apache2')
    p.add_argument('--baseline', default=os.path.join(REPO, report.DEFAULT_BASELINE),
                   help='results JSON of the run issue 7 compares with ("none": no baseline; default %s)'
                        % report.DEFAULT_BASELINE)
    p.add_argument('--check', action='store_true',
                   help='no load: start every server with every app, check its answer, stop it')
    p.add_argument('--command', default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.duration, a.warmup, a.apps = 1, 2, 1, 'hello'
    return a


class Ctx:
    pass


def private_jit_build(tmp, binary):
    """A JIT build (its directory has sharpwsgi.dll) copied into tmp: a rebuild of src/ during the run must not
    change what is measured. The copy's executable, or None for a NativeAOT binary (one file, not rebuilt)."""
    build_dir = os.path.dirname(os.path.realpath(binary))
    if not os.path.exists(os.path.join(build_dir, 'sharpwsgi.dll')):
        return None
    copy = os.path.join(tmp, 'sharpwsgi-build')
    shutil.copytree(build_dir, copy, symlinks=True)
    return os.path.join(copy, os.path.basename(binary))


def main(argv):
    a = parse_args(argv)
    ctx = Ctx()
    ctx.__dict__.update(vars(a))
    ctx.repo = REPO
    ctx.apps = [x for x in a.apps.split(',') if x]
    for app in ctx.apps:
        if app not in S.APPS:
            sys.exit('unknown app %s (apps: %s)' % (app, ', '.join(S.APPS)))
    every = S.all_servers()
    keys = a.servers.split(',') if a.servers else [s.key for s in every
                                                    if s.key not in ('uwsgi-http11', 'sharpwsgi-before')]
    if a.sharpwsgi_before and 'sharpwsgi-before' not in keys:
        keys.append('sharpwsgi-before')
    elif not a.sharpwsgi_before and 'sharpwsgi-before' in keys:
        sys.exit('sharpwsgi-before needs --sharpwsgi-before BINARY (or SHARPWSGI_BEFORE_BIN)')
    if a.http11 and 'uwsgi-http11' not in keys:
        keys.append('uwsgi-http11')
    chosen = []
    for k in keys:
        match = [s for s in every if s.key == k]
        if not match:
            sys.exit('unknown server %s (servers: %s)' % (k, ', '.join(s.key for s in every)))
        chosen.append(match[0])

    ctx.baseline = None
    if a.baseline and a.baseline != 'none' and not a.check:
        try:
            ctx.baseline = report.baseline_summary(a.baseline)
        except (OSError, ValueError, KeyError) as e:
            sys.exit('cannot read the baseline %s (%s); --baseline none runs without one' % (a.baseline, e))

    ctx.tmp = tempfile.mkdtemp(prefix='sharpwsgi-bench-')
    os.chmod(ctx.tmp, 0o755)
    copy = private_jit_build(ctx.tmp, a.sharpwsgi)
    if copy:
        ctx.sharpwsgi = copy
        ctx.sharpwsgi_build = 'JIT (%s)' % report.shown_path(a.sharpwsgi)
    else:
        ctx.sharpwsgi_build = 'NativeAOT (%s)' % report.shown_path(a.sharpwsgi)
    help_text = subprocess.run([ctx.sharpwsgi, '--help'], capture_output=True, text=True).stdout
    ctx.sharpwsgi_workers = '--workers' in help_text
    notes = []
    if not ctx.sharpwsgi_workers:
        notes.append('This sharpwsgi build has no --workers option: SharpWsgi ran as ONE process '
                     '(%d threads) while the peers ran %d processes.' % (a.threads, a.procs))

    ctx.apps_dir = os.path.join(ctx.tmp, 'apps')
    shutil.copytree(os.path.join(BENCH, 'apps'), ctx.apps_dir, ignore=shutil.ignore_patterns('__pycache__'))
    for root, dirs, files in os.walk(ctx.tmp):
        os.chmod(root, 0o755)  # readable by apache's www-data children too

    # PostgreSQL for the database apps: started once for the whole run, always stopped and removed.
    ctx.db = None
    ctx.app_env = {}
    saved = {sig: signal.signal(sig, _interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        if any(app in S.DATABASE_APPS and any(s.supports(app) for s in chosen) for app in ctx.apps):
            start_database(ctx)
        if a.check:
            return check(ctx, chosen)
        return measure(ctx, a, chosen, notes, argv)
    finally:
        if ctx.db:
            print('stopping PostgreSQL (pid %s)' % ctx.db.pid, flush=True)
            ctx.db.stop()
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _interrupted(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)  # unwinds like Ctrl-C: servers and PostgreSQL are stopped


def start_database(ctx):
    t0 = time.monotonic()
    ctx.db = database.Postgres(free_port(), say=lambda m: print(m, flush=True))
    ctx.db.start()
    database.prepare_django(os.path.join(ctx.apps_dir, 'djangopg'), ctx.db, say=lambda m: print(m, flush=True))
    ctx.app_env['djangopg'] = ctx.db.env()
    print('PostgreSQL ready, djangopg migrated and seeded in %.1f s' % (time.monotonic() - t0), flush=True)


def measure(ctx, a, chosen, notes, argv):
    runs_total = sum(1 for app in ctx.apps for s in chosen if s.supports(app)) * a.rounds
    eta = runs_total * (a.warmup + a.duration + 2.5)
    print('SharpWsgi bench: %d apps x %d servers x %d rounds = %d runs, about %d min'
          % (len(ctx.apps), len(chosen), a.rounds, runs_total, round(eta / 60)), flush=True)
    for n in notes:
        print('note: ' + n, flush=True)

    started = datetime.datetime.now()
    meta = {
        'date': started.strftime('%Y-%m-%d %H:%M'),
        'command': a.command or ' '.join(['bench/lib/suite.py'] + argv),
        'settings': {k: getattr(a, k) for k in ('procs', 'threads', 'rounds', 'duration', 'warmup', 'connections',
                                                'wrk_threads', 'quick', 'connection_close')},
        'apps': ctx.apps,
        'servers': [{'key': s.key, 'label': s.label, 'shape': s.shape(ctx), 'peer': s.peer, 'ceiling': s.ceiling,
                     'note': s.note, **({'variant_of': s.variant_of} if s.variant_of else {})}
                    for s in chosen if any(s.supports(app) for app in ctx.apps)],
        # where an app runs a server differently (uWSGI with threads for djangopg)
        'app_servers': {app: list(S.APP_SERVERS[app]) for app in ctx.apps if app in S.APP_SERVERS},
        'app_shapes': {app: {s.key: s.app_shape(ctx, app) for s in chosen
                             if s.supports(app) and s.app_shape(ctx, app) != s.shape(ctx)} for app in ctx.apps},
        'sharpwsgi_workers': ctx.sharpwsgi_workers,
        'sharpwsgi_build': ctx.sharpwsgi_build,
        # SharpWsgi's medians in the baseline run, copied here so the report needs nothing but this file
        'baseline': ctx.baseline,
        'notes': notes,
        'machine': machine_info(),
        'loadavg_start': loadavg(),
        'versions': S.versions(ctx),
    }
    if ctx.db:
        meta['versions']['PostgreSQL'] = subprocess.run(
            [os.path.join(ctx.db.bin, 'postgres'), '--version'], capture_output=True, text=True).stdout.strip()
    runs = []
    done = 0
    try:
        for app in ctx.apps:
            for r in range(1, a.rounds + 1):
                for server in chosen:
                    if not server.supports(app):
                        continue
                    done += 1
                    res = run_one(ctx, server, app, r)
                    runs.append(res)
                    print('[%d/%d] %-9s round %d  %-24s %s' % (done, runs_total, app, r, server.label, describe(res)),
                          flush=True)
    except KeyboardInterrupt:
        print('interrupted: writing what was measured', flush=True)
        meta['notes'].append('The run was interrupted; some measurements are missing.')
    meta['loadavg_end'] = loadavg()
    meta['elapsed_s'] = round((datetime.datetime.now() - started).total_seconds())

    os.makedirs(a.out, exist_ok=True)
    name = a.name or (started.strftime('%Y-%m-%d') + ('-quick' if a.quick else ''))
    base = os.path.join(a.out, name)
    n = 2
    while os.path.exists(base + '.json'):
        base = os.path.join(a.out, '%s-%d' % (name, n))
        n += 1
    with open(base + '.json', 'w') as f:
        json.dump({'meta': meta, 'runs': runs}, f, indent=1)
    md, svg = report.write(base + '.json')
    print('\n' + open(md).read())
    print('results: %s\nchart:   %s\nraw:     %s' % (md, svg, base + '.json'))
    failed = [r for r in runs if 'error' in r]
    if failed:
        print('%d run(s) failed; server logs kept under %s' % (len(failed), ctx.tmp))
    else:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 0


def check(ctx, chosen):
    failures = 0
    for app in ctx.apps:
        for server in chosen:
            if not server.supports(app):
                continue
            workdir = tempfile.mkdtemp(prefix='%s-%s-' % (server.key, app), dir=ctx.tmp)
            os.chmod(workdir, 0o755)
            proc, port, launch, startup_ms, error = start(ctx, server, app, workdir)
            killed = stop(proc, launch.stop_signal)
            if error:
                failures += 1
                print('%-9s %-24s FAILED: %s' % (app, server.label, error), flush=True)
            else:
                print('%-9s %-24s ok, first 200 after %.0f ms%s' % (
                    app, server.label, startup_ms, ', %d process(es) needed SIGKILL' % killed if killed else ''),
                    flush=True)
    if not failures:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    else:
        print('server logs kept under ' + ctx.tmp)
    return 1 if failures else 0


def describe(res):
    if 'error' in res and 'req_s' not in res:
        return 'FAILED: ' + res['error'][:300]
    s = '%9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  rss %5.0f MB  cpu %6.1f us/req  start %5.0f ms' % (
        res['req_s'], res['p50_ms'], res['p99_ms'], res['peak_rss_bytes'] / 2**20,
        res['cpu_us_per_req'] or 0, res['startup_ms'])
    if res.get('other_cpu_pct', 0) > 5 or res.get('steal_pct', 0) > 5:
        s += '  (other jobs used %.0f%% of the CPU, steal %.0f%%)' % (res['other_cpu_pct'], res['steal_pct'])
    errs = res['non2xx'] + res['socket_errors']
    if errs:
        s += '  errors %d %s' % (errs, res['errors_detail'])
    if 'error' in res:
        s += '  ERROR: ' + res['error'][:200]
    return s


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
