#!/usr/bin/env bash
# Install everything dbpulse needs to run and to be tested, on a fresh Debian machine:
# system packages (PostgreSQL 15 with pg_stat_statements and HypoPG, Redis,
# Prometheus/promtool, Alertmanager/amtool, Chromium for the UI test, and the
# peers the benchmarks compare against: the exporters and pg_qualstats' index
# advisor), then a virtualenv with the
# project and its test extra. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  postgresql-15 postgresql-contrib postgresql-15-hypopg redis-server
  prometheus prometheus-alertmanager chromium chromium-driver
  prometheus-postgres-exporter prometheus-redis-exporter postgresql-15-pg-qualstats
)
PYTHON=${PYTHON:-python3}

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
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

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.dbpulse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# The demo (demo/) and the throwaway servers (harness/) are not part of the installed service; this
# development venv gets the checkout on its path so `dbpulse demo`, the tests and bench/ find them.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$PWD" > "$site/dbpulse-checkout.pth"
echo "setup: ready (.venv/bin/dbpulse $(.venv/bin/dbpulse --version | cut -d' ' -f2))"
