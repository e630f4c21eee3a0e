"""Per-dataset, all-or-nothing replacement of a dataset's rows (the parts that changed) and catalog entry from its
GeoParquet file."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import duckdb

from pvdoi.citation import catalog_reference
from pvdoi.duckdb_ext import NO_VACUUM, connect, load_extension, s3_secret
from pvdoi.errors import WarehouseError
from pvdoi.objectstore import is_url
from pvdoi.results import DatasetResult
from pvdoi.settings import get_settings
from pvdoi.warehouse.connection import RTREE, RTREE_DDL, require_warehouse
from pvdoi.warehouse.lake import commit_message, in_lake, retry_on_conflict, rollback

log = logging.getLogger("pvdoi.warehouse")
REBUILD_INDEX_ROWS = 50_000  # loads of more rows drop the R-tree and build it again after
# The checkpoints of a load (at COMMIT, and at close) do not vacuum (NO_VACUUM): appended after a table's partly filled
# last row group, a first load's rows were all rewritten (2 s for the UK dataset at benchmark scale 1); replacing one
# dataset of 119,000 rows cost 2.4 s of vacuum against 0.4 s for its insert.
# A dataset's rows come in parts, one per source file, and the ingest takes a part whose file did not change back
# from the previous GeoParquet file as it was, ingested_at included (pvdoi.features.parts). A load replaces only the
# parts it does not hold already, by this key; the rows of the others stay, their loaded_at too, and dbt's union
# inserts again only the rows of the other parts (macros/incremental.sql: held_parts). At benchmark scale 1, one
# changed file of the 119,000-row dataset: 6,300 rows replaced instead of all of them (their COMMIT alone took 0.9 s).
PART_KEY = ("concat_ws('|', source_file, coalesce(source_file_checksum, ''), "
            "coalesce(CAST(CAST(ingested_at AS TIMESTAMP) AS VARCHAR), ''))")
_COLUMNS = ("feature_uid, dataset_id, doi, source_file, source_file_checksum, source_feature_index, unified_id, "
            "geometry, geometry_type, area_m2, centroid_lon, centroid_lat, source_area_m2, capacity_mw, "
            "install_date, source_attributes, ingested_at")


def load_datasets(con, reports: list[DatasetResult]) -> list[dict]:
    """``load_dataset`` for each ingested dataset; for large loads the R-tree index is dropped and built again after.

    Building the index once over the loaded table is several times faster than keeping it up to date row by
    row, and slower than inserting a few thousand rows into it; it is rebuilt even when a load fails (and by
    ``warehouse`` on the next connection after a crash).
    """
    # a bounded buffer pool (DuckDB spills to <database>.tmp beyond it): the load streams from GeoParquet, and
    # DuckDB's default (80 % of RAM) held hundreds of MB of freshly written blocks for nothing. One thread: at
    # benchmark scale 1 a second one made the 265,000-row load no faster (it takes 2 s) and read two row groups at
    # once; the flow loads a dataset while others are still read and standardised, so the cores are taken anyway
    # (64MB and one thread peaked at 370 MB of RSS for that load, 256MB and two threads at 570-710 MB)
    settings = get_settings()
    limit = settings.lake_memory_limit if in_lake(con) else settings.warehouse_memory_limit
    con.execute(f"SET memory_limit = '{limit}'")
    con.execute("SET threads = 1")
    # the GeoParquet's ingested_at (an instant) into the table's TIMESTAMP as UTC, as loaded_at, on any machine: the
    # parts' keys (PART_KEY) then match across machines and time zones
    con.execute("SET TimeZone = 'UTC'")
    con.execute(NO_VACUUM)
    changed = [r for r in reports if _unchanged_rows(con, r) is None]
    if changed:
        load_extension(con, "spatial")  # the GEOMETRY column's conversions and the R-tree
    replaced = sum(_held_parts(con, r)[1] for r in changed) if changed and not in_lake(con) else 0
    rebuild = replaced >= REBUILD_INDEX_ROWS and not in_lake(con)  # lake: no index
    if rebuild:
        con.execute(f"DROP INDEX IF EXISTS raw_data.{RTREE}")
    try:
        results = [load_dataset(con, r) for r in reports]
    finally:
        if rebuild:
            con.execute(RTREE_DDL)
    return results


def _unchanged_rows(con, report: DatasetResult) -> int | None:
    """The dataset's row count when the warehouse already holds exactly this GeoParquet file, else None."""
    dataset_id, parquet = report.dataset_id, report.geoparquet
    previous = con.execute("SELECT geoparquet_sha256 FROM raw_data.datasets WHERE dataset_id = ?",
                           [dataset_id]).fetchone()
    if previous and previous[0] == parquet.sha256:
        rows = con.execute("SELECT count(*) FROM raw_data.doi_pv_features WHERE dataset_id = ?",
                           [dataset_id]).fetchone()[0]
        if rows == parquet.rows:
            return rows
    return None


