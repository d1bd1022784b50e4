#!/usr/bin/python3
"""Turns a results JSON written by suite.py into Markdown tables and an SVG chart (stdlib only).

    python3 bench/lib/report.py bench/results/2026-11-23.json   # rewrites the .md and .svg beside it
    python3 bench/lib/report.py --baseline bench/results/X.json bench/results/Y.json   # issue 7's baseline: X

Issue 7's targets compare SharpWsgi with a baseline run: the one whose medians suite.py copied into the
results (meta.baseline), else --baseline, else DEFAULT_BASELINE.
"""
import argparse
import html
import json
import os
import statistics
import sys

PALETTE = {
    'sharpwsgi': '#d62728',
    'gunicorn-sync': '#9467bd',
    'gunicorn-gthread': '#1f77b4',
    'uwsgi': '#2ca02c',
    'mod_wsgi': '#8c564b',
    'waitress': '#e377c2',
    'kestrel': '#7f7f7f',
    'uwsgi-http11': '#bcbd22',
    'sharpwsgi-t1': '#ff9896',
}

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# The run issue 7 calls "today's": its SharpWsgi medians are what "no slower than the baseline" means.
DEFAULT_BASELINE = 'bench/results/2026-11-23-3.json'
BASELINE_FIELDS = ('req_s', 'p99_ms', 'rss_mb', 'cpu_us', 'rounds')
# builds of runs written before suite.py recorded meta.sharpwsgi_build (from the commits that added them)
KNOWN_BUILDS = {'bench/results/2026-11-23-3.json': 'NativeAOT (dist/sharpwsgi)'}
# Issue 7's targets hold at these settings (bench/run.sh's defaults: -w 2 and SharpWsgi's default threads).
ISSUE7_SETTINGS = {'procs': 2, 'threads': 4}

APP_DESCRIPTION = {
    'djangopg': 'djangopg: Django (DEBUG off) on PostgreSQL through psycopg2 over a unix socket, four ORM queries '
                '(a filtered select_related join, a grouped annotate, an aggregate, a count) and a template, '
                '3.8 KB of HTML; persistent connections (CONN_MAX_AGE=None, one per server thread); every server at '
                'the same processes × threads (uWSGI with --threads)',
}

TARGETS_NOTE = 'SharpWsgi must be at -w P (the peers\' process count) for them to count'
TARGETS7_NOTE = 'at P = 2 processes with the default threads, all from this one run'


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(data):
    """{app: {server: summary}} with medians over the successful rounds."""
    out = {}
    for app in data['meta']['apps']:
        out[app] = {}
        for s in data['meta']['servers']:
            runs = [r for r in data['runs'] if r['app'] == app and r['server'] == s['key']]
            if not runs:
                continue
            ok = [r for r in runs if 'req_s' in r]
            summary = {'rounds': len(ok), 'failed': len(runs) - len(ok),
                       'errors': [r['error'] for r in runs if 'error' in r],
                       'after_probe': [r['after_probe'] for r in runs if 'after_probe' in r]}
            if ok:
                rps = [r['req_s'] for r in ok]
                summary.update({
                    'req_s': median(rps),
                    'req_s_min': min(rps),
                    'req_s_max': max(rps),
                    'p50_ms': median([r['p50_ms'] for r in ok]),
                    'p99_ms': median([r['p99_ms'] for r in ok]),
                    'non2xx': sum(r['non2xx'] for r in ok),
                    'socket_errors': sum(r['socket_errors'] for r in ok),
                    'requests': sum(r['requests'] for r in ok),
                    'rss_mb': median([r['peak_rss_bytes'] / 2**20 for r in ok]),
                    'pss_mb': median([r['peak_pss_bytes'] / 2**20 for r in ok]),
                    'processes': max(r['processes'] for r in ok),
                    'cpu_us': median([r['cpu_us_per_req'] for r in ok]),
                    'other_cpu': median([r.get('other_cpu_pct') for r in ok]),
                    'steal': median([r.get('steal_pct') for r in ok]),
                    'read_errors': sum(r['errors_detail']['read'] for r in ok),
                    'db_cpu_us': median([r.get('db_cpu_us_per_req') for r in ok]),
                    'db_cpu_pct': median([r.get('db_cpu_pct') for r in ok]),
                })
            starts = [r['startup_ms'] for r in runs if r.get('startup_ms') is not None]
            if starts:
                summary.update({'start_ms': median(starts), 'start_min': min(starts), 'start_max': max(starts)})
            out[app][s['key']] = summary
    return out


