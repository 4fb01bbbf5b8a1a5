#!/usr/bin/env bash
# Make sure what the tests need from Debian is present: a PostgreSQL server (the
# store tests start their own) and Chromium (the browser tests). Installs the
# packages when running as root; otherwise says exactly what to install.
set -euo pipefail

need=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ "${RINGFENCE_NEED_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
if [ "${RINGFENCE_NEED_REDIS:-0}" = 1 ] && ! command -v redis-server >/dev/null 2>&1; then
  need+=(redis-server)  # the reference in bench/propagation.py
fi
if [ "${RINGFENCE_NEED_WRK:-0}" = 1 ] && ! command -v wrk >/dev/null 2>&1; then
  need+=(wrk)  # the load generator of bench/ingest.py
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install -y ${need[*]}   (or run make as root)" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
