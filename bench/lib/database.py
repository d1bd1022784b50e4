"""The PostgreSQL the djangopg app runs against: a private cluster the suite creates for the run and removes after.

initdb into a new temp dir, listening on a unix socket in that dir only (no TCP at all), trust authentication for
the socket (only the dir's owner, and root, can reach it), the role and database `bench`. When the suite runs as
root, the cluster runs as Debian's `postgres` system user (PostgreSQL refuses to run as root). It is stopped by the
postmaster's PID (`pg_ctl stop -m fast`, then SIGQUIT and SIGKILL to that PID if it is still there) and its dir
removed, also when the suite fails or is interrupted. Only the Python standard library is used.
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

PYTHON = '/usr/bin/python3'
ROLE = 'bench'
DATABASE = 'bench'


def pg_bin():
    """Directory of PostgreSQL's server binaries: $BENCH_PG_BIN, else Debian's newest /usr/lib/postgresql/N/bin."""
    if os.environ.get('BENCH_PG_BIN'):
        return os.environ['BENCH_PG_BIN']
    found = [d for d in glob.glob('/usr/lib/postgresql/*/bin') if os.path.exists(os.path.join(d, 'initdb'))]
    if not found:
        raise RuntimeError('PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin '
                           '(apt-get install postgresql, or set BENCH_PG_BIN)')
    return max(found, key=lambda d: int(d.split('/')[-2]) if d.split('/')[-2].isdigit() else 0)


class Postgres:
    """One private PostgreSQL cluster. start() then env() for the clients; stop() always (it is idempotent)."""

    def __init__(self, port, say=print):
        self.port = port  # names the socket file (.s.PGSQL.PORT); nothing listens on TCP
        self.say = say
        self.bin = pg_bin()
        self.dir = None
        self.pid = None
        self.user = None  # (uid, gid) to run the server as, None: as ourselves
        if os.geteuid() == 0:
            pw = pwd.getpwnam('postgres')  # Debian's postgresql package creates this system user
            self.user = (pw.pw_uid, pw.pw_gid)

    @property
    def data(self):
        return os.path.join(self.dir, 'data')

    @property
    def log_path(self):
        return os.path.join(self.dir, 'postgres.log')

    def _run(self, argv, as_server=True, timeout=120):
        kwargs = {}
        if as_server and self.user:
            kwargs = {'user': self.user[0], 'group': self.user[1], 'extra_groups': []}
        env = {k: v for k, v in os.environ.items() if not k.startswith('PG')}
        env['LC_ALL'] = 'C'
        out = subprocess.run(argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout, start_new_session=True, **kwargs)
        if out.returncode != 0:
            raise RuntimeError('%s failed (exit %d): %s%s' % (' '.join(argv[:2]), out.returncode,
                                                             out.stdout[-1500:], out.stderr[-1500:]))
        return out.stdout

    def start(self):
        self.dir = tempfile.mkdtemp(prefix='sharpwsgi-bench-pg-')
        if self.user:
            os.chown(self.dir, *self.user)
        self._run([os.path.join(self.bin, 'initdb'), '-D', self.data, '-U', ROLE, '--auth=trust',
                   '--encoding=UTF8', '--locale=C', '--no-sync'])
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write("\n# sharpwsgi bench: a unix socket in the run's temp dir only\n"
                    "listen_addresses = ''\n"
                    "unix_socket_directories = '%s'\n"
                    "port = %d\n" % (self.dir, self.port))
        # pg_ctl -w returns once the server accepts connections; the postmaster runs in its own session.
        self._run([os.path.join(self.bin, 'pg_ctl'), '-D', self.data, '-l', self.log_path, '-w', '-t', '60',
                   'start'])
        with open(os.path.join(self.data, 'postmaster.pid')) as f:
            self.pid = int(f.readline())
        self._run([os.path.join(self.bin, 'createdb'), '-h', self.dir, '-p', str(self.port), '-U', ROLE, DATABASE],
                  as_server=False)
        self.say('PostgreSQL %s: pid %d, socket %s/.s.PGSQL.%d' % (
            os.path.basename(os.path.dirname(self.bin)), self.pid, self.dir, self.port))

    def env(self):
        """The environment the djangopg settings read."""
        return {'BENCH_PG_HOST': self.dir, 'BENCH_PG_PORT': str(self.port), 'BENCH_PG_NAME': DATABASE,
                'BENCH_PG_USER': ROLE}

    def _alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def stop(self):
        if self.dir is None:
            return
        if self.pid is None and os.path.exists(os.path.join(self.data, 'postmaster.pid')):
            try:  # interrupted between pg_ctl start and reading the pid
                with open(os.path.join(self.data, 'postmaster.pid')) as f:
                    self.pid = int(f.readline())
            except (OSError, ValueError):
                pass
        if self.pid is not None:
            try:
                self._run([os.path.join(self.bin, 'pg_ctl'), '-D', self.data, 'stop', '-m', 'fast', '-w', '-t', '30'],
                          timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                self.say('pg_ctl stop failed (%s); signalling PID %d' % (str(e)[:200], self.pid))
            for sig in (signal.SIGQUIT, signal.SIGKILL):
                if not self._alive():
                    break
                os.kill(self.pid, sig)
                deadline = time.monotonic() + 5
                while self._alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


def prepare_django(project_dir, pg, say=print):
    """`manage.py migrate` and `manage.py seed` (deterministic data) once, before any server runs."""
    env = dict(os.environ)
    env.update(pg.env())
    env['DJANGO_SETTINGS_MODULE'] = 'benchsite.settings'
    for command in (['migrate', '--noinput', '-v', '0'], ['seed']):
        out = subprocess.run([PYTHON, 'manage.py'] + command, cwd=project_dir, env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError('manage.py %s failed (exit %d): %s%s' % (command[0], out.returncode,
                                                                       out.stdout[-1500:], out.stderr[-1500:]))
        if out.stdout.strip():
            say('djangopg: ' + out.stdout.strip())