def best_peer(meta, per_app):
    best = None
    for s in meta['servers']:
        if s['peer'] and per_app.get(s['key'], {}).get('req_s'):
            if best is None or per_app[s['key']]['req_s'] > per_app[best]['req_s']:
                best = s['key']
    return best


def fmt_num(v, digits=0):
    if v is None:
        return '–'
    return '{:,.{d}f}'.format(v, d=digits)


def fmt_ratio(a, b):
    if not a or not b:
        return '–'
    return '%.2f×' % (a / b)


# labels of servers a run may not include (results written before sharpwsgi-t1 existed, a run of a few servers)
LABELS = {'sharpwsgi': 'SharpWsgi', 'sharpwsgi-t1': 'SharpWsgi --threads 1', 'gunicorn-sync': 'gunicorn sync',
          'gunicorn-gthread': 'gunicorn gthread', 'uwsgi': 'uWSGI --http-socket', 'kestrel': 'plain Kestrel (ceiling)'}


def label_of(meta, key):
    for s in meta['servers']:
        if s['key'] == key:
            return s['label']
    return LABELS.get(key, key)


def targets(meta, agg):
    """Lines checking the issue's targets with this run's medians."""
    lines = []

    def get(app, key, field='req_s'):
        return agg.get(app, {}).get(key, {}).get(field)

    def check(name, value, goal, ok, detail=''):
        if value is None:
            lines.append('| %s | %s | not measured in this run | – |' % (name, goal))
        else:
            lines.append('| %s | %s | %s | %s |' % (name, goal, value + (' ' + detail if detail else ''),
                                                   'met' if ok else '**missed**'))

    def vs_best(app, goal_ratio, name):
        sw, b = get(app, 'sharpwsgi'), best_peer(meta, agg.get(app, {}))
        if sw and b:
            r = sw / get(app, b)
            check(name, '%.2f×' % r, '≥ %.1f× best peer' % goal_ratio, r >= goal_ratio,
                  '(best peer: %s)' % label_of(meta, b))
        else:
            check(name, None, '≥ %.1f× best peer' % goal_ratio, False)

    vs_best('hello', 3.5, 'hello vs best peer')
    sw, k = get('hello', 'sharpwsgi'), get('hello', 'kestrel')
    check('hello vs plain Kestrel', '%.2f×' % (sw / k) if sw and k else None, '≥ 0.9× plain Kestrel',
          bool(sw and k and sw / k >= 0.9))
    vs_best('flask', 1.6, 'flask vs best peer')
    for app in ('echo10k', 'stream100'):
        vs_best(app, 1.0, '%s ahead of every peer' % app)
    sw, g = get('sleep10ms', 'sharpwsgi'), get('sleep10ms', 'gunicorn-gthread')
    check('sleep10ms vs gunicorn gthread', '%.2f×' % (sw / g) if sw and g else None, '> 1.0× (equal threads)',
          bool(sw and g and sw > g))
    for app in meta['apps']:
        if app == 'flask':
            continue  # plain Kestrel's flask row runs no Python: no fair latency ceiling
        if 'kestrel' not in meta.get('app_servers', {}).get(app, ['kestrel']):
            continue  # an app plain Kestrel does not serve (djangopg)
        a, b = get(app, 'sharpwsgi', 'p99_ms'), get(app, 'kestrel', 'p99_ms')
        check('p99 vs plain Kestrel: %s' % app, '%.2f× (%.2f vs %.2f ms)' % (a / b, a, b) if a and b else None,
              '≤ 1.5× plain Kestrel', bool(a and b and a / b <= 1.5),
              '(Kestrel sleeps asynchronously, with no thread limit: P×T threads cannot match it)'
              if app == 'sleep10ms' else '')
    for app in meta['apps']:
        a = get(app, 'sharpwsgi', 'rss_mb')
        gs = [(get(app, k, 'rss_mb'), k) for k in ('gunicorn-sync', 'gunicorn-gthread') if get(app, k, 'rss_mb')]
        if a and gs:
            g, k = min(gs)
            check('total RSS vs gunicorn: %s' % app, '%.2f× (%.0f vs %.0f MB, %s)' % (a / g, a, g, label_of(meta, k)),
                  '≤ 1.0× gunicorn at equal workers', a <= g)
    st = get('hello', 'sharpwsgi', 'start_ms')
    check('start to first 200 (hello)', '%.0f ms' % st if st else None, '≤ 500 ms', bool(st and st <= 500))
    return lines


