#!/usr/bin/env bash
# Access log cost (issue 9): hello with the access log off, to a file (default format) and to a file as JSON,
# interleaved rounds of wrk -t1 -c64, median req/s per mode, and the ratios on/off; also the server's CPU time per
# request (user+system of every process in its session over the measured run), which a busy machine skews less.
#
#   bench/accesslog.sh [--rounds N] [--duration S]      (default 3 rounds of 5 s after 2 s warm-up)
#
# SharpWsgi is dist/sharpwsgi (./publish.sh) or $SHARPWSGI_BIN; 2 workers x 4 threads, Debian's /usr/bin/python3.
# Takes /tmp/sharpwsgi-bench.lock like the other suites. Prints a Markdown table; writes nothing else.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
ROUNDS=3 DURATION=5
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        *) echo "usage: bench/accesslog.sh [--rounds N] [--duration S]" >&2; exit 2 ;;
    esac
done
BIN="${SHARPWSGI_BIN:-$REPO/dist/sharpwsgi}"
[ -x "$BIN" ] || { echo "bench/accesslog.sh: $BIN missing (run ./publish.sh)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/accesslog.sh: wrk missing (apt-get install wrk)" >&2; exit 1; }
exec 9>/tmp/sharpwsgi-bench.lock
flock 9
WORK=$(mktemp -d /tmp/sharpwsgi-accesslog-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One measured run: start the server in its own process group, warm up, measure, stop it by its PID.
run() {
    local mode=$1 port extra=()
    port=$(free_port)
    case "$mode" in
        off) ;;
        text) extra=(--access-logfile "$WORK/access.log") ;;
        json) extra=(--access-logfile "$WORK/access.json" --log-format json) ;;
    esac
    setsid "$BIN" --bind "127.0.0.1:$port" --workers 2 --threads 4 --python /usr/bin/python3 --log-level warning \
        "${extra[@]}" "$BENCH/apps/hello.py" > "$WORK/server-$mode.log" 2>&1 9>&- &
    local pid=$!
    # run is a subshell (read < <(run ...)): whatever ends it, its server goes too.
    trap 'kill -TERM "$pid" 2>/dev/null || true' EXIT
    for _ in $(seq 200); do
        curl -fs -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
    wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" > /dev/null
    local out before after
    before=$(session_cpu_ticks "$pid")
    out=$(wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/")
    after=$(session_cpu_ticks "$pid")
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    # "req/s µs-of-CPU-per-request"
    awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        /Requests\/sec/ {rps = $2} /requests in/ {n = $1}
        END {printf "%s %.2f\n", rps, t / hz * 1e6 / n}' <<< "$out"
}

# utime + stime (clock ticks) of every live process in the session led by $1 (the server and its workers).
# Processes that end while this reads are skipped (awk then exits non-zero: ignored).
session_cpu_ticks() {
    awk -v sid="$1" '{sub(/^.*\) /, ""); if ($4 == sid) t += $12 + $13} END {print t + 0}' /proc/[0-9]*/stat \
        2>/dev/null || true
}

declare -A results=() cpus=() rps=() cpu=()
for round in $(seq "$ROUNDS"); do
    for mode in off text json; do
        read -r r cpu < <(run "$mode")
        results[$mode]="${results[$mode]:-} $r"
        cpus[$mode]="${cpus[$mode]:-} $cpu"
        echo "round $round $mode: $r req/s, $cpu µs CPU/request" >&2
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in off text json; do
    rps[$mode]=$(echo "${results[$mode]}" | median)
    cpu[$mode]=$(echo "${cpus[$mode]}" | median)
done
echo "| access log | req/s (median of $ROUNDS, wrk -c64 ${DURATION}s, hello, 2 workers) | vs off |\
 CPU µs/request (median) | vs off |"
echo "| --- | ---: | ---: | ---: | ---: |"
for mode in off text json; do
    case $mode in off) label=off ;; text) label="default format to a file" ;; json) label="JSON to a file" ;; esac
    awk -v l="$label" -v a="${rps[$mode]}" -v b="${rps[off]}" -v c="${cpu[$mode]}" -v d="${cpu[off]}" \
        'BEGIN {printf "| %s | %s | %.3fx | %s | %.3fx |\n", l, a, a / b, c, c / d}'
done
