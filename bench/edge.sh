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

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
cd "$REPO"

INSTALL=1
REBUILD=0
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --no-install) INSTALL=0 ;;
        --rebuild) REBUILD=1 ;;
        -h|--help)
            sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; echo
            exec /usr/bin/python3 "$BENCH/lib/edge.py" --help ;;
        *) ARGS+=("$arg") ;;
    esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# ---- tools from Debian -----------------------------------------------------------------------------
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
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$INSTALL" = 0 ]; then
        echo "bench/edge.sh: missing: ${missing[*]} (and --no-install was given)" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "bench/edge.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    say "installing the tools from Debian (missing: ${missing[*]})"
    "${SUDO[@]}" apt-get update
    # On a machine with systemd, nginx's postinst starts the system nginx on port 80: the benchmark never uses it
    # (it runs its own nginx in the foreground on a free port); stop it if it bothers you.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}"
fi

# ---- sharpwsgi, as shipped --------------------------------------------------------------------------
SHARPWSGI="${SHARPWSGI_BIN:-$REPO/dist/sharpwsgi}"
if [ -n "${SHARPWSGI_BIN:-}" ] && [ ! -x "$SHARPWSGI" ]; then
    echo "bench/edge.sh: SHARPWSGI_BIN=$SHARPWSGI_BIN is not executable" >&2
    exit 1
fi
if [ -z "${SHARPWSGI_BIN:-}" ] && { [ "$REBUILD" = 1 ] || [ ! -x "$SHARPWSGI" ]; }; then
    command -v dotnet >/dev/null || { echo "bench/edge.sh: the .NET 10 SDK is needed to build sharpwsgi" >&2; exit 1; }
    say "publishing sharpwsgi (NativeAOT, ./publish.sh)"
    if ! flock /tmp/sharpwsgi-src.lock "$REPO/publish.sh" >/tmp/sharpwsgi-publish.log 2>&1; then
        say "NativeAOT publish failed (see /tmp/sharpwsgi-publish.log); measuring the JIT Release build instead"
        SHARPWSGI="$REPO/src/SharpWsgi/bin/Release/net10.0/sharpwsgi"
        flock /tmp/sharpwsgi-src.lock dotnet build -c Release -nologo -v q src/SharpWsgi
    fi
fi
say "measuring $SHARPWSGI"

# ---- the run ---------------------------------------------------------------------------------------
COMMAND="bench/edge.sh${*:+ $*}"
exec 9>/tmp/sharpwsgi-bench.lock
if ! flock -n 9; then
    say "another benchmark holds /tmp/sharpwsgi-bench.lock; waiting for it"
    flock 9
fi
say "running the edge benchmark"
/usr/bin/python3 "$BENCH/lib/edge.py" --sharpwsgi "$SHARPWSGI" --command "$COMMAND" "${ARGS[@]+"${ARGS[@]}"}"