def shown_path(path):
    path = os.path.realpath(path)
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path


def baseline_summary(path):
    """What issue 7 needs from a baseline run: its SharpWsgi medians per app, and how it was run."""
    with open(path) as f:
        data = json.load(f)
    meta = data['meta']
    agg = aggregate(data)
    return {
        'file': shown_path(path),
        'date': meta['date'],
        'command': meta['command'],
        'settings': meta['settings'],
        'sharpwsgi_version': meta['versions'].get('SharpWsgi', '?'),
        'sharpwsgi_build': meta.get('sharpwsgi_build') or KNOWN_BUILDS.get(shown_path(path)),
        'sharpwsgi': {app: {k: agg[app]['sharpwsgi'].get(k) for k in BASELINE_FIELDS}
                      for app in meta['apps'] if agg[app].get('sharpwsgi', {}).get('req_s')},
    }


def _row(number, name, goal, value, ok):
    """A row of issue 7's table: | # | target | goal | this run | met/missed |; ok None: a figure, no target."""
    if value is None:
        return '| %s | %s | %s | not measured in this run | – |' % (number, name, goal)
    verdict = '–' if ok is None else 'met' if ok else '**missed**'
    return '| %s | %s | %s | %s | %s |' % (number, name, goal, value, verdict)


def targets7_notes(meta, baseline, baseline_is_self):
    """Caveats printed above issue 7's table: settings, the baseline and the builds compared."""
    st = meta['settings']
    notes = []
    off = ['%s = %s' % (k, st.get(k)) for k, v in ISSUE7_SETTINGS.items() if st.get(k) != v]
    if off or not meta.get('sharpwsgi_workers', True):
        notes.append('Issue 7\'s targets are defined at P = %d with the default %d threads; this run used %s: '
                     'they do not count.' % (ISSUE7_SETTINGS['procs'], ISSUE7_SETTINGS['threads'],
                                             ', '.join(off) or 'one SharpWsgi process'))
    if st.get('rounds', 0) < 3 or st.get('duration', 0) < 5:
        notes.append('%d round(s) of %d s: too short for the targets to count; the rows show that they render.'
                     % (st.get('rounds', 0), st.get('duration', 0)))
    if baseline is None:
        notes.append('No baseline run: the rows comparing with it are not measured.')
        return notes
    build = meta.get('sharpwsgi_build') or 'not recorded'
    text = ('Baseline ("today\'s"): `%s` (%s, `%s`, %s, build %s); SharpWsgi in this run: %s, build %s.' % (
        baseline['file'], baseline['date'], baseline['command'], baseline['sharpwsgi_version'],
        baseline.get('sharpwsgi_build') or 'not recorded', meta['versions'].get('SharpWsgi', '?'), build))
    if baseline_is_self:
        text += ' This run is the baseline: its ratios to it are 1.'
    notes.append(text)
    if build.startswith('JIT') and not (baseline.get('sharpwsgi_build') or 'JIT').startswith('JIT'):
        notes.append('This run measured the JIT build, the baseline %s (the faster build, README.md): '
                     'ratios to the baseline are not like for like.' % baseline['sharpwsgi_build'])
    bst = baseline.get('settings', {})
    differ = ['%s %s vs %s' % (k, st.get(k), bst.get(k)) for k in
              ('procs', 'threads', 'connections', 'wrk_threads', 'duration', 'warmup', 'rounds')
              if k in bst and st.get(k) != bst.get(k)]
    if differ:
        notes.append('The baseline ran with other settings (%s): ratios to it are not like for like.'
                     % ', '.join(differ))
    return notes


