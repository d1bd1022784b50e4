# syntax=docker/dockerfile:1
# SharpWsgi in a container: built with the .NET SDK image (NativeAOT), run on a slim Debian with python3.
#   docker build -t sharpwsgi .
#   docker run --rm -p 8000:8000 sharpwsgi                        # the built-in welcome page
#   docker run --rm -p 8000:8000 -v "$PWD/examples:/app" sharpwsgi hello.py
# An app's own image: FROM sharpwsgi, then a venv (Debian's pip refuses the system site-packages, PEP 668):
#   RUN python3 -m venv /venv && /venv/bin/pip install -r requirements.txt
#   ENV VIRTUAL_ENV=/venv
#   CMD ["myproject.wsgi:application"]

# .NET 10's SDK images are Ubuntu 24.04 (no Debian ones); the -aot variant has clang and the native libraries
# NativeAOT links. Its glibc (2.39) is older than trixie's (2.41), so the executable runs on the image below.
FROM mcr.microsoft.com/dotnet/sdk:10.0-noble-aot AS build
WORKDIR /src
# Project files first: the restore layer is reused while only sources change.
COPY Directory.Build.props SharpWsgi.slnx nuget.config publish.nuget.config publish.sh ./
COPY src/SharpWsgi.Python/SharpWsgi.Python.csproj src/SharpWsgi.Python/
COPY src/SharpWsgi.Gateway/SharpWsgi.Gateway.csproj src/SharpWsgi.Gateway/
COPY src/SharpWsgi/SharpWsgi.csproj src/SharpWsgi/
RUN dotnet restore src/SharpWsgi/SharpWsgi.csproj -r linux-x64 -p:PublishAot=true --configfile publish.nuget.config
COPY src/ src/
COPY packaging/launcher/ packaging/launcher/
# The commit for --version comes from .git, which .dockerignore leaves out: pass it in.
ARG SOURCE_REVISION=unknown
RUN dotnet publish src/SharpWsgi/SharpWsgi.csproj -c Release -r linux-x64 -p:PublishAot=true \
        -p:SourceRevisionId="$SOURCE_REVISION" --configfile publish.nuget.config -o /out \
    && rm -f /out/*.dbg /out/*.pdb \
    && mv /out/sharpwsgi.so /out/_sharpwsgi.so \
    && gcc -O2 -o /out/sharpwsgi packaging/launcher/sharpwsgi.c -ldl \
    && /out/sharpwsgi --help >/dev/null

# Debian 13: python3 is 3.13; the workers run in it.
FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libssl3t64 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --uid 10001 sharpwsgi
COPY --from=build /out/sharpwsgi /usr/bin/sharpwsgi
COPY --from=build /out/_sharpwsgi.so /usr/lib/sharpwsgi/_sharpwsgi.so
WORKDIR /app
USER sharpwsgi
# Every option is also a SHARPWSGI_* variable: override them with docker run -e.
ENV SHARPWSGI_BIND=0.0.0.0:8000 SHARPWSGI_WORKERS=2
EXPOSE 8000
# The supervisor handles TERM (graceful stop) itself; exec form, so it is PID 1 and gets docker stop's TERM.
# It reaps its workers; an app that starts subprocesses of its own wants `docker run --init` to reap theirs.
ENTRYPOINT ["/usr/bin/sharpwsgi"]
CMD []
