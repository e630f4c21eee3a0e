"""pvdoi: DOI-published solar PV label datasets into verified GeoParquet and a DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = PROJECT_ROOT / "doi_manifest.json"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

__all__ = ["DBT_PROJECT_DIR", "DEFAULT_MANIFEST", "PROJECT_ROOT"]
