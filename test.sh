#!/usr/bin/env bash
# Builds SharpWsgi and runs every test project (tests/*.Tests). Installs what the tests need when it is missing:
# Debian's python3-flask, python3-django and python3-pastedeploy (the apps the framework tests run on
# /usr/bin/python3),
# libpython3.11 (the shared libpython that /usr/bin/python3 is embedded through), and the programs the edge tests
# run for real: nginx (with its stream module, for PROXY protocol) and haproxy in front, curl, openssl, python3-h2
# and h2load (nghttp2-client) as clients, and chromium (headless: the welcome page screenshot); for the packaging
# tests python3-venv (pip in a fresh venv), twine (checks the wheel's metadata), systemd (systemd-analyze verify,
# systemd-socket-activate) and binutils (strip, for the .deb); rsyslog (rsyslogd, the syslog daemon --log-syslog is
# tested against) and node with npm (npm's statsd daemon, which StatsdTests install from tests/daemons/statsd).
# Prints a final line "N passed, N failed, N skipped" and exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")"

packages=(python3 python3-flask python3-django libpython3.11 nginx libnginx-mod-stream haproxy curl openssl chromium
    python3-h2 nghttp2-client python3-prometheus-client prometheus python3-venv twine systemd binutils gcc zlib1g-dev
    python3-pastedeploy rsyslog)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Any node that has npm will do (NodeSource's nodejs carries its own npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if ((${#missing[@]} > 0)); then
    echo "test.sh: installing ${missing[*]}"
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    # Debian starts nginx, haproxy and rsyslog as services on install (nginx on port 80 of every address): the tests
    # start their own instances on 127.0.0.1, so the package scripts are told not to start any (policy-rc.d, exit
    # 101).
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod +x "$policy"
        added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
    if ((added_policy)); then "${sudo_cmd[@]}" rm -f "$policy"; fi
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

dotnet build -c Release SharpWsgi.slnx
# The packaging tests (tests/SharpWsgi.Tests/Packaging) install what users install: the wheel into fresh venvs
# (pip, offline) and the .deb with apt-get. Both wrap the NativeAOT executable, published only when stale.
./package.sh
./package.sh --deb

# Every tests/*.Tests project runs, one after another (unit tests first, the functional suite last by name),
# each writing its own trx; the final line sums their counters. Extra arguments go to every `dotnet test`.
# A test project must also be listed in SharpWsgi.slnx, which the build above compiles.
status=0
total_passed=0 total_failed=0 total_skipped=0
summaries=()
shopt -s nullglob
projects=(tests/*.Tests/*.Tests.csproj)
if ((${#projects[@]} == 0)); then
    echo "test.sh: no test projects under tests/*.Tests" >&2
    status=1
fi
for project in "${projects[@]}"; do
    dir=$(dirname "$project")
    name=$(basename "$dir")
    if ! grep -q "Path=\"$project\"" SharpWsgi.slnx; then
        echo "test.sh: $project is not in SharpWsgi.slnx, so it was not built" >&2
        summaries+=("$name: not built (add it to SharpWsgi.slnx)")
        status=1
        continue
    fi
    results_dir="$PWD/$dir/TestResults"
    rm -rf "$results_dir"
    echo
    echo "test.sh: running $name"
    dotnet test "$project" -c Release --no-build \
        --results-directory "$results_dir" \
        --logger "trx;LogFileName=results.trx" \
        --logger "console;verbosity=normal" "$@" || status=1

    trx="$results_dir/results.trx"
    if [[ -f "$trx" ]]; then
        counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
        attr() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
        passed=$(attr passed); failed=$(attr failed); total=$(attr total)
        passed=${passed:-0}; failed=${failed:-0}; total=${total:-0}
        not_run=$(( total - passed - failed ))
        total_passed=$(( total_passed + passed )); total_failed=$(( total_failed + failed ))
        total_skipped=$(( total_skipped + not_run )) # a skip (with its reason in the log) is not run
        summaries+=("$name: $passed passed, $failed failed, $not_run skipped ($trx)")
        if [[ $failed != 0 ]]; then status=1; fi
    else
        echo "test.sh: no test results at $trx" >&2
        summaries+=("$name: no test results at $trx")
        status=1
    fi
done

echo
echo "Test results:"
for line in "${summaries[@]}"; do echo "  $line"; done
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$status"
