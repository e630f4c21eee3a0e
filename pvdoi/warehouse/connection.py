"""The warehouse's connection and schema: one writer at a time, the raw tables created on first use.

The flow's load tasks and the dbt task open the database, one after another. A file lock beside it serialises
writers on one machine (a second waits up to ``lock_timeout_s`` and then fails with a message naming the lock);
DuckDB's own single-writer lock stops writers from other machines sharing the file. A DuckLake warehouse
(``ducklake:`` URI, :mod:`pvdoi.warehouse.lake`) takes no lock for its loads: its writers commit transactions side
by side; its dbt builds take turns (:func:`warehouse_lock`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from filelock import FileLock, Timeout

from pvdoi.duckdb_ext import connect, load_extension
from pvdoi.errors import WarehouseError
from pvdoi.duckdb_ext import catalog_file, is_lake
from pvdoi.warehouse.lake import lake_warehouse
from pvdoi.warehouse.pglock import advisory_lock

PG_LAKE = "ducklake:postgres:"  # a lake whose catalog is PostgreSQL: what follows is its libpq conninfo
RTREE = "doi_pv_features_geometry_rtree"
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
{reference_ddl}
"""
# the dataset's reference (pvdoi.citation.reference), added to a catalog created before it was there
REFERENCE_COLUMNS = {"citation": "VARCHAR", "creators": "JSON", "year": "INTEGER", "publisher": "VARCHAR",
                     "record_license": "VARCHAR", "url": "VARCHAR", "reference": "JSON"}
DDL = DDL.format(rtree_ddl=RTREE_DDL, reference_ddl="\n".join(
    f"ALTER TABLE raw_data.datasets ADD COLUMN IF NOT EXISTS {name} {kind};" for name, kind in REFERENCE_COLUMNS.items()))


def require_warehouse(path: str, error: type[Exception] = WarehouseError) -> str:
    """``path`` when the warehouse file (or a lake's SQLite catalog) exists, else ``error`` saying to run the main job
    first."""
    if is_lake(path) and catalog_file(path) is None:
        return path  # a PostgreSQL catalog: attaching it tells
    if not os.path.exists(catalog_file(path) or path):
        raise error(f"no warehouse at {path}; run `pvdoi run` first")
    return path


@contextmanager
def warehouse_lock(path: str, *, lock_timeout_s: float = 600.0):
    """Hold the warehouse's writer lock; a second run waits, then fails with a clear message. For a lake (whose
    loads never lock) it is the dbt build's: a file lock beside a SQLite catalog (one machine), a PostgreSQL advisory
    lock in a PostgreSQL catalog's database (several machines; released when its holder's session ends)."""
    if path.startswith(PG_LAKE):
        with advisory_lock(path.removeprefix(PG_LAKE), "dbt build", timeout_s=lock_timeout_s):
            yield
        return
    if is_lake(path):
        if catalog_file(path) is None:  # another catalog (a DuckDB file: one process at a time anyway)
            yield
            return
        path = catalog_file(path)
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
    A lake (``ducklake:`` URI) is attached instead, with spatial loaded and no lock.
    """
    if is_lake(path):
        with lake_warehouse(path, DDL) as con:
            yield con
        return
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
    """Both tables, the R-tree and the catalog's reference columns exist (the index is missing after a crash in the
    middle of a rebuild; the columns in a warehouse made before they were added)."""
    tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw_data' "
                         "AND table_name IN ('doi_pv_features', 'datasets')").fetchone()[0]
    index = con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?", [RTREE]).fetchone()[0]
    columns = con.execute("SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'raw_data' AND table_name = "
                          "'datasets' AND list_contains(?, column_name)", [list(REFERENCE_COLUMNS)]).fetchone()[0]
    return tables == 2 and index == 1 and columns == len(REFERENCE_COLUMNS)
