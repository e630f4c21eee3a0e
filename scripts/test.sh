#!/usr/bin/env bash
# The test command: set up (idempotent) and run the whole suite, end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false DBT_USE_COLORS=false DO_NOT_TRACK=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
