#!/usr/bin/env bash
# Set-up for the main job on a fresh machine (idempotent): Graphviz, the virtualenv, the project, DuckDB extensions.
# The test tools (pytest, moto, playwright and Debian's chromium) come with ./scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local need=()
  for pkg in "$@"; do
    local cmd=${pkg%%:*}; local deb=${pkg#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$deb")
  done
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing Debian packages: ${need[*]}"
    $sudo apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}
apt_install dot:graphviz
[ "${PVDOI_WITH_TEST_TOOLS:-0}" = "1" ] && apt_install chromium:chromium chromedriver:chromium-driver

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
extras=""; [ "${PVDOI_WITH_TEST_TOOLS:-0}" = "1" ] && extras="[test]"
.venv/bin/python -m pip install -q -e ".${extras}" 2>&1 | grep -v -E "^(WARNING|  |$)" || true
.venv/bin/python -c "import pvdoi, flows, hamilton_nodes, prefect, hamilton, dbt.version" >/dev/null
# the DuckDB extensions come from their wheels, never from the network: spatial, httpfs, and for the DuckLake backend
# ducklake with its catalogs sqlite and postgres, aws for S3 credentials from the AWS credential chain (pvdoi/duckdb_ext.py)
.venv/bin/python -m pvdoi.duckdb_ext
