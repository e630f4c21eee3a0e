"""The warehouse load: rows and catalog per dataset, the R-tree index there after every kind of load."""

from __future__ import annotations

import dataclasses

import os

import pytest

import pvdoi.warehouse as w
import pvdoi.warehouse.datasets
from flows.dataflow import run_dataset

INDIA, CHINA = "ind_pv_solar_farms_2022", "chn_med_res_pv_2024"


def _indexes(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'doi_pv_features'"
                                      ).fetchall()]


@pytest.mark.parametrize("rebuild_from_rows", [0, 10**9], ids=["index-rebuilt", "index-kept-up-to-date"])
def test_load_datasets_keeps_the_rtree_and_skips_unchanged_files(repo, workdir, monkeypatch, rebuild_from_rows):
    monkeypatch.setattr(w.datasets, "REBUILD_INDEX_ROWS", rebuild_from_rows)
    reports = [run_dataset(INDIA), run_dataset(CHINA)]
    db = str(workdir / "warehouse.duckdb")
    with w.warehouse(db) as con:
        first = w.load_datasets(con, reports[:1])
        second = w.load_datasets(con, reports)
        assert [r["loaded"] for r in first] == [True] and [r["loaded"] for r in second] == [False, True]
        assert dict(con.execute("SELECT dataset_id, count(*) FROM raw_data.doi_pv_features GROUP BY 1").fetchall()) \
            == {INDIA: 1363, CHINA: reports[1].geoparquet.rows}
        assert _indexes(con) == [w.RTREE]
        # a spatial filter (what the index serves) finds a farm from a point inside it
        uid, x, y = con.execute("SELECT feature_uid, ST_X(ST_PointOnSurface(geometry)), "
                                "ST_Y(ST_PointOnSurface(geometry)) FROM raw_data.doi_pv_features "
                                "WHERE dataset_id = ? ORDER BY feature_uid LIMIT 1", [INDIA]).fetchone()
        hits = con.execute("SELECT feature_uid FROM raw_data.doi_pv_features WHERE ST_Intersects(geometry, "
                           "ST_MakeEnvelope(? - 1e-9, ? - 1e-9, ? + 1e-9, ? + 1e-9))", [x, y, x, y]).fetchall()
        assert (uid,) in hits


def test_no_load_vacuums_neither_a_first_load_nor_a_replacement(repo, workdir):
    """A load's checkpoints do not vacuum: a first load's appended row groups and a replaced dataset's partly deleted
    ones were rewritten whole, for seconds (2.4 s of a 119,000-row replacement whose insert took 0.4 s)."""
    report = run_dataset(INDIA)
    db = str(workdir / "warehouse.duckdb")

    def vacuum_tasks(con) -> int:
        return con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0]

    with w.warehouse(db) as con:
        assert vacuum_tasks(con) > 0  # DuckDB's default, for other connections
        assert w.load_datasets(con, [report])[0]["deleted"] == 0
        assert vacuum_tasks(con) == 0
    changed = report.replace(geoparquet=dataclasses.replace(report.geoparquet, sha256="another file"))
    with w.warehouse(db) as con:  # its one part standardised again (another ingested_at): all its rows replaced
        con.execute("UPDATE raw_data.doi_pv_features SET ingested_at = ingested_at - INTERVAL 1 DAY")
        assert w.load_datasets(con, [changed])[0]["deleted"] == 1363
        assert vacuum_tasks(con) == 0
        assert con.execute("SELECT count(*) FROM raw_data.doi_pv_features").fetchone()[0] == 1363


GLOBAL = "global_pv_inventory_sent2_spot_2021"


