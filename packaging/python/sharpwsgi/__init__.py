"""SharpWsgi, a WSGI server: this package finds the native `sharpwsgi` executable installed beside it.

The server itself is the executable (pip installs it in the environment's scripts directory, venv/bin);
`python -m sharpwsgi` runs it with this interpreter embedded. Inside the server, `import sharpwsgi` gives the
server's runtime module instead (it is put in sys.modules before the app loads); RequestTimeout is defined here
too, so code that names it (`except sharpwsgi.RequestTimeout`) also imports outside the server.
"""

import os
import sys
import sysconfig

__version__ = "@VERSION@"
__all__ = ["__version__", "find_sharpwsgi_bin", "RequestTimeout"]


class RequestTimeout(BaseException):
    "Raised inside a request's Python thread when it runs past --request-timeout; the client already got 504."


def find_sharpwsgi_bin() -> str:
    """The path of the `sharpwsgi` executable that was installed with this package."""
    name = "sharpwsgi"
    candidates = [sysconfig.get_path("scripts")]
    # pip install --user puts scripts in the user scheme's directory.
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        candidates.append(sysconfig.get_path("scripts", scheme=user_scheme))
    # pip install --target/--prefix: <prefix>/lib/pythonX.Y/site-packages/sharpwsgi -> <prefix>/bin.
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.join(here, "..", "..", "..", "..", "bin"))
    candidates.append(os.path.join(here, "..", "bin"))
    for directory in candidates:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    raise FileNotFoundError(
        f"the sharpwsgi executable was not found (looked in {', '.join(map(os.path.normpath, candidates))}); "
        f"reinstall it with {sys.executable} -m pip install --force-reinstall sharpwsgi"
    )