def targets7(meta, agg, baseline):
    """Rows checking issue 7's targets with this run's medians (and the baseline run's SharpWsgi)."""
    lines = []

    def get(app, key, field='req_s'):
        return agg.get(app, {}).get(key, {}).get(field)

    def base(app, field='req_s'):
        return ((baseline or {}).get('sharpwsgi', {}).get(app) or {}).get(field)

    def versus(number, name, goal, a, b, limit, higher, unit, digits, label_b=''):
        """SharpWsgi's a against b: met when a/b >= limit (higher is better) or <= limit (lower is)."""
        if not a or not b:
            lines.append(_row(number, name, goal, None, False))
            return
        r = a / b
        value = '%.2f× (%s vs %s %s%s)' % (r, fmt_num(a, digits), fmt_num(b, digits), unit,
                                           ', ' + label_b if label_b else '')
        lines.append(_row(number, name, goal, value, r >= limit if higher else r <= limit))

    t1 = label_of(meta, 'sharpwsgi-t1')
    uw = label_of(meta, 'uwsgi')
    # 1. flask latency: threads must not cost more than 20% of p99, and no worse than uWSGI's single-threaded workers
    versus(1, 'flask p99 vs %s' % t1, '≤ 1.2× %s' % t1, get('flask', 'sharpwsgi', 'p99_ms'),
           get('flask', 'sharpwsgi-t1', 'p99_ms'), 1.2, False, 'ms', 2)
    versus(1, 'flask p99 vs uWSGI', '≤ 1.0× %s' % uw, get('flask', 'sharpwsgi', 'p99_ms'),
           get('flask', 'uwsgi', 'p99_ms'), 1.0, False, 'ms', 2)
    # 2. what threads buy must stay
    versus(2, 'sleep10ms vs baseline', '≥ 0.95× baseline', get('sleep10ms', 'sharpwsgi'), base('sleep10ms'),
           0.95, True, 'req/s', 0)
    # 3. flask throughput and CPU
    b = best_peer(meta, agg.get('flask', {}))
    peers = [s for s in meta['servers'] if s['peer'] and agg.get('flask', {}).get(s['key'], {}).get('req_s')]
    every = 5  # gunicorn sync and gthread, uWSGI, mod_wsgi, waitress
    who = ('best peer: %s%s' % (label_of(meta, b), '' if len(peers) >= every else ', of the %d peer%s in this run' % (
        len(peers), '' if len(peers) == 1 else 's'))) if b else ''
    versus(3, 'flask vs best peer', '≥ 1.6× best peer', get('flask', 'sharpwsgi'), get('flask', b) if b else None,
           1.6, True, 'req/s', 0, who)
    versus(3, 'flask CPU per request vs uWSGI', '≤ 0.8× %s' % uw, get('flask', 'sharpwsgi', 'cpu_us'),
           get('flask', 'uwsgi', 'cpu_us'), 0.8, False, 'µs/req', 1)
    # 4. the ceiling, and no app slower than the baseline
    versus(4, 'hello vs plain Kestrel', '≥ 1.0× plain Kestrel', get('hello', 'sharpwsgi'), get('hello', 'kestrel'),
           1.0, True, 'req/s', 0)
    for app in ('hello', 'static10k', 'echo10k', 'stream100', 'sleep10ms'):
        versus(4, '%s vs baseline' % app, '≥ 1.0× baseline', get(app, 'sharpwsgi'), base(app), 1.0, True, 'req/s', 0)
    # 5. memory at equal workers
    for app in ('hello', 'flask'):
        for key in ('gunicorn-gthread', 'gunicorn-sync'):
            versus(5, 'total RSS vs %s: %s' % (label_of(meta, key), app),
                   '≤ 1.0× %s at equal workers' % label_of(meta, key), get(app, 'sharpwsgi', 'rss_mb'),
                   get(app, key, 'rss_mb'), 1.0, False, 'MB', 0)
    # 6. djangopg: reported, no target
    others = ('gunicorn-gthread', 'uwsgi')
    for field, what, unit, digits in (('req_s', 'req/s', 'req/s', 0), ('p99_ms', 'p99', 'ms', 2),
                                      ('rss_mb', 'total RSS', 'MB', 0)):
        sw = get('djangopg', 'sharpwsgi', field)
        parts = ['÷ %s (%s): %s' % (label_of(meta, k), fmt_num(get('djangopg', k, field), digits),
                                    fmt_ratio(sw, get('djangopg', k, field)))
                 for k in others if get('djangopg', k, field)]
        value = None
        if sw:
            value = '%s %s; %s' % (fmt_num(sw, digits), unit, '; '.join(parts) if parts else 'no peer measured')
        lines.append(_row(6, 'djangopg %s' % what, 'reported, no target', value, None))
    return lines


