#!/usr/bin/env bash
# Where a request's instructions go: each app (hello, flask, the djangopg page on SQLite) called in process by
# Debian's python3 itself, against the same app served by a SharpWsgi worker (the same python executable, loading
# _sharpwsgi.so); callgrind instructions per request split by object, and CPU per request without valgrind.
# Target (issue 16): the app's Python served costs <= 1.03x its in-process cost. About 10 minutes on 2 cores.
#   bench/appcost.sh [--apps hello,flask,django] [--count 200] [--warmup 50] [--no-install] [--rebuild]
# Writes bench/results/<date>-appcost.md and .json.
set -euo pipefail
SCRIPT=bench/appcost.sh
DRIVER=bench/lib/appcost.py
source "$(dirname "$0")/lib/common.sh"
bench_parse_args "$@"
missing=()
for p in valgrind python3-flask python3-django; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
bench_install
bench_sharpwsgi
bench_lock
exec /usr/bin/python3 "$DRIVER" --binary "$SHARPWSGI" "${ARGS[@]}"
