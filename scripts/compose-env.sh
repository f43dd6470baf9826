#!/usr/bin/env bash
# Writes the .env that docker-compose.yml reads: .env.example with every secret filled in with
# fresh random values (KETEN_MASTER_KEY and KETEN_PSEUDONYM_SECRET: 32 random bytes, base64;
# passwords: 48 hex digits). It never overwrites an existing file.
#
#   scripts/compose-env.sh [--without-registry] [FILE]      (FILE defaults to .env)
#
# --without-registry: build on the base images made from Debian's packages (`make image` or
# `make base-images` makes them) instead of debian:bookworm-slim and python:3.11-slim-bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."
local_bases=0
if [ "${1:-}" = "--without-registry" ]; then local_bases=1; shift; fi
target=${1:-.env}
if [ -e "$target" ]; then
  echo "$target exists; not overwriting it (delete it first to start afresh: its secrets open the data)" >&2
  exit 1
fi

secret() { python3 -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'; }
password() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

umask 077
while IFS= read -r line; do
  case "$line" in
    KETEN_MASTER_KEY= | KETEN_PSEUDONYM_SECRET=) echo "$line$(secret)" ;;
    RABBITMQ_PASSWORD= | POSTGRES_PASSWORD= | GRAFANA_ADMIN_PASSWORD=) echo "$line$(password)" ;;
    DEBIAN_IMAGE=*) [ $local_bases = 1 ] && echo "DEBIAN_IMAGE=keten-local/debian:12" || echo "$line" ;;
    PYTHON_IMAGE=*) [ $local_bases = 1 ] && echo "PYTHON_IMAGE=keten-local/python:3.11-debian12" || echo "$line" ;;
    *) echo "$line" ;;
  esac
done < .env.example > "$target"
echo "wrote $target (mode 0600): fresh secrets$([ $local_bases = 1 ] && echo ", base images made from Debian's packages"). Keep it out of git; back up KETEN_MASTER_KEY apart from the data."
