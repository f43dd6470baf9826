#!/usr/bin/env bash
# Base images made from Debian's own packages, for machines that reach Debian's mirror but no
# container registry (docs/operations.md, "Building without a registry"):
#
#   keten-local/debian:12              Debian 12 (bookworm) minbase, by debootstrap + docker import;
#                                      DEBIAN_IMAGE for the RabbitMQ, PostgreSQL and Prometheus
#                                      images of docker-compose.yml
#   keten-local/python:3.11-debian12   that plus Debian's Python 3.11; PYTHON_IMAGE for deploy/Dockerfile
#
# Usage: deploy/images/build-base.sh [--force]   (root; an existing keten-local/debian:12 is kept
# unless --force: debootstrap is the slow step). Needs debootstrap and a running Docker engine.
set -euo pipefail

DEBIAN_IMAGE=keten-local/debian:12
PYTHON_IMAGE=keten-local/python:3.11-debian12
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HERE=$(cd "$(dirname "$0")" && pwd)
force=${1:-}

say() { echo "== $*"; }

if [ "$force" = "--force" ] || ! docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  rootfs=$(mktemp -d /var/tmp/keten-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap: Debian 12 (bookworm) minbase from $MIRROR (a minute or two)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" >/dev/null
  # What the official debian images set up too: current security fixes, no recommends, no caches.
  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SOURCES
  # Package scripts must not start services during an image build (as in the official images).
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$rootfs/etc/apt/apt.conf.d/90keten-no-recommends"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/tmp/*
  say "docker import -> $DEBIAN_IMAGE"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian 12 minbase, debootstrap from $MIRROR\" org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
else
  say "$DEBIAN_IMAGE exists (--force makes it anew)"
fi

say "docker build -> $PYTHON_IMAGE (Debian's python3.11)"
DOCKER_BUILDKIT=0 docker build --quiet --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$PYTHON_IMAGE" "$HERE/python" >/dev/null
say "built: $DEBIAN_IMAGE, $PYTHON_IMAGE ($(docker run --rm "$PYTHON_IMAGE" python --version))"
