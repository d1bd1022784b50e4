#!/usr/bin/env bash
# SharpWsgi side-by-side benchmark suite: one command from a clean clone on Debian 12.
#
#   bench/run.sh              full suite (7 apps x up to 8 servers x 3 rounds, about 33 min on 2 cores)
#   bench/run.sh --quick      smoke test: 1 round, 2 s, hello only
#   bench/run.sh --check      no load: start every server with every app, check the answer, stop it
#   bench/run.sh --help       every option (processes, threads, rounds, duration, apps, servers, ...)
#
# It installs the peers from Debian when they are missing, builds sharpwsgi (if its binary is missing)
# and the plain-Kestrel ceiling server, then runs bench/lib/suite.py under /tmp/sharpwsgi-bench.lock so two
# benchmarks never overlap. Results: bench/results/<date>.md, .svg (chart) and .json (raw rounds).
# Options of this script (the rest go to the driver):
#   --no-install   never call apt-get (fail if a peer is missing)
#   --rebuild      rebuild sharpwsgi (Release) even if the binary exists
set -euo pipefail

SCRIPT=bench/run.sh
DRIVER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/suite.py"
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"   # BENCH, REPO, say, and the options (INSTALL, REBUILD, ARGS)
bench_parse_args "$@"

# ---- peers from Debian ---------------------------------------------------------------------------
PACKAGES=(gunicorn uwsgi-core uwsgi-plugin-python3 python3-waitress apache2 libapache2-mod-wsgi-py3 wrk python3-flask
          postgresql python3-psycopg2 python3-django)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
/usr/bin/python3 -c 'import gunicorn' 2>/dev/null || missing+=(gunicorn)
/usr/bin/python3 -c 'import waitress' 2>/dev/null || missing+=(python3-waitress)
/usr/bin/python3 -c 'import flask' 2>/dev/null || missing+=(python3-flask)
/usr/bin/python3 -c 'import django' 2>/dev/null || missing+=(python3-django)
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || missing+=(python3-psycopg2)
# the djangopg app's PostgreSQL server (the suite runs its own private cluster; see bench/lib/database.py)
[ -n "${BENCH_PG_BIN:-}" ] || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v uwsgi >/dev/null || missing+=(uwsgi-core)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
[ -x /usr/sbin/apache2 ] || missing+=(apache2)
[ -e /usr/lib/apache2/modules/mod_wsgi.so ] || missing+=(libapache2-mod-wsgi-py3)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$INSTALL" = 0 ]; then
        echo "bench/run.sh: missing: ${missing[*]} (and --no-install was given)" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "bench/run.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    say "installing the peers from Debian (missing: ${missing[*]})"
    "${SUDO[@]}" apt-get update
    # apache2's postinst may start the system apache service on port 80, and postgresql's a system cluster on
    # 5432; the suite uses neither (it runs its own apache in the foreground and its own PostgreSQL cluster).
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}"
fi

# ---- .NET pieces -----------------------------------------------------------------------------------
if ! command -v dotnet >/dev/null; then
    echo "bench/run.sh: the .NET 10 SDK (dotnet) is needed to build sharpwsgi and the plain-Kestrel ceiling" >&2
    exit 1
fi
# SharpWsgi is measured as shipped: the NativeAOT executable from ./publish.sh (measured faster and about half the
# memory of the JIT build). If NativeAOT cannot be built here, the JIT Release build is measured and the report says so.
SHARPWSGI="${SHARPWSGI_BIN:-$REPO/dist/sharpwsgi}"
if [ -n "${SHARPWSGI_BIN:-}" ] && [ ! -x "$SHARPWSGI" ]; then
    echo "bench/run.sh: SHARPWSGI_BIN=$SHARPWSGI_BIN is not executable" >&2
    exit 1
fi
if [ -z "${SHARPWSGI_BIN:-}" ] && { [ "$REBUILD" = 1 ] || [ ! -x "$SHARPWSGI" ]; }; then
    say "publishing sharpwsgi (NativeAOT, ./publish.sh)"
    if ! flock /tmp/sharpwsgi-src.lock "$REPO/publish.sh" >/tmp/sharpwsgi-publish.log 2>&1; then
        say "NativeAOT publish failed (see /tmp/sharpwsgi-publish.log); measuring the JIT Release build instead"
        SHARPWSGI="$REPO/src/SharpWsgi/bin/Release/net10.0/sharpwsgi"
        flock /tmp/sharpwsgi-src.lock dotnet build -c Release -nologo -v q src/SharpWsgi
    fi
fi
say "measuring $SHARPWSGI"
KESTREL="$BENCH/PlainKestrel/bin/Release/net10.0/PlainKestrel"
if [ ! -x "$KESTREL" ] ||
   [ -n "$(find "$BENCH/PlainKestrel" -maxdepth 1 \( -name '*.cs' -o -name '*.csproj' \) -newer "$KESTREL")" ]; then
    say "building the plain-Kestrel ceiling server"
    dotnet build -c Release -nologo -v q "$BENCH/PlainKestrel"
fi

# ---- the run ---------------------------------------------------------------------------------------
COMMAND="bench/run.sh${*:+ $*}"
DRIVER=(/usr/bin/python3 "$BENCH/lib/suite.py" --sharpwsgi "$SHARPWSGI" --plain-kestrel "$KESTREL" --command "$COMMAND")
for arg in "${ARGS[@]+"${ARGS[@]}"}"; do
    if [ "$arg" = --check ]; then
        exec "${DRIVER[@]}" "${ARGS[@]}"   # no load: no need for the lock
    fi
done
exec 9>/tmp/sharpwsgi-bench.lock
if ! flock -n 9; then
    say "another benchmark holds /tmp/sharpwsgi-bench.lock; waiting for it"
    flock 9
fi
say "running the suite"
"${DRIVER[@]}" "${ARGS[@]+"${ARGS[@]}"}"
