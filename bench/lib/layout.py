"""bench: the process layout (issue 16): start to the first 200 and RSS of the supervisor and one worker, for a
sharpwsgi command line (5 starts, median):
    python3 bench/lib/layout.py LABEL COMMAND [ARGS...]
e.g. `python3 bench/lib/layout.py launcher dist/sharpwsgi --python /usr/bin/python3`; results in
bench/results/2026-12-05-layout.md."""
import os, subprocess, sys, time, http.client, statistics, json, signal
def rss(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
def measure(cmd, env, port):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd + ['-b', f'127.0.0.1:{port}', '-w', '1', '--log-level', 'warning', '/work/main/bench/apps/hello.py'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while True:
        try:
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=1); c.request('GET', '/'); r = c.getresponse(); r.read()
            if r.status == 200: break
        except OSError: time.sleep(0.005)
    t = time.monotonic() - t0
    time.sleep(0.5)
    kids = [int(x) for x in open(f'/proc/{p.pid}/task/{p.pid}/children').read().split()]
    sup, wrk = rss(p.pid), sum(rss(k) for k in kids)
    os.killpg(p.pid, signal.SIGTERM); p.wait()
    return t, sup, wrk
label, cmd = sys.argv[1], sys.argv[2:]
env = dict(os.environ)
res = [measure(cmd, env, 18300 + i) for i in range(5)]
print(json.dumps({'label': label, 'start_ms': round(statistics.median(r[0] for r in res) * 1000), 'supervisor_mb': round(statistics.median(r[1] for r in res), 1), 'worker_mb': round(statistics.median(r[2] for r in res), 1)}))
