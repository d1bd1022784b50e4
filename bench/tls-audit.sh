#!/usr/bin/env bash
# TLS audit of SharpWsgi's defaults with Debian's testssl.sh (issue 8): no SSLv3/TLS 1.0/1.1, no weak suites.
#
#   bench/tls-audit.sh                 audit with an EC P-256 and then an RSA 2048 certificate (about 5-10 min)
#   bench/tls-audit.sh --key ec        one certificate type only (ec or rsa)
#
# It starts sharpwsgi on 127.0.0.1 with a throwaway self-signed certificate and nothing but --certfile/--keyfile
# (TLS versions, suites and ALPN are the defaults), runs testssl.sh against it (protocols, ciphers per protocol,
# server defaults and preferences, forward secrecy, HTTP headers, vulnerabilities), stops the server by its PID
# and writes bench/results/<date>-testssl.txt (a summary, then testssl's full output) and <date>-testssl.json.
# testssl is not a load test (little CPU), but it runs under /tmp/sharpwsgi-bench.lock so it never disturbs
# a benchmark. Options:
#   --key ec|rsa|both   certificate type(s) (default both: the suites offered depend on the key type)
#   --name NAME         results file name instead of <date>-testssl
#   --no-install        never call apt-get (fail if testssl.sh is missing)
#   SHARPWSGI_BIN=...   audit another build (default dist/sharpwsgi, published if missing)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
cd "$REPO"

KEYS=both
NAME="$(date +%Y-%m-%d)-testssl"
INSTALL=1
while [ $# -gt 0 ]; do
    case "$1" in
        --key) KEYS="$2"; shift ;;
        --name) NAME="$2"; shift ;;
        --no-install) INSTALL=0 ;;
        -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/tls-audit.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$KEYS" in ec) KEYS=(ec) ;; rsa) KEYS=(rsa) ;; both) KEYS=(ec rsa) ;;
    *) echo "bench/tls-audit.sh: --key ec, rsa or both" >&2; exit 2 ;; esac

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Debian names the command testssl; upstream's name is testssl.sh.
TESTSSL="$(command -v testssl || command -v testssl.sh || true)"
if [ -z "$TESTSSL" ]; then
    [ "$INSTALL" = 1 ] || { echo "bench/tls-audit.sh: testssl.sh is missing (and --no-install was given)" >&2; exit 1; }
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y testssl.sh openssl curl
    TESTSSL="$(command -v testssl || command -v testssl.sh)"
fi

SHARPWSGI="${SHARPWSGI_BIN:-$REPO/dist/sharpwsgi}"
if [ ! -x "$SHARPWSGI" ]; then
    [ -z "${SHARPWSGI_BIN:-}" ] || { echo "bench/tls-audit.sh: $SHARPWSGI is not executable" >&2; exit 1; }
    say "publishing sharpwsgi (NativeAOT, ./publish.sh)"
    flock /tmp/sharpwsgi-src.lock "$REPO/publish.sh" >/tmp/sharpwsgi-publish.log 2>&1
fi

WORK="$(mktemp -d /tmp/sharpwsgi-tls-audit-XXXXXX)"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true   # its own process group (setsid below)
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

exec 9>/tmp/sharpwsgi-bench.lock
if ! flock -n 9; then
    say "another benchmark holds /tmp/sharpwsgi-bench.lock; waiting for it"
    flock 9
fi

mkdir -p "$BENCH/results"
OUT="$BENCH/results/$NAME"
: >"$WORK/all.log"
JSONS=()
for key in "${KEYS[@]}"; do
    if [ "$key" = ec ]; then
        NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); LABEL="EC P-256"
    else
        NEWKEY=(-newkey rsa:2048); LABEL="RSA 2048"
    fi
    openssl req -x509 "${NEWKEY[@]}" -nodes -days 365 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$WORK/$key.key" -out "$WORK/$key.pem" 2>/dev/null   # a year: no expiry finding from testssl
    PORT="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')"
    # TLS defaults: only the certificate pair; one worker is enough, TLS settings are the same in every worker.
    setsid "$SHARPWSGI" --bind "127.0.0.1:$PORT" --certfile "$WORK/$key.pem" --keyfile "$WORK/$key.key" \
        --workers 1 --python /usr/bin/python3 --log-level warning "$BENCH/apps/hello.py" \
        </dev/null >"$WORK/server-$key.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        curl -sk -o /dev/null "https://127.0.0.1:$PORT/" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-$key.log" >&2; exit 1; }
        sleep 0.1
    done
    say "testssl.sh against sharpwsgi ($LABEL certificate) on 127.0.0.1:$PORT"
    { echo "######## $LABEL certificate: $SHARPWSGI --bind 127.0.0.1:$PORT --certfile CERT --keyfile KEY" \
           "--workers 1 hello.py"; echo; } >>"$WORK/all.log"
    # -p protocols (and ALPN), -E every cipher per protocol, -S server defaults, -P server preference,
    # -f forward secrecy, -h HTTP headers, -U vulnerabilities; testssl exits non-zero when it finds something.
    set +e
    "$TESTSSL" --quiet --color 0 --warnings off --openssl-timeout 10 -p -E -S -P -f -h -U \
        --jsonfile "$WORK/$key.json" "https://127.0.0.1:$PORT/" 2>&1 | tee -a "$WORK/all.log"
    set -e
    JSONS+=("$key=$WORK/$key.json")
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
done

VERSIONS="sharpwsgi: $("$SHARPWSGI" --version 2>&1 | head -1) (commit $(git rev-parse --short HEAD)); \
testssl.sh: $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || echo '?'); $(openssl version)"
/usr/bin/python3 "$BENCH/lib/tlsaudit.py" --versions "$VERSIONS" --log "$WORK/all.log" --json-out "$OUT.json" \
    "${JSONS[@]}" >"$OUT.txt"
cat "$OUT.txt" | sed -n '1,/^=\{10\}/p'
say "written: $OUT.txt and $OUT.json"
