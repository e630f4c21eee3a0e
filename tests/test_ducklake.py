"""The DuckLake backend (pvdoi/warehouse/lake.py): the flow loads a lake with a SQLite catalog and dbt builds on it,
with the same curated rows as the DuckDB file; writers of different datasets at once both succeed; a load killed in
the middle of its transaction leaves the dataset as it was.

All real: DuckLake, its SQLite catalog, separate processes; no mocks.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

import pytest

from pvdoi.duckdb_ext import connect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITER = os.path.join(ROOT, "tests", "lake_writer.py")
INDIA, CHINA = "ind_pv_solar_farms_2022", "chn_med_res_pv_2024"
CURATED = ("curated.installations", "curated.dataset_summary", "curated.country_summary",
           "curated.installation_shape_metrics", "prepared.int_installations_unioned")


@pytest.fixture(params=["sqlite", "postgres"])
def lake_uri(request, tmp_path, monkeypatch):
    """A fresh lake with a SQLite catalog file, or a PostgreSQL catalog on a real server (pgserver)."""
    if request.param == "sqlite":
        return f"ducklake:sqlite:{tmp_path / 'lake' / 'catalog.sqlite'}"
    monkeypatch.setenv("PVDOI_LAKE_DATA_PATH", str(tmp_path / "lake-files"))
    return f"ducklake:postgres:{request.getfixturevalue('postgres')}"


def _counts(database: str) -> dict[str, int]:
    con = connect(database, read_only=True)
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in CURATED}
    finally:
        con.close()


def _run(workdir, name: str, datasets=None):
    from flows.ingest_flow import pv_doi_ingest

    return pv_doi_ingest(datasets=datasets, data_dir=str(workdir / name), cache_path=str(workdir / "cache"),
                         run_dbt=True, overture=False, return_state=True)


@pytest.mark.usefixtures("prefect_api")
def test_a_run_on_a_sqlite_catalog_lake_builds_the_same_curated_rows_as_duckdb(repo, workdir, monkeypatch):
    state = _run(workdir, "duckdb")
    assert state.is_completed(), state.message
    expected = _counts(str(workdir / "duckdb" / "eo_pv_data.duckdb"))

    monkeypatch.setenv("PVDOI_WAREHOUSE_BACKEND", "ducklake")
    state = _run(workdir, "lake")
    assert state.is_completed(), state.message
    lake = f"ducklake:sqlite:{workdir / 'lake' / 'lake' / 'catalog.sqlite'}"
    assert _counts(lake) == expected and expected["curated.installations"] > 1000
    assert not (workdir / "lake" / "eo_pv_data.duckdb").exists()
    assert list((workdir / "lake" / "lake" / "files").rglob("*.parquet"))  # the rows live in the lake's files
    _history_and_export_at(lake, workdir, expected["curated.installations"])


def _history_and_export_at(lake: str, workdir, installations: int) -> None:
    """`pvdoi history` lists each dataset's load (rows, run id); `pvdoi export --at` reads the lake as it was."""
    import json

    import geopandas as gpd
    from typer.testing import CliRunner

    from flows.cli import app

    shown = CliRunner().invoke(app, ["history", "--database", lake, "--limit", "0", "--json"])
    assert shown.exit_code == 0, shown.output
    snapshots = json.loads(shown.stdout)
    loads = {s["dataset_id"]: s for s in snapshots if s["message"] and s["message"].startswith("load ")}
    con = connect(lake, read_only=True)
    try:
        rows = dict(con.execute("select dataset_id, count(*) from raw_data.doi_pv_features group by 1").fetchall())
    finally:
        con.close()
    assert {d: s["rows"] for d, s in loads.items()} == rows and len(rows) == 6
    assert all(s["run_id"] for s in loads.values())  # the flow run that loaded it
    built = snapshots[0]["snapshot"]
    con = connect(lake)
    try:  # a later change: one dataset's installations gone
        con.execute("delete from curated.installations where dataset_id = ?", [INDIA])
    finally:
        con.close()
    for at, expected in ((None, installations - 1363), (built, installations)):
        out = str(workdir / f"at-{at}.parquet")
        done = CliRunner().invoke(app, ["export", "--database", lake, "-o", out]
                                  + (["--at", str(at)] if at is not None else []))
        assert done.exit_code == 0, done.output
        assert len(gpd.read_parquet(out)) == expected


