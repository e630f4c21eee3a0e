"""Two "machines" on one Dask cluster: two `dask worker` processes, each with its own data folder, Hamilton cache,
temporary folder and Prefect home, sharing only a bucket (moto's S3 server: the download store, the GeoParquet
outputs, the lake's data files) and a DuckLake catalog (a real PostgreSQL server, pgserver), ingest the six
look-alike datasets; the flow's process loads the lake from the bucket and builds dbt on it, with the same curated
rows as a single-machine run into a DuckDB file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pvdoi.manifest import load_manifest
from pvdoi.settings import get_settings
from tests.conftest import postgres_server
from tests.overture_release import moto_server, query_one, s3_client
from tests.test_ducklake import _counts

pytestmark = pytest.mark.usefixtures("prefect_api")
ROOT = Path(__file__).resolve().parent.parent
BUCKET, KEY_ID, SECRET = "pv-machines", "machines-key", "machines-secret"
MACHINES = ("machine-a", "machine-b")
PER_DATASET = "select dataset_id, count(*) from curated.installations group by 1"


@pytest.fixture()
def bucket_env():
    """An empty bucket on a local S3 API; the settings every machine gets for it (store, outputs, keys)."""
    with moto_server() as endpoint:
        s3_client(endpoint, KEY_ID, SECRET, "us-east-1").create_bucket(Bucket=BUCKET)
        yield {"PVDOI_STORE_URL": f"s3://{BUCKET}/store", "PVDOI_OUTPUT_URL": f"s3://{BUCKET}/outputs",
               "PVDOI_S3_ENDPOINT": endpoint, "PVDOI_S3_KEY_ID": KEY_ID, "PVDOI_S3_SECRET": SECRET}


@pytest.fixture()
def scheduler():
    """A Dask scheduler with no workers of its own (the two machines' workers join it)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster:
        yield cluster


def _start_worker(address: str, home: Path, shared: dict[str, str]) -> subprocess.Popen:
    """A `dask worker` process of one machine: its own folders under ``home``, the shared bucket's settings, no lake
    settings (only the flow's process loads)."""
    own = {"PVDOI_DATA_DIR": home / "data", "PVDOI_CACHE_PATH": home / "cache", "TMPDIR": home / "tmp",
           "PREFECT_HOME": home / "prefect"}
    for folder in own.values():
        folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PVDOI_LAKE_", "PVDOI_WAREHOUSE_"))}
    env |= shared | {k: str(v) for k, v in own.items()} | {"PYTHONPATH": str(ROOT)}
    with open(home / "worker.log", "w") as log:  # the process keeps its own copy of the file open
        return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--name", home.name, "--local-directory",
                                 str(home / "tmp")], env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _ingested_by(home: Path) -> set[str]:
    """The datasets a machine ran: those its own Hamilton cache logged a run of."""
    return {p.stem for p in (home / "cache" / "run_logs").glob("*.jsonl")}


def test_two_machines_sharing_a_bucket_and_a_catalog_build_the_lake_a_single_machine_builds(
        repo, tmp_path, monkeypatch, bucket_env, scheduler):
    from flows.ingest_flow import pv_doi_ingest

    workers = [_start_worker(scheduler.scheduler_address, tmp_path / m, bucket_env) for m in MACHINES]
    try:
        single = tmp_path / "single" / "data"  # one machine, a DuckDB file, nothing shared: while the workers start
        state = pv_doi_ingest(data_dir=str(single), cache_path=str(tmp_path / "single" / "cache"), overture=False,
                              return_state=True)
        assert state.is_completed(), state.message
        expected = _counts(str(single / "eo_pv_data.duckdb"))
        expected_per_dataset = dict(query_one(single / "eo_pv_data.duckdb", PER_DATASET))
        downloads = repo.downloads()
        with postgres_server() as conninfo:
            lake, results = _two_machine_run(scheduler, workers, tmp_path, monkeypatch, bucket_env, conninfo)
            assert _counts(lake) == expected and expected["curated.installations"] > 1000  # dbt built it all
            assert dict(query_one(lake, PER_DATASET)) == expected_per_dataset
    finally:
        _stop(workers)
    ran = {m: _ingested_by(tmp_path / m) for m in MACHINES}
    assert all(ran.values()) and not ran[MACHINES[0]] & ran[MACHINES[1]], ran  # both worked, each on its own
    assert ran[MACHINES[0]] | ran[MACHINES[1]] == set(results) == set(load_manifest(get_settings().manifest_path).ids)
    for machine, mine in ran.items():  # a machine's folders hold its own datasets' files, none of the other's
        written = {p.stem for p in (tmp_path / machine / "data" / "geoparquet").glob("*.parquet")}
        stored = {p.name for p in (tmp_path / machine / "data" / "downloads").rglob("*") if p.is_file()}
        assert written == mine and stored == {f["name"] for d in mine for f in results[d].files}
    assert repo.downloads() - downloads == sum(len(r.files) for r in results.values())  # each file once, by one
    assert all(r.geoparquet.path.startswith(f"s3://{BUCKET}/outputs/") for r in results.values())
    flow = tmp_path / "flow" / "data"  # the flow's process ingested nothing itself
    assert not (flow / "geoparquet").exists() and not (flow / "downloads").exists()


def _two_machine_run(scheduler, workers, tmp_path, monkeypatch, bucket_env, conninfo) -> tuple[str, dict]:
    """The flow's process (its own folders, the bucket, the lake) with its dataset tasks on the two machines'
    workers: the lake's URI and the datasets' results."""
    from flows.ingest_flow import pv_doi_ingest

    settings = {**bucket_env, "PVDOI_DATA_DIR": tmp_path / "flow" / "data", "PVDOI_CACHE_PATH": tmp_path / "flow" /
                "cache", "PVDOI_WAREHOUSE_BACKEND": "ducklake", "PVDOI_LAKE_CATALOG": f"postgres:{conninfo}",
                "PVDOI_LAKE_DATA_PATH": f"s3://{BUCKET}/lake/"}
    for key, value in settings.items():
        monkeypatch.setenv(key, str(value))
    try:
        scheduler.wait_for_workers(len(MACHINES), timeout=180)
    except TimeoutError:
        pytest.fail("the workers did not join: " + " | ".join(
            f"{m} (exit {w.poll()}): {(tmp_path / m / 'worker.log').read_text()[-2000:]}"
            for m, w in zip(MACHINES, workers)))
    state = pv_doi_ingest(overture=False, dask_address=scheduler.scheduler_address, return_state=True)
    assert state.is_completed(), state.message
    assert "ingest_dataset" in scheduler.scheduler.task_prefixes  # the tasks went through this scheduler
    return f"ducklake:postgres:{conninfo}", state.result()
