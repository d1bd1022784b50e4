#!/usr/bin/env bash
# SharpWsgi edge benchmark (issue 8): TLS and HTTP/2, one command from a clean clone on Debian 12.
#
#   bench/edge.sh             TLS run (hello, flask: SharpWsgi vs nginx+gunicorn vs nginx+uWSGI, wrk over https)
#                             and HTTP/2 run (h2load: h2, h2c, HTTP/1.1), 3 rounds, about 6 min on 2 cores
#   bench/edge.sh --quick     smoke test: 1 round, 2 s runs (about 1 min)
#   bench/edge.sh --help      every option
#
# It installs the tools from Debian when they are missing, publishes sharpwsgi (NativeAOT) if dist/sharpwsgi is
# missing, then runs bench/lib/edge.py under /tmp/sharpwsgi-bench.lock so two benchmarks never overlap.
# Results: bench/results/<date>-edge.md and .json (raw rounds). Options of this script (the rest go to the driver):
#   --no-install   never call apt-get (fail if a tool is missing)
#   --rebuild      publish sharpwsgi again even if the binary exists
set -euo pipefail

SCRIPT=bench/edge.sh
DRIVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/edge.py"
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
bench_parse_args "$@"

# ---- peers and tools from Debian --------------------------------------------------------------------
PACKAGES=(nginx nghttp2-client wrk gunicorn uwsgi-core uwsgi-plugin-python3 python3-flask testssl.sh openssl)
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
/usr/bin/python3 -c 'import gunicorn' 2>/dev/null || missing+=(gunicorn)
/usr/bin/python3 -c 'import flask' 2>/dev/null || missing+=(python3-flask)
command -v uwsgi >/dev/null || missing+=(uwsgi-core)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
command -v testssl >/dev/null || command -v testssl.sh >/dev/null || missing+=(testssl.sh)  # bench/tls-audit.sh
bench_install "${PACKAGES[@]}"

bench_sharpwsgi

# ---- the run ---------------------------------------------------------------------------------------
COMMAND="bench/edge.sh${*:+ $*}"
bench_lock
say "running the edge benchmark"
/usr/bin/python3 "$DRIVER" --sharpwsgi "$SHARPWSGI" --command "$COMMAND" "${ARGS[@]+"${ARGS[@]}"}"
