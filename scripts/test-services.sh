#!/usr/bin/env bash
# Starts (installing if needed) the real services the tests talk to:
# PostgreSQL on 127.0.0.1:5432 with database "test" and trust auth, the
# Mosquitto binaries the broker tests start on private ports, and Node.js
# for the AsyncAPI parser. Idempotent.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "installing PostgreSQL"
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  echo "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi
# Trust auth and the test database, as the tests expect them.
if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  as_root runuser -u postgres -- psql -qc "create database test" || true
fi
psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null \
  || { echo "cannot reach database test as postgres on 127.0.0.1:5432 (trust auth expected)" >&2; exit 1; }

if ! command -v mosquitto >/dev/null || ! command -v mosquitto_pub >/dev/null; then
  echo "installing Mosquitto"
  apt_install mosquitto mosquitto-clients
fi
# The AsyncAPI documents are validated with the official parser (npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js"
  apt_install nodejs npm
fi
echo "test services ready: PostgreSQL 127.0.0.1:5432/test, $(mosquitto -h 2>/dev/null | head -n1), node $(node --version)"
