"""The DuckDB spatial warehouse: per-dataset, all-or-nothing replacement of rows from GeoParquet.

Only the final flow task opens the database. A file lock beside it serialises runs on one machine
(the second waits up to ``lock_timeout_s`` and then fails with a message naming the holder);
DuckDB's own single-writer lock stops writers from other machines sharing the file.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from datetime import datetime, timezone

from filelock import FileLock, Timeout

from pvdoi.duckdb_ext import connect, load_extension
from pvdoi.errors import WarehouseError
from pvdoi.settings import get_settings

log = logging.getLogger("pvdoi.warehouse")

RTREE = "doi_pv_features_geometry_rtree"
REBUILD_INDEX_ROWS = 50_000  # loads of more rows drop the R-tree and build it again after
RTREE_DDL = f"CREATE INDEX IF NOT EXISTS {RTREE} ON raw_data.doi_pv_features USING RTREE (geometry);"
DDL = """
CREATE SCHEMA IF NOT EXISTS raw_data;
CREATE TABLE IF NOT EXISTS raw_data.doi_pv_features (
    feature_uid VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    doi VARCHAR,
    source_file VARCHAR,
    source_file_checksum VARCHAR,
    source_feature_index BIGINT,
    unified_id VARCHAR,
    geometry GEOMETRY NOT NULL,
    geometry_type VARCHAR,
    area_m2 DOUBLE,
    centroid_lon DOUBLE,
    centroid_lat DOUBLE,
    source_area_m2 DOUBLE,
    capacity_mw DOUBLE,
    install_date VARCHAR,
    source_attributes JSON,
    ingested_at TIMESTAMP,
    loaded_at TIMESTAMP
);
{rtree_ddl}
CREATE TABLE IF NOT EXISTS raw_data.datasets (
    dataset_id VARCHAR PRIMARY KEY,
    doi VARCHAR,
    title VARCHAR,
    license VARCHAR,
    repository VARCHAR,
    record_id VARCHAR,
    record_version VARCHAR,
    files JSON,
    features_read BIGINT,
    features_written BIGINT,
    expected_count BIGINT,
    counts JSON,
    geoparquet_path VARCHAR,
    geoparquet_sha256 VARCHAR,
    last_loaded_at TIMESTAMP
);
"""

DDL = DDL.format(rtree_ddl=RTREE_DDL)

_COLUMNS = ("feature_uid, dataset_id, doi, source_file, source_file_checksum, source_feature_index, unified_id, "
            "geometry, geometry_type, area_m2, centroid_lon, centroid_lat, source_area_m2, capacity_mw, "
            "install_date, source_attributes, ingested_at")


@contextmanager
def warehouse_lock(path: str, *, lock_timeout_s: float = 600.0):
    """Hold the warehouse's writer lock; a second run waits, then fails with a clear message."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lock = FileLock(os.path.abspath(path) + ".lock")
    try:
        lock.acquire(timeout=lock_timeout_s)
    except Timeout:
        raise WarehouseError(f"database {path!r} is in use by another run (lock {path}.lock held for more than "
                             f"{lock_timeout_s:.0f} s); try again when it finishes") from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def warehouse(path: str, *, lock_timeout_s: float = 600.0, spatial: bool = True):
    """An exclusive connection to the warehouse (schema created) for one writer at a time.

    With ``spatial=False`` the spatial extension is loaded only if the schema (its R-tree included) has to be
    created; :func:`load_datasets` loads it once a dataset has rows to load. Loading it costs 0.15 s per
    connection, which a run whose datasets are all unchanged paid for checks that need none of it.
    """
    with warehouse_lock(path, lock_timeout_s=lock_timeout_s):
        # a write-ahead log left by a killed run may hold R-tree changes: replayed and checkpointed with spatial
        spatial = spatial or os.path.exists(path + ".wal")
        try:
            con = connect(path, extensions=())
        except Exception as exc:  # DuckDB's own lock: another process holds the file
            raise WarehouseError(f"cannot open database {path!r}: {exc}") from None
        try:
            if spatial or not _schema_complete(con):
                load_extension(con, "spatial")
                con.execute(DDL)
            yield con
        finally:
            con.close()


def _schema_complete(con) -> bool:
    """Both tables and the R-tree exist (the index is missing after a crash in the middle of a rebuild)."""
    tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw_data' "
                         "AND table_name IN ('doi_pv_features', 'datasets')").fetchone()[0]
    index = con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?", [RTREE]).fetchone()[0]
    return tables == 2 and index == 1


