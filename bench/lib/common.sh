# Shared by the bench entry points (run.sh, edge.sh, static.sh, interpreters.sh): options, packages, the binary
# and the benchmark lock. Source it after setting SCRIPT (e.g. bench/edge.sh) and DRIVER (the Python driver).
# shellcheck shell=bash

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(dirname "$BENCH")"
cd "$REPO"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "$SCRIPT: $*" >&2; exit 1; }

# --no-install, --rebuild and --help are the script's own; everything else goes to the driver (ARGS).
bench_parse_args() {
    INSTALL=1
    REBUILD=0
    ARGS=()
    for arg in "$@"; do
        case "$arg" in
            --no-install) INSTALL=0 ;;
            --rebuild) REBUILD=1 ;;
            -h|--help)
                sed -n '2,/^[^#]/{/^#/p}' "$REPO/$SCRIPT" | sed 's/^# \{0,1\}//'; echo
                exec /usr/bin/python3 "$DRIVER" --help ;;
            *) ARGS+=("$arg") ;;
        esac
    done
}

# bench_install PACKAGE... : installs them all (apt-get) when any name is in the array `missing`.
bench_install() {
    [ ${#missing[@]} -gt 0 ] || return 0
    [ "$INSTALL" = 1 ] || die "missing: ${missing[*]} (and --no-install was given)"
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
        sudo=(sudo)
    fi
    say "installing from Debian (missing: ${missing[*]})"
    "${sudo[@]}" apt-get update
    # nginx's postinst may start the system nginx on port 80: the benchmarks never use it (they run their own).
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Sets SHARPWSGI: $SHARPWSGI_BIN, else dist/sharpwsgi (published when missing or with --rebuild).
bench_sharpwsgi() {
    SHARPWSGI="${SHARPWSGI_BIN:-$REPO/dist/sharpwsgi}"
    if [ -n "${SHARPWSGI_BIN:-}" ] && [ ! -x "$SHARPWSGI" ]; then
        die "SHARPWSGI_BIN=$SHARPWSGI_BIN is not executable"
    fi
    if [ -z "${SHARPWSGI_BIN:-}" ] && { [ "$REBUILD" = 1 ] || [ ! -x "$SHARPWSGI" ]; }; then
        command -v dotnet >/dev/null || die "the .NET 10 SDK is needed to build sharpwsgi"
        say "publishing sharpwsgi (NativeAOT, ./publish.sh)"
        # The workers are python loading dist/_sharpwsgi.so, which only the NativeAOT publish makes.
        flock /tmp/sharpwsgi-src.lock "$REPO/publish.sh" >/tmp/sharpwsgi-publish.log 2>&1 ||
            die "NativeAOT publish failed (see /tmp/sharpwsgi-publish.log)"
    fi
    say "measuring $SHARPWSGI"
}

# Holds /tmp/sharpwsgi-bench.lock (fd 9) for the rest of the script, so two benchmarks never overlap.
bench_lock() {
    exec 9>/tmp/sharpwsgi-bench.lock
    if ! flock -n 9; then
        say "another benchmark holds /tmp/sharpwsgi-bench.lock; waiting for it"
        flock 9
    fi
}
