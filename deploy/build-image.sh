#!/usr/bin/env bash
# Builds Keten's image from deploy/Dockerfile: what `make image` runs.
#
#   deploy/build-image.sh [TAG]        (default keten:dev, the tag docker-compose.yml runs)
#
# PYTHON_IMAGE is the base: by default keten-local/python:3.11-debian12, made from Debian's
# packages by deploy/images/build-base.sh when it is missing (no registry needed); where a
# registry is reachable, PYTHON_IMAGE=python:3.11-slim-bookworm works as well.
# This machine's extra CA certificates (/usr/local/share/ca-certificates/*.crt: a TLS-inspecting
# proxy between the build and PyPI) are copied to deploy/ca-certificates/, which only the build
# stage trusts; the image does not contain them.
# Docker's classic builder (DOCKER_BUILDKIT=0): it needs nothing from a registry.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-keten:dev}
python_image=${PYTHON_IMAGE:-keten-local/python:3.11-debian12}

if [ "$python_image" = keten-local/python:3.11-debian12 ] && ! docker image inspect "$python_image" >/dev/null 2>&1; then
  echo "== $python_image is missing: making it from Debian's packages"
  deploy/images/build-base.sh
fi

shopt -s nullglob
extra=(/usr/local/share/ca-certificates/*.crt)
if [ ${#extra[@]} -gt 0 ]; then
  cp "${extra[@]}" deploy/ca-certificates/
  echo "== trusting this machine's extra CA certificates in the build stage: ${extra[*]##*/}"
fi

echo "== docker build -> $tag (on $python_image)"
started=$(date +%s)
DOCKER_BUILDKIT=0 docker build -f deploy/Dockerfile --build-arg "PYTHON_IMAGE=$python_image" -t "$tag" .
echo "== built $tag in $(($(date +%s) - started))s"
