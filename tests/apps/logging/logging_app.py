"""LogConfigTests' app: logs through the logger "logging_app" once while it is imported (so a test sees whether
the logging config was in place before the import) and once per request."""
import logging
import os

log = logging.getLogger("logging_app")
log.warning("imported in %d", os.getpid())


def application(environ, start_response):
    log.warning("answered %s", environ["PATH_INFO"])
    body = b"logged\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
