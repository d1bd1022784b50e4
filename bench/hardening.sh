#!/usr/bin/env bash
# Issue 17's figures, each build side by side in one run: what 16 idle non-readers of a 100 MiB response hold
# (spool on disk over time, --send-timeout 5), and what a worker frozen in a GIL-holding C call costs a side load on
# fresh connections (-w 2), and the rate of requests on fresh connections (ab, no keep-alive). About 3 minutes
# per build.
#   bench/hardening.sh [--before BIN] [--out FILE] [--no-install] [--rebuild]
# Writes what it prints to --out (e.g. bench/results/<date>-hardening.md).
set -euo pipefail
SCRIPT=bench/hardening.sh
DRIVER=bench/lib/hardening.py
source "$(dirname "$0")/lib/common.sh"
bench_parse_args "$@"
missing=()
command -v ab >/dev/null || missing+=(apache2-utils)
bench_install apache2-utils
bench_sharpwsgi
bench_lock
exec /usr/bin/python3 "$DRIVER" --sharpwsgi "$SHARPWSGI" "${ARGS[@]}"
