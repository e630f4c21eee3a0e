#!/usr/bin/env bash
# The test command: set up with the test tools (idempotent) and run the whole suite, end-to-end tests included.
# (The test extra brings pgserver: tests/test_ducklake.py starts a real PostgreSQL catalog from its wheel.)
set -euo pipefail
cd "$(dirname "$0")/.."
PVDOI_WITH_TEST_TOOLS=1 ./scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false DBT_USE_COLORS=false DO_NOT_TRACK=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
