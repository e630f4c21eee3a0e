"""Shared fixtures: the real India sample, the local repository server, isolated settings."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PVDOI_SHARED_DIR", ROOT.parent / "shared"))
INDIA = SHARED / "samples" / "ind_pv_solar_farms_2022" / "solar_farms_india_2021_merged_simplified.geojson"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_USE_COLORS", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "hamilton,pvdoi")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# the AWS credential chain (pyarrow's S3 client, DuckDB's aws extension) never asks an instance metadata service
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
if "PREFECT_HOME" not in os.environ:  # keep test runs (results, database) out of the user's home
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="pvdoi-prefect-home-")


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect API for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def india_sample() -> Path:
    assert INDIA.exists(), f"the real India sample is missing: {INDIA}"
    return INDIA


@pytest.fixture(scope="session")
def lookalike_dir(tmp_path_factory) -> Path:
    """Look-alike files of the six datasets, generated once per session."""
    from pvdoi.testing.reposerver import RepoServer

    path = tmp_path_factory.mktemp("repository")
    RepoServer(path)  # generates the files
    return path


@pytest.fixture()
def repo(lookalike_dir, monkeypatch):
    """A fresh local repository server (own faults and published state) with the settings pointing at it."""
    from pvdoi.testing.reposerver import RepoServer

    with RepoServer(lookalike_dir) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("PVDOI_HTTP_BACKOFF_FACTOR", "0.01")
        yield server


@pytest.fixture()
def workdir(tmp_path, monkeypatch) -> Path:
    """Outputs and cache of one test, isolated under tmp_path."""
    monkeypatch.setenv("PVDOI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PVDOI_CACHE_PATH", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture()
def postgres() -> Iterator[str]:
    """A real PostgreSQL server (pgserver), stopped after the test; its libpq conninfo."""
    with postgres_server() as conninfo:
        yield conninfo


def write_manifest(path: Path, edit) -> str:
    """A copy of the default manifest changed by ``edit(raw)``; returns its path."""
    import json

    from pvdoi import DEFAULT_MANIFEST

    raw = json.loads(DEFAULT_MANIFEST.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))
    return str(path)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server (pgserver) in a temporary folder (short: its socket lives there), stopped and removed
    after the block; yields the libpq conninfo of its database ``postgres``."""
    import pgserver

    folder = tempfile.mkdtemp(prefix="pvdoi-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield f"dbname=postgres host={folder} user=postgres"
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
