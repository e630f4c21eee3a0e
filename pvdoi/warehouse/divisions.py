"""The Overture division areas in the warehouse: the installations' extent to fetch them for, and their load.

The divisions dataflow writes the fetched areas to a Parquet file (:func:`pvdoi.divisions.write_areas_file`)
and returns a summary; :func:`load_division_areas` loads that file into ``raw_data.overture_division_areas`` in
one transaction, or leaves the table as it is when it already holds the same release, URL, bbox and row count.
The table is created empty when missing (:func:`ensure_division_areas_table`), so dbt always finds it; a failed
fetch or load never empties it (the previous release's rows stay).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import shapely

from pvdoi.divisions import Bbox
from pvdoi.duckdb_ext import load_extension
from pvdoi.errors import WarehouseError
from pvdoi.warehouse.connection import warehouse
from pvdoi.warehouse.lake import retry_on_conflict, rollback

log = logging.getLogger("pvdoi.overture")

TABLE = "raw_data.overture_division_areas"
DDL = f"""
CREATE SCHEMA IF NOT EXISTS raw_data;
CREATE TABLE IF NOT EXISTS {TABLE} (
    id VARCHAR NOT NULL, division_id VARCHAR, subtype VARCHAR NOT NULL, class VARCHAR, is_land BOOLEAN,
    is_territorial BOOLEAN, country VARCHAR, region VARCHAR, name VARCHAR, version INTEGER,
    bbox_xmin DOUBLE, bbox_xmax DOUBLE, bbox_ymin DOUBLE, bbox_ymax DOUBLE, geometry GEOMETRY NOT NULL,
    geometry_pieces GEOMETRY[], release VARCHAR NOT NULL, source_url VARCHAR NOT NULL, fetch_bbox VARCHAR,
    loaded_at TIMESTAMP
);
"""
SUMMARY_KEYS = ("release", "url", "bbox", "rows", "by_subtype", "countries", "path")


def installations_bbox(database_path: str, fallback_km: float) -> Bbox | None:
    """The installations' extent (xmin, ymin, xmax, ymax) widened by the fallback distance, rounded out to 0.1°.

    None when the warehouse holds no installation geometry.
    """
    with warehouse(database_path) as con:
        xmin, ymin, xmax, ymax = con.execute(
            "SELECT min(ST_XMin(geometry)), min(ST_YMin(geometry)), max(ST_XMax(geometry)), max(ST_YMax(geometry)) "
            "FROM raw_data.doi_pv_features WHERE geometry IS NOT NULL AND NOT ST_IsEmpty(geometry)").fetchone()
    if xmin is None:
        return None
    dy = fallback_km / 111.32
    dx = dy / math.cos(math.radians(min(80.0, max(abs(ymin), abs(ymax)) + dy)))
    return (max(-180.0, math.floor((xmin - dx) * 10) / 10), max(-90.0, math.floor((ymin - dy) * 10) / 10),
            min(180.0, math.ceil((xmax + dx) * 10) / 10), min(90.0, math.ceil((ymax + dy) * 10) / 10))


def ensure_division_areas_table(database_path: str) -> None:
    """Create ``raw_data.overture_division_areas`` (empty) if the warehouse lacks it, so dbt can always build (spatial,
    0.15 s, loaded only to create it)."""
    with warehouse(database_path, spatial=False) as con:
        schema, table = TABLE.split(".")
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                           [schema, table]).fetchone()[0]:
            load_extension(con, "spatial")
            retry_on_conflict(con.execute, DDL)  # a lake's other writers may be committing


def load_division_areas(con, fetched: dict) -> dict:
    """Replace ``raw_data.overture_division_areas`` with the fetched areas file in one transaction.

    ``fetched`` is the dataflow's summary (``release``, ``url``, ``bbox``, ``rows``, ``by_subtype``, ``countries``,
    ``path``). Returns it with ``status``: ``unchanged`` when the table already holds the same rows count, release,
    URL and bbox (nothing written), ``skipped`` when there were no installations (the table emptied), else
    ``loaded``. A failed load is rolled back (the previous rows are kept) and raised as a WarehouseError naming
    the release and URL.
    """
    release, url, bbox, rows, path = (fetched[k] for k in ("release", "url", "bbox", "rows", "path"))
    fetch_bbox = ",".join(f"{v:g}" for v in bbox) if bbox else None
    summary = {k: fetched[k] for k in SUMMARY_KEYS}
    load_extension(con, "spatial")  # the GEOMETRY columns
    con.execute(DDL)
    loaded = con.execute(f"SELECT count(*), list(DISTINCT release), list(DISTINCT source_url), "
                         f"list(DISTINCT fetch_bbox) FROM {TABLE}").fetchone()
    if bbox and loaded == (rows, [release], [url], [fetch_bbox]):
        return {**summary, "status": "unchanged"}
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("closed_rings", closed_rings(con, path, release))
        con.execute(f"DELETE FROM {TABLE}")
        [(inserted,)] = con.execute(f"""
            INSERT INTO {TABLE} BY NAME
            SELECT a.* EXCLUDE (geometry_wkb, pieces_wkb), ST_GeomFromWKB(coalesce(c.closed_wkb, a.geometry_wkb))
                       AS geometry,
                   list_transform(pieces_wkb, piece -> ST_GeomFromWKB(piece)) AS geometry_pieces, ? AS release,
                   ? AS source_url, ? AS fetch_bbox, ? AS loaded_at
            FROM read_parquet(?) AS a LEFT JOIN closed_rings AS c USING (id)""",
            [release, url, fetch_bbox, datetime.now(timezone.utc).replace(tzinfo=None), path]).fetchall()
        if inserted != rows:
            raise WarehouseError(f"{path} holds {inserted} division areas, not the {rows} fetched")
        con.execute("COMMIT")
    except (duckdb.Error, WarehouseError) as exc:
        rollback(con)  # a lake's failed COMMIT has already ended the transaction
        raise WarehouseError(f"loading {rows} division areas of Overture release {release!r} ({url}) into {TABLE} "
                             f"failed; the previous rows are kept: {exc}") from None
    finally:
        con.unregister("closed_rings")
    log.info("Overture %s: loaded %d division areas from %s", release, inserted, path)
    return {**summary, "status": "skipped" if bbox is None else "loaded"}


def closed_rings(con, path: str, release: str) -> pa.Table:
    """The areas of the file whose geometry GEOS refuses for a ring left unclosed (its last point is not its first,
    as in some published areas), each with the ring closed (``id``, ``closed_wkb``); a warning names them.

    An area beyond that repair is a WarehouseError naming it: DuckDB would load it, and dbt's spatial joins fail.
    """
    areas = con.execute("SELECT id, geometry_wkb FROM read_parquet(?)", [path]).fetch_arrow_table()
    wkb = areas.column("geometry_wkb").to_numpy(zero_copy_only=False)
    broken = [i for i, g in enumerate(shapely.from_wkb(wkb, on_invalid="ignore")) if g is None]
    ids = areas.column("id").take(pa.array(broken, pa.int64())).to_pylist()
    closed = shapely.from_wkb(wkb[broken], on_invalid="fix") if broken else []
    if any(g is None for g in closed):
        raise WarehouseError(f"Overture release {release!r}: division areas "
                             f"{[i for i, g in zip(ids, closed) if g is None]} in {path} are not valid WKB")
    if ids:
        log.warning("Overture %s: %d division areas had a ring that was not closed, closed on load: %s", release,
                    len(ids), ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else ""))
    return pa.table({"id": pa.array(ids, pa.string()),
                     "closed_wkb": pa.array([shapely.to_wkb(g) for g in closed], pa.binary())})