def _writer(uri: str, report: str, times: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, WRITER, uri, report, str(times), *extra], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _reports(workdir, *datasets: str) -> list[str]:
    """The datasets' look-alikes ingested for real, each result pickled for a writer process."""
    from flows.dataflow import run_dataset

    paths = []
    for dataset in datasets:
        path = workdir / f"{dataset}.pickle"
        path.write_bytes(pickle.dumps(run_dataset(dataset)))
        paths.append(str(path))
    return paths


def _rows(uri: str) -> dict[str, int]:
    con = connect(uri, read_only=True)
    try:
        return dict(con.execute("select dataset_id, count(*) from raw_data.doi_pv_features group by 1").fetchall())
    finally:
        con.close()


def test_two_processes_loading_different_datasets_into_one_lake_at_once_both_succeed(repo, workdir, lake_uri):
    india, china = _reports(workdir, INDIA, CHINA)
    uri = lake_uri
    writers = [_writer(uri, india, 4), _writer(uri, china, 4)]  # each replaces its dataset's rows 4 times
    outputs = [w.communicate(timeout=300) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    china_rows = pickle.loads(open(china, "rb").read()).geoparquet.rows
    assert _rows(uri) == {INDIA: 1363, CHINA: china_rows}
    con = connect(uri, read_only=True)
    try:
        loads = [m for (m,) in con.execute("select commit_message from lake.snapshots() "
                                           "where commit_message like 'load %' order by snapshot_id").fetchall()]
    finally:
        con.close()
    assert sorted(loads) == sorted([f"load {INDIA}"] * 4 + [f"load {CHINA}"] * 4)  # one snapshot per load


def test_a_load_killed_inside_its_transaction_leaves_the_previous_snapshot_of_the_dataset(repo, workdir):
    [india] = _reports(workdir, INDIA)
    uri = f"ducklake:sqlite:{workdir / 'lake' / 'catalog.sqlite'}"
    first = _writer(uri, india, 1)
    assert first.communicate(timeout=300)[0].strip() == "done"

    def state() -> list[tuple]:
        con = connect(uri, read_only=True)
        try:
            return con.execute("select max(snapshot_id), (select list(distinct loaded_at) from "
                               "raw_data.doi_pv_features), (select geoparquet_sha256 from raw_data.datasets) "
                               "from lake.snapshots()").fetchall()
        finally:
            con.close()

    before = state()
    killed = _writer(uri, india, 1, "--stop-before-commit")
    ready = killed.stdout.readline().strip()
    assert ready == "ready", killed.communicate(timeout=60)  # its rows deleted and inserted, not committed
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert state() == before and before[0][2].endswith(" load 0")
    assert _rows(uri) == {INDIA: 1363}
    again = _writer(uri, india, 1)  # nothing left locked: the next load goes through
    assert again.communicate(timeout=300)[0].strip() == "done"
    assert state()[0][0] > before[0][0]


@pytest.mark.usefixtures("prefect_api")
def test_a_run_on_a_postgres_catalog_lake_passes_dbt_build(repo, workdir, monkeypatch, postgres):
    """The catalog several machines would share: a real PostgreSQL server; the data files in a local folder."""
    monkeypatch.setenv("PVDOI_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("PVDOI_LAKE_CATALOG", f"postgres:{postgres}")
    monkeypatch.setenv("PVDOI_LAKE_DATA_PATH", str(workdir / "lake-files"))
    state = _run(workdir, "pg", datasets=[INDIA, CHINA])
    assert state.is_completed(), state.message
    counts = _counts(f"ducklake:postgres:{postgres}")
    assert counts["curated.installations"] == counts["prepared.int_installations_unioned"] > 1363
    assert list((workdir / "lake-files").rglob("*.parquet"))


@pytest.mark.usefixtures("prefect_api")
def test_one_changed_dataset_on_a_lake_rebuilds_what_depends_on_it_and_equals_a_full_build(repo, workdir,
                                                                                           monkeypatch):
    """The partial build on a lake: the incremental models' delete+insert of one dataset runs as DuckLake
    transactions, and the lake's tables then equal those of a forced full build."""
    import json

    from tests.test_dbt_project import assert_same_tables, dbt_tables

    monkeypatch.setenv("PVDOI_WAREHOUSE_BACKEND", "ducklake")
    lake = f"ducklake:sqlite:{workdir / 'inc' / 'lake' / 'catalog.sqlite'}"
    assert _run(workdir, "inc", datasets=[INDIA, CHINA]).is_completed()
    india = next(p for p in (repo.files_dir / INDIA).iterdir() if p.suffix == ".geojson")
    doc = json.loads(india.read_bytes())
    doc["features"] = doc["features"][:100]
    repo.replace_file(INDIA, india.name, json.dumps(doc).encode())

    state = _run(workdir, "inc", datasets=[INDIA, CHINA])
    assert state.is_completed(), state.message
    con = connect(lake, read_only=True)
    try:
        selected = [s for (s,) in con.execute("select selected from raw_data.dbt_builds order by built_at").fetchall()]
    finally:
        con.close()
    # a full build, then the partial one
    assert selected == [None, "stg_doi__installations+ source:raw_data.datasets"]
    partial = dbt_tables(lake)
    assert sum(1 for r in partial["curated.installations"][1] if INDIA in r) == 100
    assert len(partial["curated.installations"][1]) > 100

    from flows.ingest_flow import pv_doi_ingest

    forced = pv_doi_ingest(datasets=[INDIA, CHINA], data_dir=str(workdir / "inc"), cache_path=str(workdir / "cache"),
                           overture=False, force_dbt=True, return_state=True)
    assert forced.is_completed(), forced.message
    assert_same_tables(partial, dbt_tables(lake))


@pytest.fixture(params=["lake-keys", "shared-chain"])
def bucket(request, monkeypatch):
    """A local S3 API (moto's server on loopback) with an empty bucket, reached with the lake's own S3 settings
    (``PVDOI_LAKE_S3_*`` with keys), or with the shared ones (``PVDOI_S3_ENDPOINT``) and the AWS credential chain
    (``AWS_*`` variables; the loads' and dbt's secrets both without keys)."""
    from tests.overture_release import moto_server, s3_client

    with moto_server() as endpoint:
        client = s3_client(endpoint, "test-key", "test-secret", "us-east-1")
        client.create_bucket(Bucket="pv-lake")
        if request.param == "lake-keys":
            for key, value in {"ENDPOINT": endpoint, "KEY_ID": "test-key", "SECRET": "test-secret",
                               "REGION": "us-east-1"}.items():
                monkeypatch.setenv(f"PVDOI_LAKE_S3_{key}", value)
        else:
            monkeypatch.setenv("PVDOI_S3_ENDPOINT", endpoint)
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        monkeypatch.setenv("PVDOI_LAKE_DATA_PATH", "s3://pv-lake/warehouse/")
        yield client


@pytest.mark.usefixtures("prefect_api")
def test_a_lake_with_its_data_files_in_a_bucket_loads_and_builds(repo, workdir, monkeypatch, bucket):
    monkeypatch.setenv("PVDOI_WAREHOUSE_BACKEND", "ducklake")
    state = _run(workdir, "s3", datasets=[INDIA, CHINA])
    assert state.is_completed(), state.message
    counts = _counts(f"ducklake:sqlite:{workdir / 's3' / 'lake' / 'catalog.sqlite'}")
    assert counts["curated.installations"] == counts["prepared.int_installations_unioned"] > 1363
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="pv-lake").get("Contents", [])]
    assert any(k.startswith("warehouse/raw_data/doi_pv_features/") for k in keys)
    assert any(k.startswith("warehouse/curated/") for k in keys)  # dbt wrote its tables there too
    assert not list((workdir / "s3" / "lake").rglob("*.parquet"))  # nothing beside the catalog


