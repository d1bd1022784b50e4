#!/usr/bin/env bash
# The contributor's run command: builds the launcher and the NativeAOT library when a source is newer (./publish.sh,
# a minute or two on 2 cores; seconds to check otherwise) and runs it with the given arguments:
#   ./run.sh examples/hello.py
# It runs the build that ships (the wheel, the .deb and the container carry dist/sharpwsgi and dist/_sharpwsgi.so).
# The JIT build that `dotnet run` starts is only a supervisor: its workers load dist/_sharpwsgi.so all the same.
set -euo pipefail
cd "$(dirname "$0")"
binary=dist/sharpwsgi
library=dist/_sharpwsgi.so
if [[ ! -x $binary || ! -f $library || -n $(find src Directory.Build.props packaging/launcher -newer "$library" \
        \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.c' \) -not -path '*/bin/*' \
        -not -path '*/obj/*' -print -quit) ]]; then
    echo "run.sh: building $binary (NativeAOT, ./publish.sh; output in dist/publish.log)" >&2
    mkdir -p dist
    log=$(mktemp)
    if ! ./publish.sh >"$log" 2>&1; then
        cat "$log" >&2
        echo "run.sh: ./publish.sh failed (above): the workers need its NativeAOT library" >&2
        exit 1
    fi
    mv "$log" dist/publish.log
fi
exec "$binary" "$@"
