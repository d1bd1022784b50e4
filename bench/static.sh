#!/usr/bin/env bash
# SharpWsgi static-file benchmark (issue 9): one command from a clean clone on Debian 12.
#
#   bench/static.sh           a 10 KB and a 1 MB file, wrk -c64 over keep-alive, 3 rounds of 10 s (about 4 min):
#                             sharpwsgi --static vs nginx (sendfile) vs whitenoise on gunicorn gthread
#   bench/static.sh --quick   smoke test: 1 round, 2 s runs
#   bench/static.sh --help    every option
#
# It installs the peers from Debian when they are missing, publishes sharpwsgi (NativeAOT) if dist/sharpwsgi is
# missing, then runs bench/lib/static.py under /tmp/sharpwsgi-bench.lock so two benchmarks never overlap.
# Results: bench/results/<date>-static.md and .json. Options of this script (the rest go to the driver):
#   --no-install   never call apt-get (fail if a peer is missing)
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
            exec /usr/bin/python3 "$BENCH/lib/static.py" --help ;;
        *) ARGS+=("$arg") ;;
    esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# ---- peers from Debian -----------------------------------------------------------------------------
PACKAGES=(nginx wrk gunicorn python3-whitenoise)
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
/usr/bin/python3 -c 'import gunicorn' 2>/dev/null || missing+=(gunicorn)
/usr/bin/python3 -c 'import whitenoise' 2>/dev/null || missing+=(python3-whitenoise)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$INSTALL" = 0 ]; then
        echo "bench/static.sh: missing: ${missing[*]} (and --no-install was given)" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null ||
            { echo "bench/static.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    say "installing the peers from Debian (missing: ${missing[*]})"
    "${SUDO[@]}" apt-get update
    # nginx's postinst may start the system nginx on port 80: the benchmark never uses it (it runs its own).
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}"
fi

# ---- sharpwsgi, as shipped --------------------------------------------------------------------------
SHARPWSGI="${SHARPWSGI_BIN:-$REPO/dist/sharpwsgi}"
if [ -n "${SHARPWSGI_BIN:-}" ] && [ ! -x "$SHARPWSGI" ]; then
    echo "bench/static.sh: SHARPWSGI_BIN=$SHARPWSGI_BIN is not executable" >&2
    exit 1
fi
if [ -z "${SHARPWSGI_BIN:-}" ] && { [ "$REBUILD" = 1 ] || [ ! -x "$SHARPWSGI" ]; }; then
    command -v dotnet >/dev/null ||
        { echo "bench/static.sh: the .NET 10 SDK is needed to build sharpwsgi" >&2; exit 1; }
    say "publishing sharpwsgi (NativeAOT, ./publish.sh)"
    if ! flock /tmp/sharpwsgi-src.lock "$REPO/publish.sh" >/tmp/sharpwsgi-publish.log 2>&1; then
        say "NativeAOT publish failed (see /tmp/sharpwsgi-publish.log); measuring the JIT Release build instead"
        SHARPWSGI="$REPO/src/SharpWsgi/bin/Release/net10.0/sharpwsgi"
        flock /tmp/sharpwsgi-src.lock dotnet build -c Release -nologo -v q src/SharpWsgi
    fi
fi
say "measuring $SHARPWSGI"

# ---- the run ---------------------------------------------------------------------------------------
COMMAND="bench/static.sh${*:+ $*}"
exec 9>/tmp/sharpwsgi-bench.lock
if ! flock -n 9; then
    say "another benchmark holds /tmp/sharpwsgi-bench.lock; waiting for it"
    flock 9
fi
say "running the static-file benchmark"
/usr/bin/python3 "$BENCH/lib/static.py" --sharpwsgi "$SHARPWSGI" --command "$COMMAND" "${ARGS[@]+"${ARGS[@]}"}"
