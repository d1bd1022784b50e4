# A gunicorn.conf.py as deployments write them: settings as globals and every server hook, each of which appends
# one JSON line (the hook, the process it ran in, what it was handed) to $HOOKS_TEST_LOG and logs "hook NAME FACTS"
# through the log object it was given, so a test can wait for the line and then read the record.
# Used by tests/SharpWsgi.Tests/Functional/GunicornConfigTests.cs.
import json
import os
import sys

RECORD = os.environ["HOOKS_TEST_LOG"]

workers = 2
threads = 2
keepalive = 7
timeout = 25
graceful_timeout = 9
max_requests = 1000
max_requests_jitter = 10
limit_request_line = 3000
forwarded_allow_ips = ["127.0.0.1", "10.0.0.0/8"]
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
loglevel = "info"
proc_name = "hooks-test"


def record(log, name, **facts):
    with open(RECORD, "a") as f:
        f.write(json.dumps(dict(hook=name, process=os.getpid(), **facts)) + "\n")
    log.info("hook %s %s", name, json.dumps(facts, sort_keys=True))


def on_starting(server):
    record(server.log, "on_starting", server_pid=server.pid, num_workers=server.num_workers,
           workers=server.cfg.workers, threads=server.cfg.threads, keepalive=server.cfg.keepalive,
           bind=server.cfg.bind, proc_name=server.cfg.proc_name)


def on_reload(server):
    record(server.log, "on_reload", num_workers=server.num_workers)


def when_ready(server):
    record(server.log, "when_ready", server_pid=server.pid, workers=sorted(server.WORKERS))


def pre_fork(server, worker):
    record(server.log, "pre_fork", age=worker.age, worker_pid=worker.pid)


def post_fork(server, worker):
    record(worker.log, "post_fork", age=worker.age, worker_pid=worker.pid, ppid=worker.ppid, server_pid=server.pid,
           app_imported="pid_app" in sys.modules)


def post_worker_init(worker):
    record(worker.log, "post_worker_init", worker_pid=worker.pid, app=repr(worker.wsgi), booted=worker.booted,
           app_imported="pid_app" in sys.modules)


def worker_int(worker):
    record(worker.log, "worker_int", worker_pid=worker.pid, alive=worker.alive)


def worker_abort(worker):
    record(worker.log, "worker_abort", worker_pid=worker.pid)


def pre_exec(server):
    record(server.log, "pre_exec")


def pre_request(worker, req):
    record(worker.log, "pre_request", worker_pid=worker.pid, method=req.method, path=req.path, query=req.query,
           uri=req.uri, version=list(req.version), headers=req.headers, nr=worker.nr)


def post_request(worker, req, environ, resp):
    record(worker.log, "post_request", worker_pid=worker.pid, path=req.path, status=resp.status,
           status_code=resp.status_code, headers=resp.headers, sent=resp.sent,
           environ_path=environ["PATH_INFO"])


def child_exit(server, worker):
    record(server.log, "child_exit", worker_pid=worker.pid, age=worker.age)


def worker_exit(server, worker):
    record(worker.log, "worker_exit", worker_pid=worker.pid, alive=worker.alive)


def nworkers_changed(server, new_value, old_value):
    record(server.log, "nworkers_changed", new=new_value, old=old_value)


def on_exit(server):
    record(server.log, "on_exit")