def _held_parts(con, report: DatasetResult) -> tuple[list[str], int]:
    """The keys of the dataset's parts (PART_KEY) that the warehouse holds as the GeoParquet file has them, same
    rows counted, and the number of the file's rows in the other parts (those a load inserts)."""
    dataset_id, parquet = report.dataset_id, report.geoparquet
    if is_url(parquet.path):  # a shared output (PVDOI_OUTPUT_URL): read where it is, with the PVDOI_S3_* settings
        bucket = parquet.path.removeprefix("s3://").split("/", 1)[0]
        s3_secret(con, "pvdoi_outputs", f"s3://{bucket}/", get_settings().s3())
    query = f"SELECT {PART_KEY} AS part, count(*) AS n FROM {{}} WHERE dataset_id = ? GROUP BY part"
    held = dict(con.execute(query.format("raw_data.doi_pv_features"), [dataset_id]).fetchall())
    new = dict(con.execute(query.format("read_parquet(?)"), [parquet.path, dataset_id]).fetchall())
    same = sorted(k for k, n in new.items() if held.get(k) == n)
    return same, sum(n for k, n in new.items() if k not in same)


def load_dataset(con, report: DatasetResult) -> dict:
    """Replace one dataset's rows (those of the parts the warehouse does not hold: PART_KEY) and catalog entry in a
    single transaction; skip when the file is unchanged (the whole of it run again after a write conflict with
    another writer of a lake)."""
    return retry_on_conflict(_load_dataset, con, report)


def _load_dataset(con, report: DatasetResult) -> dict:
    dataset_id, parquet = report.dataset_id, report.geoparquet
    rows = _unchanged_rows(con, report)
    if rows is not None:
        return {"dataset_id": dataset_id, "rows": rows, "loaded": False, "deleted": 0}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    counts = report.counts
    con.execute("BEGIN TRANSACTION")
    try:
        held, _ = _held_parts(con, report)  # parts the warehouse holds already: their rows stay
        deleted = con.execute(f"DELETE FROM raw_data.doi_pv_features WHERE dataset_id = ? "
                              f"AND NOT list_contains(?::VARCHAR[], {PART_KEY})", [dataset_id, held]).fetchone()[0]
        con.execute(f"INSERT INTO raw_data.doi_pv_features ({_COLUMNS}, loaded_at) "
                    f"SELECT {_COLUMNS}, ?::TIMESTAMP FROM read_parquet(?) WHERE dataset_id = ? "
                    f"AND NOT list_contains(?::VARCHAR[], {PART_KEY})", [now, parquet.path, dataset_id, held])
        rows = con.execute("SELECT count(*) FROM raw_data.doi_pv_features WHERE dataset_id = ?",
                           [dataset_id]).fetchone()[0]
        if rows != parquet.rows:
            raise WarehouseError(f"loaded {rows} rows from {parquet.path} but the file holds {parquet.rows}",
                                 dataset_id=dataset_id)
        con.execute("DELETE FROM raw_data.datasets WHERE dataset_id = ?", [dataset_id])
        row = {"dataset_id": dataset_id, "doi": report.doi, "title": report.title, "license": report.license,
               "repository": report.repository, "record_id": report.record_id,
               "record_version": report.record_version, "files": json.dumps(list(report.files)),
               "features_read": counts["read"], "features_written": counts["written"],
               "expected_count": report.expected_count, "counts": json.dumps(counts), "geoparquet_path": parquet.path,
               "geoparquet_sha256": parquet.sha256, "last_loaded_at": now, **_reference_columns(report)}
        con.execute(f"INSERT INTO raw_data.datasets ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()))
        commit_message(con, f"load {dataset_id}", dataset_id=dataset_id, rows=rows, sha256=parquet.sha256)
        con.execute("COMMIT")
    except Exception:
        rollback(con)
        raise
    log.info("loaded %d rows of %s", rows, dataset_id)
    return {"dataset_id": dataset_id, "rows": rows, "loaded": True, "deleted": deleted}


def _reference_columns(report: DatasetResult) -> dict:
    """The catalog's reference columns (see ``REFERENCE_COLUMNS``) from the dataset's reference, when it has one."""
    ref = report.reference or {}
    return {"citation": ref.get("citation"), "creators": json.dumps(ref.get("creators") or []),
            "year": ref.get("year"), "publisher": ref.get("publisher"), "record_license": report.record_license,
            "url": ref.get("url"), "reference": json.dumps(ref) if ref else None}


def loaded_references(database_path: str, dataset_ids: list[str] | None = None) -> list[dict]:
    """The references of the datasets loaded in the warehouse (``dataset_ids``, in that order, or all by id).

    A catalog row loaded before references were kept gets one made from its DOI, title and licence.
    """
    try:
        con = connect(require_warehouse(database_path), extensions=(), read_only=True)
    except duckdb.Error as exc:  # another process writing it holds DuckDB's lock
        raise WarehouseError(f"cannot open the warehouse {database_path}: {exc}") from None
    try:
        present = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = "
                                              "'raw_data' AND table_name = 'datasets'").fetchall()}
        if not present:
            raise WarehouseError(f"no dataset is loaded in {database_path}; run `pvdoi run` first")
        reference = "reference" if "reference" in present else "NULL"
        rows = con.execute(f"SELECT dataset_id, doi, title, license, record_version, {reference} "
                           "FROM raw_data.datasets ORDER BY dataset_id").fetchall()
    finally:
        con.close()
    by_id = {row[0]: json.loads(row[5]) if row[5] else catalog_reference(*row[:5]) for row in rows}
    unknown = [d for d in dataset_ids or () if d not in by_id]
    if unknown:
        raise WarehouseError(f"no dataset {', '.join(map(repr, unknown))} in the warehouse {database_path} "
                             f"(loaded: {', '.join(by_id) or 'none'})")
    return [by_id[d] for d in dataset_ids] if dataset_ids else list(by_id.values())
