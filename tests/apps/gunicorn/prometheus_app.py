"""prometheus_client in multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before the server starts).

  /          counts the request and answers {"pid"}
  /metrics   the metrics of every worker, merged by MultiProcessCollector (the documented exposition)
Used by tests/SharpWsgi.Tests/Functional/GunicornConfigTests.cs with tests/apps/gunicorn/prometheus.conf.py.
"""
import json
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

REQUESTS = Counter("hooks_test_requests", "Requests served")
LIVE_WORKERS = Gauge("hooks_test_live_workers", "Workers alive", multiprocess_mode="livesum")
LIVE_WORKERS.set(1)


def application(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
        return [body]
    REQUESTS.inc()
    body = json.dumps({"pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
