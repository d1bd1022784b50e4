#!/usr/bin/env bash
# Publishes sharpwsgi as one NativeAOT executable (dist/sharpwsgi): no JIT at start-up, one file to deploy.
# NativeAOT needs the ILCompiler package, which comes from nuget.org (publish.nuget.config), and a C toolchain (gcc/clang).
#   ./publish.sh            -> dist/sharpwsgi (NativeAOT)
#   ./publish.sh --r2r      -> dist/ (framework-dependent, ReadyToRun), when NativeAOT is not available
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
fi
echo "published: $out/sharpwsgi"
