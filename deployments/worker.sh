#!/usr/bin/env bash
# A process worker for the deployments: runs each flow run as a subprocess of this virtualenv's Python.
# Flow runs inherit this environment (PVDOI_* settings and tokens, PREFECT_API_URL), and the deployments'
# pull step moves them to the project root, so ./data and ./.hamilton_cache are the project's own.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFECT=${PREFECT:-.venv/bin/prefect}
if ! "$PREFECT" config view 2>/dev/null | grep -q '^PREFECT_API_URL='; then
  echo "worker.sh: PREFECT_API_URL is not set; see deployments/deploy.sh" >&2
  exit 2
fi
exec "$PREFECT" worker start --pool pvdoi-process --type process "$@"
