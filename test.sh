#!/usr/bin/env bash
# Builds SharpWsgi and runs every test. Installs what the tests need when it is missing:
# Debian's python3-flask and python3-django (the Flask and Django tests embed /usr/bin/python3) and
# libpython3.11 (the shared libpython that /usr/bin/python3 is embedded through).
# Prints a final line "N passed, N failed" and exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")"

packages=(python3 python3-flask python3-django libpython3.11)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
    echo "test.sh: installing ${missing[*]}"
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

dotnet build -c Release SharpWsgi.slnx

results_dir="$PWD/tests/SharpWsgi.Tests/TestResults"
rm -rf "$results_dir"
status=0
dotnet test tests/SharpWsgi.Tests -c Release --no-build \
    --results-directory "$results_dir" \
    --logger "trx;LogFileName=results.trx" \
    --logger "console;verbosity=normal" "$@" || status=$?

trx="$results_dir/results.trx"
if [[ -f "$trx" ]]; then
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
    attr() { sed -n "s/.* $1=\"\\([0-9]*\\)\".*/\\1/p" <<<"$counters"; }
    passed=$(attr passed); failed=$(attr failed); total=$(attr total)
    not_run=$(( total - passed - failed ))
    echo
    echo "Test results: $trx (total $total, not run $not_run)"
    echo "${passed:-0} passed, ${failed:-0} failed"
    if [[ "${failed:-0}" != 0 ]]; then status=1; fi
else
    echo
    echo "0 passed, 0 failed"
    echo "test.sh: no test results at $trx" >&2
    if [[ $status == 0 ]]; then status=1; fi
fi
exit "$status"
