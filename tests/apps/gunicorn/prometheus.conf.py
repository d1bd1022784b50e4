# prometheus_client's multiprocess mode behind gunicorn, as its documentation sets it up: PROMETHEUS_MULTIPROC_DIR is
# set in the environment before the server starts, and the master's child_exit hook marks a dead worker's files.
# Used by tests/SharpWsgi.Tests/Functional/GunicornConfigTests.cs.
from prometheus_client import multiprocess

workers = 2


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
    server.log.info("marked worker %s dead", worker.pid)
