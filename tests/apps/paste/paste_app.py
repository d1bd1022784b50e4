"""A PasteDeploy app factory for PasteTests: answers with the settings its config section gave it."""
import logging

log = logging.getLogger("paste_app")


def make_app(global_conf, greeting="hello", **settings):
    def application(environ, start_response):
        log.warning("paste_app answered %s", environ["PATH_INFO"])
        body = ("%s from %s\n" % (greeting, global_conf.get("__file__", "?"))).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return application
