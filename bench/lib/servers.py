"""How each server under test is started: one function per server returning its command line.

Every server binds 127.0.0.1:PORT only, runs /usr/bin/python3's CPython (the interpreter itself, as gunicorn,
waitress and SharpWsgi's workers do, or its shared libpython for uWSGI and mod_wsgi) and gets the same process
count P and thread count T where it has such settings. The driver starts each one in a new session (its own process group) and stops it
by signalling that group, so only processes this suite started are ever touched.
"""
import os
import shutil
import subprocess

PYTHON = '/usr/bin/python3'

# Response each app must give to the readiness probe (status 200 and this body length).
APP_BODY_LENGTH = {
    'hello': 13,
    'flask': 61,
    'static10k': 10240,
    'echo10k': 10240,
    'stream100': 10000,
    'sleep10ms': 12,
}
# Apps checked by content instead of length: {app: (text that must appear, times)}.
APP_BODY_CONTAINS = {
    'djangopg': (('<title>Library &mdash; 2000 books</title>', 1), ('<tr class="book ', 20),
                 ('<li class="author">', 10), ('<footer>rendered by Django</footer>', 1)),
}
APP_MODULE = {
    'hello': 'hello',
    'flask': 'flask_app',
    'static10k': 'static10k',
    'echo10k': 'echo10k',
    'stream100': 'stream100',
    'sleep10ms': 'sleep10ms',
    'djangopg': 'djangopg_app',
}
APPS = list(APP_MODULE)
# Apps that run only on some servers, at equal processes AND threads (uWSGI gets --threads T for them).
APP_SERVERS = {
    'djangopg': ('sharpwsgi', 'gunicorn-gthread', 'uwsgi'),
}
# Apps that need the suite's PostgreSQL (bench/lib/database.py).
DATABASE_APPS = ('djangopg',)
# Apps the SharpWsgi --threads 1 variant (sharpwsgi-t1) runs: issue 7 compares flask's p99 with it.
SHARPWSGI_T1_APPS = ('hello', 'flask')


def check_body(app, body):
    """None if the body is the app's expected answer, else why not."""
    if app in APP_BODY_CONTAINS:
        text = body.decode('utf-8', 'replace')
        for needle, times in APP_BODY_CONTAINS[app]:
            if text.count(needle) != times:
                return 'body has %r %d times, expected %d (%d bytes: %r)' % (
                    needle, text.count(needle), times, len(body), text[:200])
        return None
    if len(body) != APP_BODY_LENGTH[app]:
        return 'body of %d bytes, expected %d' % (len(body), APP_BODY_LENGTH[app])
    return None


class Launch:
    """What to run: argv, working directory, extra environment, files to write first."""

    def __init__(self, argv, cwd=None, env=None, files=None, stop_signal='TERM'):
        self.argv = argv
        self.cwd = cwd
        self.env = env or {}
        self.files = files or {}
        self.stop_signal = stop_signal


class Server:
    def __init__(self, key, label, launch, shape, peer=True, note='', apps=None, ceiling=False, app_shape=None,
                 variant_of=None):
        self.key = key
        self.label = label
        self._launch = launch
        self.shape = shape  # function(ctx) -> "2 procs x 4 threads"
        self._app_shape = app_shape  # function(ctx, app) -> shape for that app, or None: shape(ctx)
        self.peer = peer  # counts for "best peer"
        self.note = note
        self.apps = apps  # None: all
        self.ceiling = ceiling
        self.variant_of = variant_of  # another setting of that server (sharpwsgi-t1 of sharpwsgi), never a peer

    def launch(self, ctx, app, port, workdir):
        return self._launch(ctx, app, port, workdir)

    def supports(self, app):
        if app in APP_SERVERS and self.key not in APP_SERVERS[app]:
            return False
        return self.apps is None or app in self.apps

    def app_shape(self, ctx, app):
        shape = self._app_shape(ctx, app) if self._app_shape else None
        return shape or self.shape(ctx)


def _app_file(ctx, app):
    return os.path.join(ctx.apps_dir, APP_MODULE[app] + '.py')


def _sharpwsgi(threads=None, build='sharpwsgi'):
    """SharpWsgi with T threads per process, or `threads` (the --threads 1 variant); everything else equal. `build`
    names the ctx attribute holding the binary (sharpwsgi_before: the A/B variant)."""
    def launch(ctx, app, port, workdir):
        argv = [getattr(ctx, build), '--bind', '127.0.0.1:%d' % port, '--threads', str(threads or ctx.threads),
                '--python', PYTHON]
        if ctx.sharpwsgi_workers:
            argv += ['--workers', str(ctx.procs)]
        argv += ['--log-level', 'warning', _app_file(ctx, app)]
        return Launch(argv, cwd=ctx.apps_dir)
    return launch


