"""pvdoi: DOI-published solar PV label datasets into verified GeoParquet and a DuckDB warehouse."""

from __future__ import annotations

import os
from pathlib import Path

# Hamilton imports every installed library's plugin at start-up (dlt, polars, …: ~0.5 s); the
# dataflows here use plain functions and their own fingerprints, so skip the plugins.
os.environ.setdefault("HAMILTON_AUTOLOAD_EXTENSIONS", "0")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = PROJECT_ROOT / "doi_manifest.json"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

__all__ = ["DBT_PROJECT_DIR", "DEFAULT_MANIFEST", "PROJECT_ROOT"]
