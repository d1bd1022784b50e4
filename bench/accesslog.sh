#!/usr/bin/env bash
# Access log cost (issue 9): hello with the access log off, to a file (default format) and to a file as JSON,
# interleaved rounds of wrk -t1 -c64, median req/s per mode, and the ratios on/off.
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
        "${extra[@]}" "$BENCH/apps/hello.py" > "$WORK/server-$mode.log" 2>&1 &
    local pid=$!
    for _ in $(seq 200); do
        curl -fs -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
    wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" > /dev/null
    local rps
    rps=$(wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$rps"
}

declare -A results=()
for round in $(seq "$ROUNDS"); do
    for mode in off text json; do
        r=$(run "$mode")
        results[$mode]="${results[$mode]:-} $r"
        echo "round $round $mode: $r req/s" >&2
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
off=$(echo "${results[off]}" | median)
text=$(echo "${results[text]}" | median)
json=$(echo "${results[json]}" | median)
echo "| access log | req/s (median of $ROUNDS, wrk -c64 ${DURATION}s, hello, 2 workers) | vs off |"
echo "| --- | ---: | ---: |"
echo "| off | $off | 1.00x |"
awk -v a="$text" -v b="$off" 'BEGIN {printf "| default format to a file | %s | %.3fx |\n", a, a / b}'
awk -v a="$json" -v b="$off" 'BEGIN {printf "| JSON to a file | %s | %.3fx |\n", a, a / b}'
