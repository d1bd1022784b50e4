#!/usr/bin/env bash
# Publishes sharpwsgi: dist/_sharpwsgi.so, the whole server as one NativeAOT shared library (the supervisor, and
# the extension module each worker's python loads), and dist/sharpwsgi, the small C launcher that runs it. The two
# files go together (the launcher looks for the library beside it, or in ../lib/sharpwsgi/).
# NativeAOT needs the ILCompiler package, which comes from nuget.org (publish.nuget.config), and a C toolchain (gcc).
#   ./publish.sh            -> dist/sharpwsgi + dist/_sharpwsgi.so (NativeAOT)
#   ./publish.sh --r2r      -> dist/ (framework-dependent, ReadyToRun): the supervisor only; its workers need
#                              SHARPWSGI_WORKER_LIBRARY pointing at a NativeAOT _sharpwsgi.so
set -euo pipefail
cd "$(dirname "$0")"
out=dist
rm -rf "$out"
if [[ "${1:-}" == "--r2r" ]]; then
    dotnet publish src/SharpWsgi/SharpWsgi.csproj -c Release -r linux-x64 --self-contained false \
        -p:PublishReadyToRun=true -o "$out" --configfile publish.nuget.config
else
    dotnet publish src/SharpWsgi/SharpWsgi.csproj -c Release -r linux-x64 \
        -p:PublishAot=true -o "$out" --configfile publish.nuget.config
    rm -f "$out"/*.dbg "$out"/*.pdb
    mv "$out/sharpwsgi.so" "$out/_sharpwsgi.so"
    # The supervisor finds the launcher's title writer with dlsym: it must be in the dynamic symbol table.
    ${CC:-gcc} -O2 -Wall -Wextra -Wl,--export-dynamic-symbol=sharpwsgi_set_title -o "$out/sharpwsgi" \
        packaging/launcher/sharpwsgi.c -ldl
fi
echo "published: $out/sharpwsgi, $out/_sharpwsgi.so"
