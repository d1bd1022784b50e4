#!/usr/bin/env bash
# Packages the launcher and the NativeAOT library (./publish.sh -> dist/sharpwsgi + dist/_sharpwsgi.so; rebuilt
# only when a source is newer):
#   ./package.sh          -> dist/sharpwsgi-<version>-py3-none-manylinux_<glibc>_x86_64.whl (pip install it)
#   ./package.sh --deb    -> dist/sharpwsgi_<version>_amd64.deb (/usr/bin/sharpwsgi, man page, systemd units)
# The wheel is built with Python's standard library (packaging/build_wheel.py); its manylinux tag is the build
# machine's glibc (the executable needs no newer one). The .deb is built with dpkg-deb.
# The container image is built by the Dockerfile instead (docker build -t sharpwsgi .).
set -euo pipefail
cd "$(dirname "$0")"
mode=wheel
case "${1:-}" in
    "") ;;
    --deb) mode=deb ;;
    *) echo "usage: ./package.sh [--deb]" >&2; exit 2 ;;
esac
python=/usr/bin/python3
[[ -x $python ]] || python=python3

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
binary=dist/sharpwsgi
library=dist/_sharpwsgi.so
newer=$(find src Directory.Build.props packaging/launcher -newer "$library" \( -name '*.cs' -o -name '*.csproj' \
    -o -name '*.props' -o -name '*.c' \) -not -path '*/bin/*' -not -path '*/obj/*' -print -quit 2>/dev/null ||
    echo missing)
if [[ ! -x $binary || ! -f $library || -n $newer ]]; then
    # publish.sh empties dist/: keep the packages already built there.
    keep=$(mktemp -d)
    cp dist/*.whl dist/*.deb "$keep"/ 2>/dev/null || true
    ./publish.sh
    cp "$keep"/* dist/ 2>/dev/null || true
    rm -rf "$keep"
fi
# The executable and the package must agree on the version (pip shows one, sharpwsgi --version the other).
built=$("$binary" --version | head -n 1 | cut -d' ' -f2)
if [[ $built != "$version" ]]; then
    echo "package.sh: $binary is version $built, Directory.Build.props says $version: rebuild it" >&2
    exit 1
fi

if [[ $mode == wheel ]]; then
    rm -f dist/sharpwsgi-*.whl
    wheel=$("$python" packaging/build_wheel.py --binary "$binary" --library "$library" --version "$version" \
        --out dist)
    echo "package.sh: $wheel ($(du -h "$wheel" | cut -f1))"
    exit 0
fi

# The .deb: a staging tree, then dpkg-deb (--root-owner-group: root-owned files without fakeroot).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/bin/sharpwsgi"
install -D -m 0755 "$library" "$stage/usr/lib/sharpwsgi/_sharpwsgi.so"
strip --strip-unneeded "$stage/usr/bin/sharpwsgi" "$stage/usr/lib/sharpwsgi/_sharpwsgi.so" 2>/dev/null || true
install -D -m 0644 packaging/deb/sharpwsgi@.service "$stage/lib/systemd/system/sharpwsgi@.service"
install -D -m 0644 packaging/deb/sharpwsgi@.socket "$stage/lib/systemd/system/sharpwsgi@.socket"
install -D -m 0644 packaging/deb/example.env "$stage/etc/sharpwsgi/example.env"
mkdir -p "$stage/usr/share/man/man1" "$stage/usr/share/doc/sharpwsgi"
# The man page comes from the settings registry, like --help and docs/settings.md.
"$binary" --print-man-page | gzip -9n > "$stage/usr/share/man/man1/sharpwsgi.1.gz"
install -m 0644 packaging/deb/README.Debian "$stage/usr/share/doc/sharpwsgi/README.Debian"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: sharpwsgi"
    echo
    echo "Files: *"
    echo "License: MIT"
    sed 's/^$/./; s/^/ /' LICENSE
} > "$stage/usr/share/doc/sharpwsgi/copyright"
entry='sharpwsgi (%s) unstable; urgency=medium\n\n  * Built by package.sh.\n\n -- %s  %s\n'
stamp=$(date -uR -d @"$(git log -1 --format=%ct 2>/dev/null || date +%s)")
printf "$entry" "$version" "SharpWsgi developers <sharpwsgi@localhost>" "$stamp" | gzip -9n > "$stage/usr/share/doc/sharpwsgi/changelog.Debian.gz"
mkdir -p "$stage/DEBIAN"
echo /etc/sharpwsgi/example.env > "$stage/DEBIAN/conffiles"
glibc=$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@GLIBC@/$glibc/" packaging/deb/control.in \
    > "$stage/DEBIAN/control"
# Units in /lib/systemd/system: tell systemd to re-read them (when it runs); nothing is enabled or started.
printf '#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n' \
    > "$stage/DEBIAN/postinst"
cp "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
deb="dist/sharpwsgi_${version}_amd64.deb"
rm -f dist/sharpwsgi_*.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "package.sh: $deb ($(du -h "$deb" | cut -f1))"