@pytest.mark.parametrize("catalog", ["sqlite", "postgres"])
def test_two_pvdoi_runs_at_once_on_different_datasets_into_one_lake_both_succeed(repo, tmp_path, monkeypatch, request,
                                                                                  catalog):
    """Two `pvdoi run` processes, each with its own data folder, cache and Prefect API ("two machines"), sharing only
    the lake's catalog and data files: both load at once, both build dbt in turn (a file lock beside a SQLite
    catalog; a PostgreSQL advisory lock), both exit 0."""
    lake = tmp_path / "shared"
    conninfo = f"postgres:{request.getfixturevalue('postgres')}" if catalog == "postgres" else None
    env = {**os.environ, "PYTHONPATH": ROOT, "PVDOI_WAREHOUSE_BACKEND": "ducklake",
           "PVDOI_LAKE_CATALOG": conninfo or str(lake / "catalog.sqlite"), "PVDOI_LAKE_DATA_PATH": str(lake / "files")}
    runs = []
    for dataset in (INDIA, CHINA):
        own = tmp_path / dataset
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", dataset, "--no-overture", "--data-dir", str(own / "data"),
             "--cache-path", str(own / "cache")], env={**env, "PREFECT_HOME": str(own / "prefect")},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    uri = f"ducklake:{conninfo or 'sqlite:' + str(lake / 'catalog.sqlite')}"
    monkeypatch.setenv("PVDOI_LAKE_DATA_PATH", env["PVDOI_LAKE_DATA_PATH"])  # for this process's reads
    assert set(_rows(uri)) == {INDIA, CHINA}
    # the builds took turns, and the last saw both loads
    con = connect(uri, read_only=True)
    try:
        curated = dict(con.execute("select dataset_id, count(*) from curated.installations group by 1").fetchall())
        builds = con.execute("select epoch(built_at) - seconds, epoch(built_at) from raw_data.dbt_builds "
                             "order by built_at").fetchall()
    finally:
        con.close()
    assert curated == _rows(uri)
    # one build each, one after the other; or one, when the second run's plan found the first had built both loads
    assert len(builds) in (1, 2) and all(b[0] >= a[1] for a, b in zip(builds, builds[1:])), builds