def markdown(data, agg, svg_name, baseline=None, baseline_is_self=False):
    meta = data['meta']
    st = meta['settings']
    out = ['# SharpWsgi side-by-side benchmark — %s' % meta['date'], '']
    out.append('`%s`' % meta['command'])
    out.append('')
    out.append('wrk -t%d -c%d, %d s measured after %d s warm-up, %d round(s) interleaved (A B C … A B C), '
               'median shown; '
               'P = %d processes, T = %d threads where a server has threads; every server on 127.0.0.1 with %s. '
               'Run took %d min.' % (st['wrk_threads'], st['connections'], st['duration'], st['warmup'], st['rounds'],
                                     st['procs'], st['threads'], meta['versions'].get('Python', 'python3'),
                                     round(meta.get('elapsed_s', 0) / 60)))
    out.append('')
    for n in meta['notes']:
        out.append('> **Note:** ' + n)
        out.append('')
    dirty = [r for r in data['runs'] if (r.get('other_cpu_pct') or 0) + (r.get('steal_pct') or 0) > 10]
    if dirty:
        worst = max((r.get('other_cpu_pct') or 0) + (r.get('steal_pct') or 0) for r in dirty)
        out.append('> **Warning:** other jobs on the machine (or the hypervisor, as steal time) took more than 10%% of '
                   'the CPU during %d of %d runs (up to %.0f%%; load average %s at the start, %s at the end): those '
                   'numbers are depressed and noisier. See the "other jobs / steal CPU" column.' % (
                       len(dirty), len(data['runs']), worst, meta.get('loadavg_start', '?'),
                       meta.get('loadavg_end', '?')))
        out.append('')
    if st.get('quick'):
        out.append('> **Quick mode** (smoke test): one short round; the numbers are indicative only.')
        out.append('')

    out.append('![req/s and p99 latency per app and server](%s)' % svg_name)
    out.append('')

    # summary
    out.append('## Summary')
    out.append('')
    out.append('| app | SharpWsgi req/s | best peer | best peer req/s | SharpWsgi ÷ best peer | plain Kestrel req/s | '
               'SharpWsgi ÷ Kestrel | SharpWsgi p99 ms | Kestrel p99 ms |')
    out.append('|---|---:|---|---:|---:|---:|---:|---:|---:|')
    for app in meta['apps']:
        a = agg[app]
        sw = a.get('sharpwsgi', {})
        k = a.get('kestrel', {})
        b = best_peer(meta, a)
        br = a[b]['req_s'] if b else None
        out.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            app, fmt_num(sw.get('req_s')), label_of(meta, b) if b else '–', fmt_num(br),
            fmt_ratio(sw.get('req_s'), br), fmt_num(k.get('req_s')), fmt_ratio(sw.get('req_s'), k.get('req_s')),
            fmt_num(sw.get('p99_ms'), 2), fmt_num(k.get('p99_ms'), 2)))
    out.append('')
    if 'sharpwsgi' in {s['key'] for s in meta['servers']}:
        out.append('### Issue 7 targets (%s)' % TARGETS7_NOTE)
        out.append('')
        for n in targets7_notes(meta, baseline, baseline_is_self):
            out.append('> ' + n)
            out.append('')
        out.append('| # | target | goal | this run | |')
        out.append('|---|---|---|---|---|')
        out.extend(targets7(meta, agg, baseline))
        out.append('')
        out.append('### Issue 4 targets (%s)' % TARGETS_NOTE)
        out.append('')
        out.append('| target | goal | this run | |')
        out.append('|---|---|---|---|')
        out.extend(targets(meta, agg))
        out.append('')

    # per app
    out.append('## Per app')
    out.append('')
    out.append('req/s spread = (max − min) / median over the rounds. Errors are summed over the rounds. RSS and PSS '
               'are the peak of the sum over all the server\'s processes during the measured run (RSS counts pages '
               'shared between forked workers once per process; PSS splits them). CPU µs/req = user+system time of '
               'all the server\'s processes during the run ÷ requests. Start = process start to first correct 200. '
               'Other jobs / steal CPU = share of the machine\'s CPU used during the run by anything but the server, '
               'wrk and the driver, and the share the hypervisor gave to other machines (both should be near 0%).')
    out.append('')
    for app in meta['apps']:
        a = agg[app]
        b = best_peer(meta, a)
        br = a[b]['req_s'] if b else None
        kr = a.get('kestrel', {}).get('req_s')
        out.append('### %s' % app)
        out.append('')
        out.append('| server | processes × threads | req/s | spread | ÷ best peer | ÷ Kestrel | p50 ms | p99 ms | '
                   'non-2xx | socket errors | peak RSS MB | peak PSS MB | procs | CPU µs/req | start ms | '
                   'other jobs / steal CPU |')
        out.append('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
        for s in meta['servers']:
            x = a.get(s['key'])
            if x is None:
                continue
            shape = meta.get('app_shapes', {}).get(app, {}).get(s['key'], s['shape'])
            name = ('**%s**' % s['label']) if s['key'] == 'sharpwsgi' else s['label']
            if not x.get('req_s'):
                out.append('| %s | %s | failed: %s | | | | | | | | | | | | | |' % (
                    name, shape, (x['errors'][0] if x['errors'] else '?').replace('|', '/').replace('\n', ' ')[:200]))
                continue
            spread = (x['req_s_max'] - x['req_s_min']) / x['req_s'] * 100 if x['req_s'] else 0
            out.append('| %s | %s | %s | %.0f%% | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s |' % (
                name, shape, fmt_num(x['req_s']), spread,
                fmt_ratio(x['req_s'], br), fmt_ratio(x['req_s'], kr),
                fmt_num(x['p50_ms'], 2), fmt_num(x['p99_ms'], 2), fmt_num(x['non2xx']), fmt_num(x['socket_errors']),
                fmt_num(x['rss_mb'], 1), fmt_num(x['pss_mb'], 1), x['processes'], fmt_num(x['cpu_us'], 1),
                fmt_num(x.get('start_ms')),
                '%.0f%% / %.0f%%' % (x['other_cpu'], x['steal'] or 0) if x.get('other_cpu') is not None else '–'))
        problems = []
        for s in meta['servers']:
            x = a.get(s['key'])
            if x and x['failed'] and x.get('req_s'):
                problems.append('%s: %d of %d rounds failed (%s)' % (s['label'], x['failed'], x['failed'] + x['rounds'],
                                                                   x['errors'][0][:200]))
            if x and (x.get('requests') or 0) > 100 and x['read_errors'] >= 0.9 * x['requests'] and not x['non2xx']:
                problems.append('%s: its socket errors are read errors, one per response: it closes the connection '
                                'after every response (no keep-alive) without sending Connection: close, and wrk '
                                'counts each close as a read error; the responses themselves are complete' % s['label'])
            if x and x['after_probe']:
                problems.append('%s: after the load the probe got %s' % (s['label'], x['after_probe'][0]))
        for p in problems:
            out.append('')
            out.append('- ' + p)
        db = [(s['label'], a[s['key']]) for s in meta['servers'] if a.get(s['key'], {}).get('db_cpu_us') is not None]
        if db:
            out.append('')
            out.append('- %s. PostgreSQL runs in its own processes: its CPU and memory are in none of the columns '
                       'above '
                       '(nor in "other jobs"). Its CPU per request and share of the machine, median: %s.' % (
                           APP_DESCRIPTION.get(app, app), ', '.join('%s %s µs/req (%.0f%%)' % (
                               label, fmt_num(x['db_cpu_us'], 1), x['db_cpu_pct'] or 0) for label, x in db)))
        out.append('')

    # start-up
    if 'hello' in agg:
        out.append('## Start-up: process start to first 200 (hello)')
        out.append('')
        out.append('| server | median ms | min ms | max ms |')
        out.append('|---|---:|---:|---:|')
        for s in meta['servers']:
            x = agg['hello'].get(s['key'])
            if x and x.get('start_ms') is not None:
                out.append('| %s | %s | %s | %s |' % (s['label'], fmt_num(x['start_ms']), fmt_num(x['start_min']),
                                                     fmt_num(x['start_max'])))
        out.append('')

    out.append('## Servers')
    out.append('')
    for s in meta['servers']:
        shape = s['shape'] + ''.join('; %s: %s' % (app, shapes[s['key']])
                                     for app, shapes in meta.get('app_shapes', {}).items() if s['key'] in shapes)
        out.append('- **%s** (%s)%s' % (s['label'], shape, ': ' + s['note'] if s['note'] else ''))
    out.append('')
    out.append('## Machine and versions')
    out.append('')
    m = meta['machine']
    out.append('- machine: %s, %s cores, %s RAM, %s, kernel %s' % (m['cpu'], m['cores'], m['memory'], m['os'],
                                                                  m['kernel']))
    for k, v in meta['versions'].items():
        out.append('- %s: %s' % (k, v))
    out.append('- wrk runs on the same machine: with -t1 it takes about one of the cores, so the servers share '
               'the rest.')
    out.append('')
    return '\n'.join(out) + '\n'


# ---------------------------------------------------------------- SVG

def svg_chart(data, agg):
    meta = data['meta']
    servers = meta['servers']
    apps = meta['apps']
    bar_h, gap = 14, 3
    label_w, panel_w, value_w = 190, 300, 90
    left_x = label_w
    right_x = label_w + panel_w + value_w + 30
    width = right_x + panel_w + value_w
    y = 58
    parts = []
    legend_x, legend_y = 10, 30
    for s in servers:
        item_w = 26 + 6.6 * len(s['label'])
        if legend_x + item_w > width:
            legend_x, legend_y = 10, legend_y + 16
            y += 16
        parts.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>' % (
            legend_x, legend_y, PALETTE.get(s['key'], '#333')))
        parts.append('<text x="%d" y="%d" class="s">%s</text>' % (legend_x + 14, legend_y + 9, html.escape(s['label'])))
        legend_x += item_w
    for app in apps:
        rows = [s for s in servers if s['key'] in agg[app]]
        parts.append('<text x="10" y="%d" class="h">%s</text>' % (y + 12, html.escape(app)))
        parts.append('<text x="%d" y="%d" class="s">req/s (higher is better)</text>' % (left_x, y + 12))
        parts.append('<text x="%d" y="%d" class="s">p99 latency, ms (lower is better)</text>' % (right_x, y + 12))
        y += 20
        # the scale ignores the caveat-only rows (uWSGI --http11-socket): their outliers would flatten the others
        scaled = [s for s in rows if s['peer'] or s['ceiling'] or s['key'] == 'sharpwsgi' or s.get('variant_of')]
        scaled = scaled or rows
        max_r = max([agg[app][s['key']].get('req_s') or 0 for s in scaled] + [1])
        max_p = max([agg[app][s['key']].get('p99_ms') or 0 for s in scaled] + [0.001])
        for s in rows:
            x = agg[app][s['key']]
            color = PALETTE.get(s['key'], '#333')
            weight = ' font-weight="bold"' if s['key'] == 'sharpwsgi' else ''
            parts.append('<text x="%d" y="%d" class="s" text-anchor="end"%s>%s</text>' % (
                label_w - 8, y + bar_h - 3, weight, html.escape(s['label'])))
            if not x.get('req_s'):
                parts.append('<text x="%d" y="%d" class="s">failed</text>' % (left_x, y + bar_h - 3))
                y += bar_h + gap
                continue
            w = panel_w * min(1.05, x['req_s'] / max_r)
            parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left_x, y, w, bar_h, color))
            parts.append('<text x="%.1f" y="%d" class="s">%s</text>' % (left_x + w + 4, y + bar_h - 3,
                                                                       fmt_num(x['req_s'])))
            w = panel_w * min(1.05, x['p99_ms'] / max_p)  # past the scale: a slightly longer bar, value printed
            parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.8"/>' % (
                right_x, y, w, bar_h, color))
            parts.append('<text x="%.1f" y="%d" class="s">%s</text>' % (right_x + w + 4, y + bar_h - 3,
                                                                       fmt_num(x['p99_ms'], 2)))
            y += bar_h + gap
        y += 16
    st = meta['settings']
    title = 'SharpWsgi vs WSGI peers — %s — wrk -c%d, %d s × %d rounds (median), P=%d, T=%d' % (
        meta['date'], st['connections'], st['duration'], st['rounds'], st['procs'], st['threads'])
    if not meta.get('sharpwsgi_workers', True):
        title += ' — SharpWsgi ran 1 process'
    head = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">' % (
                width, y, width, y),
            '<style>text{font-family:DejaVu Sans,Arial,sans-serif;fill:#222}.s{font-size:11px}.h{font-size:13px;'
            'font-weight:bold}.t{font-size:14px;font-weight:bold}</style>',
            '<rect width="100%" height="100%" fill="white"/>',
            '<text x="10" y="18" class="t">%s</text>' % html.escape(title)]
    return '\n'.join(head + parts + ['</svg>']) + '\n'


