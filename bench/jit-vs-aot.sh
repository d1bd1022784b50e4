#!/usr/bin/env bash
# The JIT build (what `dotnet run` runs) against the NativeAOT build (dist/sharpwsgi, what the wheel, the .deb and
# the container ship), in one run: interleaved rounds of wrk on bench/apps/hello.py at -w 2, fresh servers each
# round (a newcomer's first minutes), under /tmp/sharpwsgi-bench.lock.
#   bench/jit-vs-aot.sh                 3 rounds x 5 s (2 s warm-up), 64 connections
#   bench/jit-vs-aot.sh --quick         1 round x 3 s (checks that it runs)
#   ROUNDS=5 DURATION=10 bench/jit-vs-aot.sh
# Extra variants, e.g. a JIT knob under test: VARIANTS="jit-knob=DOTNET_TieredPGO=0" (name=VAR=VALUE,...).
# Writes bench/results/<date>-jit-vs-aot.md: req/s and p99 per round, and the JIT/AOT ratio of the medians.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
cd "$REPO"
rounds=${ROUNDS:-3} duration=${DURATION:-5} warmup=${WARMUP:-2} connections=${CONNECTIONS:-64}
if [[ "${1:-}" == "--quick" ]]; then rounds=1 duration=3 warmup=1; fi
command -v wrk >/dev/null || { echo "jit-vs-aot.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }

jit="$REPO/src/SharpWsgi/bin/Release/net10.0/sharpwsgi"
aot="$REPO/dist/sharpwsgi"
echo "==> building both (dotnet build -c Release, ./publish.sh when dist/sharpwsgi is older than the sources)"
flock /tmp/sharpwsgi-src.lock dotnet build -c Release -nologo -v q src/SharpWsgi >/dev/null
if [[ ! -x $aot || -n $(find src -name '*.cs' -newer "$aot" -print -quit) ]]; then
    flock /tmp/sharpwsgi-src.lock ./publish.sh >/tmp/sharpwsgi-publish.log 2>&1
fi

# name=exe[,VAR=VALUE...]. dotnet-run is the README's JIT command itself (its launchSettings.json turns tiered
# compilation off); jit is the same JIT build started directly, with the runtime's defaults.
variants=("aot=$aot" "dotnet-run=dotnet-run" "jit=$jit")
for v in ${VARIANTS:-}; do
    name=${v%%=*}; env=${v#*=}
    variants+=("$name=$jit,$env")
done

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
# run_one NAME EXE [VAR=VALUE...] -> "req/s p99_ms"
run_one() {
    local name=$1 exe=$2; shift 2
    local cmd=("$exe")
    [[ $exe == dotnet-run ]] && cmd=(dotnet run -c Release --no-build --project src/SharpWsgi --)
    env "$@" "${cmd[@]}" --bind 127.0.0.1:0 -w 2 --log-level info bench/apps/hello.py >"$log/$name.out" 2>&1 &
    local launcher=$! pid=""
    local url=""
    for _ in $(seq 600); do  # the server prints its URL (and its pid) once every worker imported the app
        url=$(sed -n 's/.*Listening at: \(http[^ ]*\).*/\1/p' "$log/$name.out" | head -n 1)
        pid=$(sed -n 's/.*Listening at: http[^ ]* (\([0-9]*\)).*/\1/p' "$log/$name.out" | head -n 1)
        [[ -n $url ]] && break
        kill -0 "$launcher" 2>/dev/null || { cat "$log/$name.out" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n $url ]] || { echo "jit-vs-aot.sh: $name never listened" >&2; kill "$launcher"; exit 1; }
    wrk -t1 -c"$connections" -d"${warmup}s" "$url/" >/dev/null
    local out
    out=$(wrk -t1 -c"$connections" -d"${duration}s" --latency "$url/")
    kill -TERM "$pid"; wait "$launcher" || true
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)}
               else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
    echo "$rps $p99"
}

declare -A results
exec 9>/tmp/sharpwsgi-bench.lock
echo "==> waiting for /tmp/sharpwsgi-bench.lock"
flock 9
for r in $(seq "$rounds"); do
    for v in "${variants[@]}"; do
        name=${v%%=*}; rest=${v#*=}
        IFS=, read -r -a parts <<<"$rest"
        res=$(run_one "$name" "${parts[@]}")
        results[$name]+="$res;"
        echo "round $r $name: $res (req/s, p99 ms)"
    done
done
flock -u 9

median() { tr ';' '\n' | awk 'NF {print $'"$1"'}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
out="bench/results/$(date -u +%Y-%m-%d)-jit-vs-aot.md"
aot_rps=$(median 1 <<<"${results[aot]}")
{
    echo "# JIT build vs NativeAOT build, hello at -w 2 ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "bench/jit-vs-aot.sh: $rounds interleaved round(s), fresh servers each round, wrk -t1 -c$connections," \
        "${warmup} s warm-up then ${duration} s measured; $(nproc) cores; load average at start" \
        "$(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| build | req/s per round | p99 ms per round | median req/s | ratio to AOT |"
    echo "| --- | --- | --- | --- | --- |"
    for v in "${variants[@]}"; do
        name=${v%%=*}
        rps_list=$(tr ';' '\n' <<<"${results[$name]}" | awk 'NF {printf "%s%.0f", sep, $1; sep=", "}')
        p99_list=$(tr ';' '\n' <<<"${results[$name]}" | awk 'NF {printf "%s%.2f", sep, $2; sep=", "}')
        med=$(median 1 <<<"${results[$name]}")
        ratio=$(awk -v a="$med" -v b="$aot_rps" 'BEGIN {printf "%.2f", a / b}')
        what=${v#*=}; what=${what/#$REPO\//}
        [[ $what == dotnet-run ]] && what="dotnet run -c Release --project src/SharpWsgi"
        echo "| $name ($what) | $rps_list | $p99_list | $(printf '%.0f' "$med") | $ratio |"
    done
} >"$out"
cat "$out"
