#!/usr/bin/env bash
# Everything the test suite needs on this machine (Debian 12), started or installed when it is
# missing, and said plainly: PostgreSQL and RabbitMQ running, RabbitMQ's management plugin,
# Chromium and ChromeDriver (the citizen page's tests), kubectl (the Kubernetes manifests), a
# Docker engine with docker-compose and debootstrap (the real stack in tests/deploy), promtool
# (Prometheus' checker). What is already there is left alone. `make test` runs this first.
# Installing needs root (apt-get); without root it says what to install and stops.
set -euo pipefail

changed=0
say() { echo "prerequisites: $*"; }
did() { changed=1; say "$*"; }

# Installs each Debian package whose command (or file, given as a path) is missing:
# arguments "command:package" or "/path:package".
install_missing() {
  local missing=() pair what
  for pair in "$@"; do
    what=${pair%%:*}
    if [ "${what#/}" != "$what" ]; then [ -e "$what" ] && continue
    else command -v "$what" >/dev/null 2>&1 && continue; fi
    missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing: ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  say "installing ${missing[*]} with apt-get (once)..."
  local log
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    say "apt-get could not install ${missing[*]}" >&2
    exit 1
  fi
  rm -f "$log"
  did "installed ${missing[*]}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # seconds, description, command...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  say "$what did not come up within ${seconds}s" >&2
  exit 1
}

# -- PostgreSQL (127.0.0.1:5432, trust, database test) and RabbitMQ (guest/guest) ---------------
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_for 30 PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q
  did "started PostgreSQL"
fi
if ! port_open 5672; then
  rabbitmq-server -detached
  wait_for 60 RabbitMQ rabbitmqctl -q status
  did "started RabbitMQ"
fi
# Integration tests give each run its own vhost through the management API.
api_up() { curl -sf -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null; }
if ! api_up; then
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null
  wait_for 60 "RabbitMQ's management API" api_up
  did "enabled RabbitMQ's management plugin (http://127.0.0.1:15672)"
fi

# -- programs the tests run ----------------------------------------------------------------------
install_missing chromium:chromium chromedriver:chromium-driver /usr/share/fonts/truetype/dejavu:fonts-dejavu-core \
  kubectl:kubectl dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap \
  promtool:prometheus

# -- the Docker engine ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log=/var/log/keten-dockerd.log
  if [ "$(id -u)" -ne 0 ]; then
    say "the Docker engine is not running; start it as root: dockerd" >&2
    exit 1
  fi
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
  wait_for 60 "the Docker engine" docker info
  did "started the Docker engine (dockerd, log $log; it keeps running)"
fi

[ "$changed" -eq 0 ] && say "all there (PostgreSQL, RabbitMQ with management, Chromium, kubectl, Docker, promtool)"
exit 0