def test_a_load_replaces_only_the_parts_of_a_dataset_it_does_not_hold(repo, workdir):
    """A part is a source file's rows; the ingest takes an unchanged file's part back from the previous GeoParquet
    file as it was (same ingested_at). The load keeps such parts' rows (and their loaded_at) and replaces the
    others; the rows are the file's either way."""
    report = run_dataset(GLOBAL)
    db = str(workdir / "warehouse.duckdb")
    parts = ("SELECT source_file, ingested_at, loaded_at, count(*) FROM raw_data.doi_pv_features "
             "GROUP BY ALL ORDER BY source_file")
    with w.warehouse(db) as con:
        assert w.load_datasets(con, [report])[0]["loaded"]
        before = con.execute(parts).fetchall()
        assert len(before) > 2  # several source files
        one = before[0][0]
        # as if that file's rows came from an earlier standardisation: the file's part is not the one held
        con.execute("UPDATE raw_data.doi_pv_features SET ingested_at = ingested_at - INTERVAL 1 DAY "
                    "WHERE source_file = ?", [one])
        changed = report.replace(geoparquet=dataclasses.replace(report.geoparquet, sha256="another file"))
        [loaded] = w.load_datasets(con, [changed])
        assert loaded["loaded"] and loaded["deleted"] == before[0][3] and loaded["rows"] == report.geoparquet.rows
        after = con.execute(parts).fetchall()
        assert after[1:] == before[1:]  # the other parts' rows stay, loaded_at included
        assert after[0][:2] == before[0][:2] and after[0][3] == before[0][3] and after[0][2] > before[0][2]
        file_rows = con.execute("SELECT feature_uid, ST_AsWKB(geometry), area_m2, source_attributes FROM "
                                "read_parquet(?) ORDER BY ALL", [report.geoparquet.path]).fetchall()
        assert con.execute("SELECT feature_uid, ST_AsWKB(geometry), area_m2, source_attributes FROM "
                           "raw_data.doi_pv_features ORDER BY ALL").fetchall() == file_rows


def test_the_load_task_loads_spatial_only_when_rows_change_or_the_schema_is_incomplete(repo, workdir):
    report = run_dataset(INDIA)
    db = str(workdir / "warehouse.duckdb")

    def spatial_loaded(con) -> bool:
        return con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'spatial'").fetchone()[0]

    with w.warehouse(db, spatial=False) as con:  # a new file: the schema needs spatial (GEOMETRY, R-tree)
        assert spatial_loaded(con)
        assert w.load_datasets(con, [report])[0]["loaded"]
    with w.warehouse(db, spatial=False) as con:  # all unchanged: checked without it
        assert not spatial_loaded(con)
        assert not w.load_datasets(con, [report])[0]["loaded"]
        assert not spatial_loaded(con)
    changed = report.replace(geoparquet=dataclasses.replace(report.geoparquet, sha256="another file"))
    with w.warehouse(db, spatial=False) as con:
        assert w.load_datasets(con, [changed])[0]["loaded"] and spatial_loaded(con)
        con.execute(f"DROP INDEX raw_data.{w.RTREE}")  # as a crash in the middle of a rebuild leaves it
    with w.warehouse(db, spatial=False) as con:
        assert spatial_loaded(con) and _indexes(con) == [w.RTREE]
        con.execute("PRAGMA disable_checkpoint_on_shutdown")  # as a killed run leaves its last commits: in the WAL
        assert w.load_datasets(con, [report])[0]["loaded"]
    assert os.path.exists(db + ".wal")
    with w.warehouse(db, spatial=False) as con:  # the log may hold R-tree changes: replayed with spatial loaded
        assert spatial_loaded(con) and _indexes(con) == [w.RTREE]
        assert not w.load_datasets(con, [report])[0]["loaded"]
    assert not os.path.exists(db + ".wal")


def test_the_division_areas_table_is_made_with_spatial_and_then_only_checked(workdir, monkeypatch):
    db, loads = str(workdir / "warehouse.duckdb"), []
    load = w.divisions.load_extension
    monkeypatch.setattr(w.divisions, "load_extension", lambda con, name: loads.append(name) or load(con, name))
    w.ensure_division_areas_table(db)
    assert loads == ["spatial"]  # GEOMETRY columns
    w.ensure_division_areas_table(db)  # every run with dbt: there already, nothing loaded
    assert loads == ["spatial"]
    with w.warehouse(db) as con:
        assert con.execute(f"SELECT count(*) FROM {w.divisions.TABLE}").fetchone()[0] == 0


def test_connect_installs_spatial_from_its_wheel_when_duckdb_has_none(tmp_path):
    """A machine whose DuckDB extension directory is empty (a fresh HOME) gets spatial from the wheel, offline,
    on read-write and read-only connections alike."""
    import os
    import subprocess
    import sys

    script = """
import glob, os, sys
from pvdoi.duckdb_ext import connect
db = sys.argv[1]
con = connect(db)
con.execute("CREATE TABLE t AS SELECT ST_Point(1, 2) AS g")
con.close()
installed = glob.glob(os.path.join(os.environ["HOME"], ".duckdb", "extensions", "*", "*", "spatial.duckdb_extension"))
assert len(installed) == 1, installed
os.unlink(installed[0])  # gone again: the read-only connection installs it too
print(connect(db, read_only=True).execute("SELECT ST_AsText(g) FROM t").fetchone()[0])
"""
    home = tmp_path / "home"
    home.mkdir()
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "w.duckdb")], capture_output=True, text=True,
                         env={**os.environ, "HOME": str(home)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "POINT (1 2)"
