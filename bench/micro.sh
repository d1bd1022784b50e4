#!/usr/bin/env bash
# Micro-benchmarks of SharpWsgi's hot path (BenchmarkDotNet, bench/Micro): environ building, start_response,
# response chunk handoff, wsgi.input reads, and a whole request through the gateway next to pure Python.
#
#   bench/micro.sh                       every benchmark, short runs (about 10 min on 2 cores)
#   bench/micro.sh -f '*Input*'          a subset (BenchmarkDotNet options pass through)
#   bench/micro.sh --job dry             one pass of each, to check that they run
#
# Builds bench/Micro (BenchmarkDotNet comes from nuget.org, see bench/Micro/nuget.config; the build also builds
# src/SharpWsgi.Gateway, so it takes /tmp/sharpwsgi-src.lock), runs under /tmp/sharpwsgi-bench.lock, and
# writes the joined table to bench/results/micro-<date>.md.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
cd "$REPO"

ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--filter '*')
has_filter=0
for a in "${ARGS[@]}"; do case "$a" in -f|--filter|--list|--help|-h|--info) has_filter=1 ;; esac; done
[ $has_filter = 1 ] || ARGS+=(--filter '*')

echo "==> building bench/Micro (Release)"
flock /tmp/sharpwsgi-src.lock dotnet build -c Release -nologo -v q bench/Micro

ARTIFACTS="$(mktemp -d /tmp/sharpwsgi-micro.XXXXXX)"
exec 9>/tmp/sharpwsgi-bench.lock
if ! flock -n 9; then
    echo "==> another benchmark holds /tmp/sharpwsgi-bench.lock; waiting for it"
    flock 9
fi
echo "==> running BenchmarkDotNet ${ARGS[*]}"
status=0
bench/Micro/bin/Release/net10.0/SharpWsgi.Micro --artifacts "$ARTIFACTS" "${ARGS[@]}" || status=$?

reports=("$ARTIFACTS"/results/*-report-github.md)
if [ -e "${reports[0]}" ]; then
    mkdir -p "$BENCH/results"
    out="$BENCH/results/micro-$(date +%Y-%m-%d).md"
    n=2
    while [ -e "$out" ]; do out="$BENCH/results/micro-$(date +%Y-%m-%d)-$n.md"; n=$((n + 1)); done
    {
        echo "# SharpWsgi micro-benchmarks — $(date '+%Y-%m-%d %H:%M')"
        echo
        echo "\`bench/micro.sh${*:+ $*}\` — SharpWsgi commit $(git rev-parse --short HEAD)$(git status --porcelain -- src | grep -q . && echo ', src/ has uncommitted changes'), $(/usr/bin/python3 --version) (shared libpython), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)."
        echo
        echo "Each benchmark holds the GIL on its thread for the whole run, as a SharpWsgi Python thread does while it has work;"
        echo "so the numbers are the gateway's own cost per operation, without thread hand-offs or sockets."
        echo
        for r in "${reports[@]}"; do cat "$r"; echo; done
    } > "$out"
    echo "==> wrote $out"
fi
rm -rf "$ARTIFACTS"
exit $status
