#!/usr/bin/env bash
# SharpWsgi static-file benchmark (issue 9): one command from a clean clone on Debian 12.
#
#   bench/static.sh           a 10 KB and a 1 MB file, wrk -c64 over keep-alive, 3 rounds of 10 s (about 4 min):
#                             sharpwsgi --static vs nginx (sendfile) vs whitenoise on gunicorn gthread
#   bench/static.sh --quick   smoke test: 1 round, 2 s runs
#   bench/static.sh --servers sharpwsgi,sharpwsgi-copy,nginx
#                             adds sharpwsgi --no-sendfile (the body copied through Kestrel, as on TLS and HTTP/2)
#   bench/static.sh --help    every option
#
# It installs the peers from Debian when they are missing, publishes sharpwsgi (NativeAOT) if dist/sharpwsgi is
# missing, then runs bench/lib/static.py under /tmp/sharpwsgi-bench.lock so two benchmarks never overlap.
# Results: bench/results/<date>-static.md and .json. Options of this script (the rest go to the driver):
#   --no-install   never call apt-get (fail if a peer is missing)
#   --rebuild      publish sharpwsgi again even if the binary exists
set -euo pipefail

SCRIPT=bench/static.sh
DRIVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/static.py"
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
bench_parse_args "$@"

# ---- peers and tools from Debian --------------------------------------------------------------------
PACKAGES=(nginx wrk gunicorn python3-whitenoise)
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
/usr/bin/python3 -c 'import gunicorn' 2>/dev/null || missing+=(gunicorn)
/usr/bin/python3 -c 'import whitenoise' 2>/dev/null || missing+=(python3-whitenoise)
bench_install "${PACKAGES[@]}"

bench_sharpwsgi

# ---- the run ---------------------------------------------------------------------------------------
COMMAND="bench/static.sh${*:+ $*}"
bench_lock
say "running the static-file benchmark"
/usr/bin/python3 "$DRIVER" --sharpwsgi "$SHARPWSGI" --command "$COMMAND" "${ARGS[@]+"${ARGS[@]}"}"