def load_datasets(con, reports: list[dict]) -> list[dict]:
    """``load_dataset`` for each report; for large loads the R-tree index is dropped and built again after.

    Building the index once over the loaded table is several times faster than keeping it up to date row by
    row, and slower than inserting a few thousand rows into it; it is rebuilt even when a load fails (and by
    ``warehouse`` on the next connection after a crash).
    """
    # a bounded buffer pool (DuckDB spills to <database>.tmp beyond it): the load streams from GeoParquet, and
    # DuckDB's default (80 % of RAM) held hundreds of MB of freshly written blocks for nothing
    con.execute(f"SET memory_limit = '{get_settings().warehouse_memory_limit}'")
    changed = [r for r in reports if _unchanged_rows(con, r) is None]
    if changed:
        load_extension(con, "spatial")  # the GEOMETRY column's conversions and the R-tree
    rebuild = sum(r["geoparquet"]["rows"] for r in changed) >= REBUILD_INDEX_ROWS  # else kept up to date
    if rebuild:
        con.execute(f"DROP INDEX IF EXISTS raw_data.{RTREE}")
    try:
        results = [load_dataset(con, r) for r in reports]
    finally:
        if rebuild:
            con.execute(RTREE_DDL)
    _vacuum_only_after_deletes(con, results)
    return results


def _vacuum_only_after_deletes(con, results: list[dict]) -> None:
    """Let the checkpoint at close vacuum row groups only when a load replaced rows (space to reclaim).

    Appended after a table's partly filled last row group, new rows are merged with it by the checkpoint's
    vacuum, which rewrites every appended row group: 2 s for the UK dataset, at the end of every cold run,
    for nothing to reclaim. With no deleted rows it is switched off for this connection's checkpoint; a
    later replacement vacuums as usual.
    """
    if any(r["deleted"] for r in results):
        con.execute("RESET max_vacuum_tasks")
    else:
        con.execute("SET max_vacuum_tasks = 0")


def _unchanged_rows(con, report: dict) -> int | None:
    """The dataset's row count when the warehouse already holds exactly this GeoParquet file, else None."""
    dataset_id, parquet = report["dataset_id"], report["geoparquet"]
    previous = con.execute("SELECT geoparquet_sha256 FROM raw_data.datasets WHERE dataset_id = ?",
                           [dataset_id]).fetchone()
    if previous and previous[0] == parquet["sha256"]:
        rows = con.execute("SELECT count(*) FROM raw_data.doi_pv_features WHERE dataset_id = ?",
                           [dataset_id]).fetchone()[0]
        if rows == parquet["rows"]:
            return rows
    return None


def load_dataset(con, report: dict) -> dict:
    """Replace one dataset's rows and catalog entry in a single transaction; skip when the file is unchanged."""
    dataset_id, parquet = report["dataset_id"], report["geoparquet"]
    rows = _unchanged_rows(con, report)
    if rows is not None:
        return {"dataset_id": dataset_id, "rows": rows, "loaded": False, "deleted": 0}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    counts = report["counts"]
    con.execute("BEGIN TRANSACTION")
    try:
        deleted = con.execute("DELETE FROM raw_data.doi_pv_features WHERE dataset_id = ?",
                              [dataset_id]).fetchone()[0]
        con.execute(f"INSERT INTO raw_data.doi_pv_features ({_COLUMNS}, loaded_at) "
                    f"SELECT {_COLUMNS}, ?::TIMESTAMP FROM read_parquet(?) WHERE dataset_id = ?",
                    [now, parquet["path"], dataset_id])
        rows = con.execute("SELECT count(*) FROM raw_data.doi_pv_features WHERE dataset_id = ?",
                           [dataset_id]).fetchone()[0]
        if rows != parquet["rows"]:
            raise WarehouseError(f"loaded {rows} rows from {parquet['path']} but the file holds {parquet['rows']}",
                                 dataset_id=dataset_id)
        con.execute("DELETE FROM raw_data.datasets WHERE dataset_id = ?", [dataset_id])
        con.execute(
            "INSERT INTO raw_data.datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [dataset_id, report["doi"], report["title"], report["license"], report["repository"], report["record_id"],
             report["record_version"], json.dumps(report["files"]), counts["read"], counts["written"],
             report.get("expected_count"), json.dumps(counts), parquet["path"], parquet["sha256"], now])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    log.info("loaded %d rows of %s", rows, dataset_id)
    return {"dataset_id": dataset_id, "rows": rows, "loaded": True, "deleted": deleted}
