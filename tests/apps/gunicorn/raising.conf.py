# Hooks that raise, on both sides, and a server that must keep serving. Tests/SharpWsgi.Tests/.../GunicornConfigTests.
workers = 1


def pre_fork(server, worker):
    raise RuntimeError("pre_fork failed on purpose")


def child_exit(server, worker):
    {}["no such key"]


def pre_request(worker, req):
    if req.path == "/refused":
        raise PermissionError("pre_request refused " + req.path)


def post_request(worker, req, environ, resp):
    1 / 0
