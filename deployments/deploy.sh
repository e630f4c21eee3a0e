#!/usr/bin/env bash
# Create (or update) the process work pool and the four deployments of prefect.yaml on the Prefect
# server that PREFECT_API_URL points at. Idempotent: run it again after changing prefect.yaml or the flow.
# PVDOI_DASK_ADDRESS names the Dask scheduler of the ingest-all-dask deployment (e.g. tcp://10.0.0.5:8786);
# unset, that deployment starts a temporary local cluster of two single-threaded workers per run (local:2).
set -euo pipefail
cd "$(dirname "$0")/.."   # `prefect deploy` reads ./prefect.yaml; its build step records this folder for the pull step
PREFECT=${PREFECT:-.venv/bin/prefect}
POOL=pvdoi-process   # the work_pool.name of every deployment in prefect.yaml

if ! "$PREFECT" config view 2>/dev/null | grep -q '^PREFECT_API_URL='; then
  echo "deploy.sh: PREFECT_API_URL is not set; point it at your server first, e.g." >&2
  echo "  export PREFECT_API_URL=http://127.0.0.1:4200/api" >&2
  exit 2
fi
"$PREFECT" --no-prompt work-pool inspect "$POOL" >/dev/null 2>&1 ||
  "$PREFECT" --no-prompt work-pool create "$POOL" --type process
# The warehouse has one writer: at most one flow run of the pool at a time, whichever deployment it comes from.
"$PREFECT" --no-prompt work-pool set-concurrency-limit "$POOL" 1
# Read only here, by prefect.yaml's "{{ $PVDOI_DASK_ADDRESS }}": the worker's own environment must not set it, or
# every deployment's dataset tasks would go to Dask (the flow falls back to the setting).
export PVDOI_DASK_ADDRESS="${PVDOI_DASK_ADDRESS:-local:2}"   # the same default as deployments/serve.py
exec "$PREFECT" --no-prompt deploy --all
