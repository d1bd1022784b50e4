#!/usr/bin/env bash
# SharpWsgi --interpreters benchmark (issue 11): one worker with 2 interpreters vs 2 workers vs gunicorn gthread -w 2,
# hello and flask, on the same pyenv CPython (3.13, else 3.12) for every row.
#
#   bench/interpreters.sh           wrk -c64, 10 s per row after a 3 s warm-up (about 2 min)
#   bench/interpreters.sh --quick   smoke test: 2 s runs, nothing written
#   bench/interpreters.sh --help    every option (--python, --procs, --threads, --connections, --duration)
#
# Needs wrk and Debian's python3-flask and gunicorn (pure Python, used from /usr/lib/python3/dist-packages on the
# pyenv interpreter); publishes sharpwsgi (NativeAOT) if dist/sharpwsgi is missing, then runs
# bench/lib/interpreters.py under /tmp/sharpwsgi-bench.lock. Results: bench/results/<date>-interpreters.md and .json.
#   --no-install   never call apt-get (fail if a package is missing)
#   --rebuild      publish sharpwsgi again even if the binary exists
set -euo pipefail

SCRIPT=bench/interpreters.sh
DRIVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/interpreters.py"
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
bench_parse_args "$@"

PACKAGES=(wrk gunicorn python3-flask)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -f /usr/lib/python3/dist-packages/gunicorn/__init__.py ] || missing+=(gunicorn)
[ -f /usr/lib/python3/dist-packages/flask/__init__.py ] || missing+=(python3-flask)
bench_install "${PACKAGES[@]}"

bench_sharpwsgi

COMMAND="bench/interpreters.sh${*:+ $*}"
bench_lock
say "running the --interpreters benchmark"
/usr/bin/python3 "$DRIVER" --sharpwsgi "$SHARPWSGI" --command "$COMMAND" "${ARGS[@]+"${ARGS[@]}"}"
