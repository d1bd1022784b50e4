"""Builds the platform wheel around the launcher and the NativeAOT library, with the standard library only.

A wheel is a zip (PEP 427, 491): the package at the root, the launcher under <name>-<v>.data/scripts/ (pip
installs it into venv/bin, as ruff and uv ship theirs), the library under <name>-<v>.data/data/lib/sharpwsgi/
(pip installs it into venv/lib/sharpwsgi/, where the launcher looks: ../lib/sharpwsgi/ from venv/bin, the same
relative place as in the .deb's /usr), and .dist-info/ with METADATA (core metadata 2.1, what twine checks),
WHEEL, the license and RECORD (sha256 of every file).
  python3 packaging/build_wheel.py --binary dist/sharpwsgi --library dist/_sharpwsgi.so --version 0.1.0 --out dist
"""

import argparse
import base64
import hashlib
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "sharpwsgi"


def platform_tag() -> str:
    """manylinux_X_Y_x86_64 from the build machine's glibc: the executable links against it, so it promises
    nothing older (PEP 600)."""
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    kind, _, version = libc.partition(" ")
    if kind != "glibc":
        sys.exit(f"build_wheel.py: error: needs a glibc system to tag the wheel, found {libc or 'none'}")
    major, minor = version.split(".")[:2]
    return f"manylinux_{major}_{minor}_x86_64"


def metadata(version: str, readme: str) -> str:
    headers = [
        ("Metadata-Version", "2.1"),
        ("Name", NAME),
        ("Version", version),
        ("Summary", "A production WSGI (PEP 3333) server in C#: Kestrel for HTTP, embedded CPython for the app"),
        ("Keywords", "wsgi,server,http,pep3333,kestrel"),
        ("License", "MIT"),
        ("Classifier", "Development Status :: 4 - Beta"),
        ("Classifier", "Environment :: Web Environment"),
        ("Classifier", "Intended Audience :: Developers"),
        ("Classifier", "License :: OSI Approved :: MIT License"),
        ("Classifier", "Operating System :: POSIX :: Linux"),
        ("Classifier", "Programming Language :: C#"),
        ("Classifier", "Programming Language :: Python :: 3"),
        ("Classifier", "Programming Language :: Python :: Implementation :: CPython"),
        ("Classifier", "Topic :: Internet :: WWW/HTTP :: WSGI :: Server"),
        ("Requires-Python", ">=3.9,<3.14"),
        ("Description-Content-Type", "text/markdown; charset=UTF-8"),
    ]
    return "".join(f"{k}: {v}\n" for k, v in headers) + "\n" + readme


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--license", default=os.path.join(HERE, "..", "LICENSE"))
    args = ap.parse_args()

    tag = f"py3-none-{platform_tag()}"
    dist_info = f"{NAME}-{args.version}.dist-info"
    data_dir = f"{NAME}-{args.version}.data"
    with open(os.path.join(HERE, "python", "README.md"), encoding="utf-8") as f:
        readme = f.read()

    files = []  # (archive path, bytes, mode)
    for module in ("__init__.py", "__main__.py"):
        with open(os.path.join(HERE, "python", NAME, module), encoding="utf-8") as f:
            source = f.read().replace("@VERSION@", args.version)
        files.append((f"{NAME}/{module}", source.encode(), 0o644))
    with open(args.binary, "rb") as f:
        files.append((f"{data_dir}/scripts/{NAME}", f.read(), 0o755))
    with open(args.library, "rb") as f:
        files.append((f"{data_dir}/data/lib/{NAME}/_sharpwsgi.so", f.read(), 0o755))
    with open(args.license, "rb") as f:
        files.append((f"{dist_info}/LICENSE", f.read(), 0o644))
    files.append((f"{dist_info}/METADATA", metadata(args.version, readme).encode(), 0o644))
    wheel = f"Wheel-Version: 1.0\nGenerator: sharpwsgi package.sh\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files.append((f"{dist_info}/WHEEL", wheel.encode(), 0o644))
    record = "\n".join([record_line(p, d) for p, d, _ in files] + [f"{dist_info}/RECORD,,", ""])
    files.append((f"{dist_info}/RECORD", record.encode(), 0o644))

    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, f"{NAME}-{args.version}-{tag}.whl")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for path, data, mode in files:
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            info.external_attr = (0o100000 | mode) << 16  # the executable bit survives pip's unpacking
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    print(out)


if __name__ == "__main__":
    main()