def _sharpwsgi_shape(threads=None):
    def shape(ctx):
        procs = ctx.procs if ctx.sharpwsgi_workers else 1
        t = threads or ctx.threads
        return '%d proc%s x %d thread%s' % (procs, '' if procs == 1 else 's', t, '' if t == 1 else 's')
    return shape


def _gunicorn(worker_class):
    def launch(ctx, app, port, workdir):
        argv = [PYTHON, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port, '--workers', str(ctx.procs),
                '--worker-class', worker_class, '--log-level', 'warning', '--chdir', ctx.apps_dir]
        if worker_class == 'gthread':
            argv += ['--threads', str(ctx.threads)]
        argv.append('%s:application' % APP_MODULE[app])
        return Launch(argv, cwd=ctx.apps_dir)
    return launch


def _uwsgi(socket_option):
    def launch(ctx, app, port, workdir):
        argv = ['uwsgi', '--plugin', 'python3', socket_option, '127.0.0.1:%d' % port,
                '--master', '--processes', str(ctx.procs), '--chdir', ctx.apps_dir,
                '--wsgi-file', _app_file(ctx, app), '--need-app', '--die-on-term', '--disable-logging',
                '--listen', '1024', '--pidfile', os.path.join(workdir, 'uwsgi.pid')]
        if app in APP_SERVERS:
            argv += ['--threads', str(ctx.threads)]  # equal processes and threads for these apps
        return Launch(argv, cwd=ctx.apps_dir, stop_signal='INT')
    return launch


def _uwsgi_threaded_shape(ctx, app):
    return '%d procs x %d threads' % (ctx.procs, ctx.threads) if app in APP_SERVERS else None


def _waitress(ctx, app, port, workdir):
    argv = [PYTHON, '-m', 'waitress', '--listen=127.0.0.1:%d' % port, '--threads=%d' % ctx.threads,
            '%s:application' % APP_MODULE[app]]
    return Launch(argv, cwd=ctx.apps_dir)


APACHE_CONF = """# generated by bench/lib/servers.py: apache2 in the foreground, mod_wsgi daemon mode
ServerRoot "/etc/apache2"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {workdir}/apache2.pid
DefaultRuntimeDir {workdir}
Mutex file:{workdir} default
ErrorLog {workdir}/apache-error.log
LogLevel warn
{user}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so

# Front end (proxies to the daemons): enough threads for the client's connections.
StartServers 2
ServerLimit 2
ThreadsPerChild 64
ThreadLimit 64
MaxRequestWorkers 128
MinSpareThreads 64
MaxSpareThreads 128
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5

WSGIRestrictEmbedded On
WSGISocketPrefix {workdir}/wsgi
WSGIDaemonProcess bench processes={procs} threads={threads} display-name=%{{GROUP}} python-path={apps}
WSGIProcessGroup bench
WSGIApplicationGroup %{{GLOBAL}}
WSGIScriptAlias / {script}
<Directory {apps}>
    Require all granted
</Directory>
"""


def _mod_wsgi(ctx, app, port, workdir):
    user = ''
    if os.geteuid() == 0:
        # apache refuses to serve as root: its children (and the daemons) switch to www-data.
        user = 'User www-data\nGroup www-data'
    conf = APACHE_CONF.format(port=port, workdir=workdir, user=user, procs=ctx.procs, threads=ctx.threads,
                              apps=ctx.apps_dir, script=_app_file(ctx, app))
    conf_path = os.path.join(workdir, 'apache2.conf')
    argv = [ctx.apache2, '-f', conf_path, '-DFOREGROUND']
    # -k start is not used: apache stays in the foreground as this suite's child; the driver stops it.
    return Launch(argv, cwd=workdir, files={conf_path: conf}, stop_signal='TERM')


def _kestrel(ctx, app, port, workdir):
    return Launch([ctx.plain_kestrel, '--bind', '127.0.0.1:%d' % port, '--app', app], cwd=workdir)