def write(json_path, baseline_path=None):
    """Rewrites the .md and .svg beside json_path. Issue 7's baseline: baseline_path if given ("none": no
    baseline), else the one copied into the results by suite.py, else DEFAULT_BASELINE if it exists."""
    with open(json_path) as f:
        data = json.load(f)
    agg = aggregate(data)
    if baseline_path == 'none':
        baseline = None
    elif baseline_path:
        baseline = baseline_summary(baseline_path)
    elif 'baseline' in data['meta']:
        baseline = data['meta']['baseline']  # None: the run was made with --baseline none
    elif os.path.exists(os.path.join(REPO, DEFAULT_BASELINE)):
        baseline = baseline_summary(os.path.join(REPO, DEFAULT_BASELINE))
    else:
        baseline = None
    is_self = bool(baseline) and os.path.realpath(os.path.join(REPO, baseline['file'])) == os.path.realpath(json_path)
    base = os.path.splitext(json_path)[0]
    svg_path = base + '.svg'
    md_path = base + '.md'
    with open(svg_path, 'w') as f:
        f.write(svg_chart(data, agg))
    with open(md_path, 'w') as f:
        f.write(markdown(data, agg, os.path.basename(svg_path), baseline, is_self))
    return md_path, svg_path


if __name__ == '__main__':
    cli = argparse.ArgumentParser(description='rewrites the .md and .svg beside each results JSON')
    cli.add_argument('--baseline', default=None,
                     help='results JSON issue 7 compares with ("none": none; default: the one recorded in the '
                          'results, else %s)' % DEFAULT_BASELINE)
    cli.add_argument('results', nargs='+')
    args = cli.parse_args()
    for path in args.results:
        print(*write(path, args.baseline))
