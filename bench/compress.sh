#!/usr/bin/env bash
# SharpWsgi compression benchmark (issue 19): one command from a clean clone on Debian 12.
#
#   bench/compress.sh           an HTML page (~200 KB) and a JSON list (~140 KB), wrk -c16 over keep-alive, 3 rounds
#                               of 10 s (about 7 min): the server CPU per request and per KB compressed, and the
#                               bytes on the wire, for sharpwsgi --compress (br, gzip) and nginx gzip (levels 1, 6),
#                               each against itself without compression
#   bench/compress.sh --quick   smoke test: 1 round, 2 s runs
#   bench/compress.sh --help    every option
#
# It installs nginx and wrk from Debian when they are missing, publishes sharpwsgi (NativeAOT) if dist/sharpwsgi is
# missing, then runs bench/lib/compress.py under /tmp/sharpwsgi-bench.lock so two benchmarks never overlap.
# Results: bench/results/<date>-compress.md and .json. Options of this script (the rest go to the driver):
#   --no-install   never call apt-get (fail if a peer is missing)
#   --rebuild      publish sharpwsgi again even if the binary exists
set -euo pipefail

SCRIPT=bench/compress.sh
DRIVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/compress.py"
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
bench_parse_args "$@"

PACKAGES=(nginx wrk)
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
bench_install "${PACKAGES[@]}"

bench_sharpwsgi

COMMAND="bench/compress.sh${*:+ $*}"
bench_lock
say "running the compression benchmark"
/usr/bin/python3 "$DRIVER" --sharpwsgi "$SHARPWSGI" --command "$COMMAND" "${ARGS[@]+"${ARGS[@]}"}"
