#!/usr/bin/env bash
# The Dockerfile's base images made from Debian's packages, for a machine that cannot pull
# python:3.11-slim-bookworm or the uv image (tests/test_container.py builds with these there):
#   totes-local/python:bookworm   Debian bookworm, minbase, with Python 3.11: the runtime base
#   totes-local/build:bookworm    the same plus uv and this machine's CA bundle: the build base
# Then: docker build -f docker/Dockerfile --network=host \
#         --build-arg UV_IMAGE=totes-local/build:bookworm \
#         --build-arg BUILD_IMAGE=totes-local/build:bookworm \
#         --build-arg RUNTIME_IMAGE=totes-local/python:bookworm -t totes .
# Needs root (mmdebstrap), a Docker daemon, and uv on PATH or in .totes/tools (make install).
# The runtime base is made once (about a minute) and kept; the build base is rebuilt each time,
# from the layer cache when nothing changed. The CA bundle goes into the build base only.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=totes-local/python:bookworm
build=totes-local/build:bookworm
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
uv=$(command -v uv || echo .totes/tools/bin/uv)

if ! docker image inspect "$runtime" >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  # Debian's Essential set (no apt: 12 MB that a run never uses) with Python, the CA
  # certificates, the C++ runtime (pyarrow) and useradd; /usr merged by mmdebstrap's own hook
  # (Debian's usrmerge package would bring 46 MB of Perl); documentation, manuals and
  # translations left out (the copyright files stay)
  mmdebstrap --quiet --variant=essential --include=python3,ca-certificates,libstdc++6,passwd \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$rootfs/rootfs.tar"
  docker import --change 'CMD ["python3"]' "$rootfs/rootfs.tar" "$runtime" >/dev/null
fi

context=$(mktemp -d)
trap 'rm -rf "$context" "${rootfs:-}"' EXIT
cp "$ca_bundle" "$context/ca-certificates.crt"
cp "$uv" "$context/uv"
docker build --quiet --tag "$build" --file - "$context" >/dev/null <<EOF
FROM $runtime
COPY uv /uv
COPY ca-certificates.crt /etc/ssl/certs/build-ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/build-ca-certificates.crt
EOF
echo "$runtime $build"