def test_the_overture_areas_load_into_a_lake_as_into_a_duckdb_file(tmp_path):
    """The same installations in a DuckDB file and in a lake; the Overture areas fetched from a local S3 API load the
    same rows into both (a GEOMETRY and a GEOMETRY[] column in DuckLake)."""
    from flows.dataflow import run_divisions
    from pvdoi.settings import Settings
    from pvdoi.warehouse import load_division_areas, warehouse
    from tests.overture_release import EXTRA_FEATURES, KEY_ID, SECRET, s3_release_server
    from tests.test_dbt_project import realistic_features, write_warehouse

    database = tmp_path / "eo_pv_data.duckdb"
    write_warehouse(database, realistic_features() + EXTRA_FEATURES, with_overture=False)
    uri = f"ducklake:sqlite:{tmp_path / 'lake' / 'catalog.sqlite'}"
    with warehouse(uri) as con:
        con.execute(f"ATTACH '{database}' AS src (READ_ONLY)")
        con.execute("INSERT INTO raw_data.doi_pv_features BY NAME SELECT * FROM src.raw_data.doi_pv_features")
    settings = Settings(overture_s3_key_id=KEY_ID, overture_s3_secret=SECRET)
    loaded = {}
    with s3_release_server() as endpoint:
        for name, target in (("duckdb", str(database)), ("lake", uri)):
            fetched = run_divisions(target, data_dir=str(tmp_path / name), s3_endpoint=endpoint, settings=settings,
                                    enable_caching=False)
            with warehouse(target) as con:
                assert load_division_areas(con, fetched)["status"] == "loaded"
            con = connect(target, read_only=True)
            try:
                loaded[name] = con.execute("SELECT id, ST_AsText(geometry), len(geometry_pieces) "
                                           "FROM raw_data.overture_division_areas ORDER BY id").fetchall()
            finally:
                con.close()
    assert loaded["lake"] == loaded["duckdb"] and len(loaded["duckdb"]) > 3