def all_servers():
    return [
        Server('sharpwsgi', 'SharpWsgi', _sharpwsgi(), _sharpwsgi_shape(), peer=False),
        # issue 7's latency reference: the same SharpWsgi and processes with one thread each (never a peer)
        Server('sharpwsgi-t1', 'SharpWsgi --threads 1', _sharpwsgi(threads=1), _sharpwsgi_shape(threads=1),
               peer=False, apps=SHARPWSGI_T1_APPS, variant_of='sharpwsgi',
               note='SharpWsgi with --threads 1, everything else equal: the latency reference of issue 7 '
                    '(%s only)' % ', '.join(SHARPWSGI_T1_APPS)),
        # --sharpwsgi-before BINARY: the same settings on another build, for an A/B of a change in one run
        Server('sharpwsgi-before', 'SharpWsgi (before)', _sharpwsgi(build='sharpwsgi_before'), _sharpwsgi_shape(),
               peer=False, variant_of='sharpwsgi',
               note='another SharpWsgi build (--sharpwsgi-before), everything else equal: the A/B of a change'),
        Server('gunicorn-sync', 'gunicorn sync', _gunicorn('sync'), lambda c: '%d procs x 1' % c.procs,
               note='sync workers close the connection after every response (no keep-alive)'),
        Server('gunicorn-gthread', 'gunicorn gthread', _gunicorn('gthread'),
               lambda c: '%d procs x %d threads' % (c.procs, c.threads)),
        Server('uwsgi', 'uWSGI --http-socket', _uwsgi('--http-socket'), lambda c: '%d procs x 1' % c.procs,
               app_shape=_uwsgi_threaded_shape),
        Server('mod_wsgi', 'mod_wsgi daemon', _mod_wsgi,
               lambda c: '%d daemons x %d threads (+apache front)' % (c.procs, c.threads),
               note='apache2 event MPM front end (2 processes) proxies to the mod_wsgi daemon processes; '
                    'all are counted'),
        Server('waitress', 'waitress', _waitress, lambda c: '1 proc x %d threads' % c.threads,
               note='waitress is single-process: it has no worker processes'),
        Server('kestrel', 'plain Kestrel (ceiling)', _kestrel, lambda c: '1 proc, no Python', peer=False, ceiling=True,
               note='no Python at all: the same response bytes written by C#; the flask row returns the route\'s '
                    'JSON as constant bytes'),
        Server('uwsgi-http11', 'uWSGI --http11-socket*', _uwsgi('--http11-socket'), lambda c: '%d procs x 1' % c.procs,
               peer=False,
               note='serves only as many keep-alive connections as it has processes and leaves the rest unaccepted: '
                    'not a fair comparison, shown for reference only'),
    ]


def versions(ctx):
    """Version strings of everything measured (best effort, never fails)."""
    def run(argv, cwd=None):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd)
            return (out.stdout + out.stderr).strip()
        except Exception as e:  # noqa: BLE001 - a missing tool is reported, not fatal
            return 'unavailable (%s)' % e

    def deb(package):
        v = run(['dpkg-query', '-W', '-f=${Version}', package])
        return v if v and 'no packages found' not in v else 'not installed'

    sharp = run([ctx.sharpwsgi, '--version']).splitlines()[0]  # the build; its python lines follow
    commit = run(['git', '-C', ctx.repo, 'rev-parse', '--short', 'HEAD'])
    dirty = run(['git', '-C', ctx.repo, 'status', '--porcelain', '--', 'src'])
    return {
        'SharpWsgi': '%s (commit %s%s)' % (sharp, commit, ', src/ has uncommitted changes' if dirty else ''),
        'Python': run([PYTHON, '--version']) + ' (' + PYTHON + ')',
        'gunicorn': deb('gunicorn'),
        'uWSGI': deb('uwsgi-core') + ' + uwsgi-plugin-python3 ' + deb('uwsgi-plugin-python3'),
        'mod_wsgi': deb('libapache2-mod-wsgi-py3') + ' on apache2 ' + deb('apache2'),
        'waitress': deb('python3-waitress'),
        'Flask': deb('python3-flask'),
        'Django': deb('python3-django'),
        'psycopg2': deb('python3-psycopg2'),
        'wrk': deb('wrk'),
        '.NET': run(['dotnet', '--version']) if shutil.which('dotnet') else 'unavailable',
    }


NGINX_HEAD = """# generated by bench/lib/{script}: nginx in the foreground, everything in its run directory
{user}worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
daemon off;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body_temp;
    proxy_temp_path {workdir}/proxy_temp;
    fastcgi_temp_path {workdir}/fastcgi_temp;
    uwsgi_temp_path {workdir}/uwsgi_temp;
    scgi_temp_path {workdir}/scgi_temp;
    # wrk's connections stay open for the whole run, as they do on SharpWsgi (nginx's default closes every 1000)
    keepalive_requests 1000000;
    keepalive_timeout 65s;
"""


def nginx_conf(script, workers, workdir, http_body):
    """A whole nginx.conf for a foreground nginx whose files all live in workdir; http_body is the rest of the
    http block (upstreams, servers). As root, nginx's workers run as www-data."""
    user = 'user www-data;\n' if os.geteuid() == 0 else ''
    return NGINX_HEAD.format(script=script, user=user, workers=workers, workdir=workdir) + http_body + '}\n'
