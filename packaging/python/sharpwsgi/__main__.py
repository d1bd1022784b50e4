"""`python -m sharpwsgi ARGS`: runs the sharpwsgi executable with ARGS, embedding this interpreter."""

import os
import sys

from sharpwsgi import find_sharpwsgi_bin

# Read by the executable's interpreter choice (PythonLocator.LauncherVariable): below --python, above the rest.
LAUNCHER_VARIABLE = "SHARPWSGI_LAUNCHER_PYTHON"


def main() -> None:
    try:
        executable = find_sharpwsgi_bin()
    except FileNotFoundError as e:
        print(f"sharpwsgi: error: {e}", file=sys.stderr)
        sys.exit(1)
    env = dict(os.environ)
    env[LAUNCHER_VARIABLE] = sys.executable
    # exec, not a child: signals from a supervisor (systemd, docker) reach the server itself.
    os.execve(executable, [executable, *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
