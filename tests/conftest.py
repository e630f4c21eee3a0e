"""Shared fixtures: the real India sample, the local repository server, isolated settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PVDOI_SHARED_DIR", ROOT.parent / "shared"))
INDIA = SHARED / "samples" / "ind_pv_solar_farms_2022" / "solar_farms_india_2021_merged_simplified.geojson"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_USE_COLORS", "false")


@pytest.fixture(scope="session")
def india_sample() -> Path:
    assert INDIA.exists(), f"the real India sample is missing: {INDIA}"
    return INDIA
