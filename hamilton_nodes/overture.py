"""Overture Maps divisions: country and region polygons around the installations, read from GeoParquet on S3.

DuckDB's ``httpfs`` reads the release's ``theme=divisions/type=division_area`` files straight from the bucket;
the filter on the ``bbox`` struct is pushed into the Parquet scan, so row groups outside the installations'
extent are skipped by their statistics. Every failure is raised with the URL and the release: an unreachable
source or an empty answer never becomes an empty table.

Each area is also stored cut into pieces of at most 256 vertices (``geometry_pieces``, like PostGIS's
ST_Subdivide): DuckDB tests a point against every vertex of a polygon, so a centroid-in-polygon join against a
country's million-vertex coastline costs milliseconds per installation; against its pieces, microseconds.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import shapely
from hamilton.function_modifiers import cache
from pydantic import SecretStr

from pvdoi.duckdb_ext import connect
from pvdoi.errors import OvertureSourceError, OvertureUnreachableError, WarehouseError
from pvdoi.warehouse import warehouse

log = logging.getLogger("pvdoi.overture")

SUBTYPES = ("country", "dependency", "region")  # dependency: country-like (Puerto Rico, Greenland)
RELEASE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}(-[a-z]+)?\.\d+")
REQUIRED_COLUMNS = ("id", "geometry", "bbox", "subtype", "country", "names")
OPTIONAL_COLUMNS = {"division_id": "VARCHAR", "class": "VARCHAR", "region": "VARCHAR", "is_land": "BOOLEAN",
                    "is_territorial": "BOOLEAN", "version": "INTEGER"}
DIVISION_AREAS_SCHEMA = pa.schema([
    ("id", pa.string()), ("division_id", pa.string()), ("subtype", pa.string()), ("class", pa.string()),
    ("is_land", pa.bool_()), ("is_territorial", pa.bool_()), ("country", pa.string()), ("region", pa.string()),
    ("name", pa.string()), ("version", pa.int32()), ("bbox_xmin", pa.float64()), ("bbox_xmax", pa.float64()),
    ("bbox_ymin", pa.float64()), ("bbox_ymax", pa.float64()), ("geometry_wkb", pa.binary()),
])
MAX_PIECE_VERTICES = 256
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

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class S3Access:
    """How DuckDB reaches the bucket: the endpoint (None = AWS), addressing and optional keys (None = unsigned)."""

    region: str = "us-west-2"
    endpoint: str | None = None
    use_ssl: bool = True
    url_style: str = "vhost"
    key_id: SecretStr | None = None
    secret: SecretStr | None = None
    timeout_s: float = 60.0
    retries: int = 3


@cache(behavior="recompute")
def installations_bbox(database_path: str, fallback_km: float) -> Bbox | None:
    """The installations' extent (xmin, ymin, xmax, ymax) widened by the fallback distance, rounded out to 0.1°."""
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


def division_areas_url(overture_base_url: str, overture_release: str) -> str:
    """The glob of the release's division_area GeoParquet files (S3, another endpoint's bucket, or a local path)."""
    base = overture_base_url.replace("{release}", overture_release)
    url = base if base.endswith(".parquet") or "*" in base else base.rstrip("/") + "/*.parquet"
    if not RELEASE_PATTERN.fullmatch(overture_release):
        raise OvertureSourceError(f"Overture release {overture_release!r} (URL {url}) is not a release id; "
                                  "release ids look like 2026-06-17.0 (see https://stac.overturemaps.org)")
    return url


def division_areas(division_areas_url: str, installations_bbox: Bbox | None, overture_release: str,
                   overture_s3: S3Access) -> pa.Table:
    """The country, dependency and region division areas whose bbox meets the installations' bbox (WKB geometry)."""
    if installations_bbox is None:
        return DIVISION_AREAS_SCHEMA.empty_table()
    where = f"Overture release {overture_release!r} at {division_areas_url}"
    con = connect(extensions=("spatial", "httpfs"))
    try:
        _configure(con, overture_s3)
        try:
            columns = dict(con.execute(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                f"read_parquet({_quote(division_areas_url)}, hive_partitioning = false))").fetchall())
            table = con.execute(_query(division_areas_url, columns, installations_bbox, where)).fetch_arrow_table()
        except duckdb.Error as exc:
            raise _source_error(exc, where) from None
    finally:
        con.close()
    if table.num_rows == 0:
        raise OvertureSourceError(f"{where} returned no {'/'.join(SUBTYPES)} division areas for the installations' "
                                  f"bbox {installations_bbox}; the files exist but hold nothing there (wrong base URL "
                                  "or an incomplete copy?)")
    log.info("%s: %d division areas for bbox %s", where, table.num_rows, installations_bbox)
    return table.select(DIVISION_AREAS_SCHEMA.names).cast(DIVISION_AREAS_SCHEMA)


def division_area_pieces(division_areas: pa.Table) -> pa.Table:
    """Each area's geometry cut along its longer side until every piece has at most 256 vertices (id, WKB list)."""
    geometries = shapely.from_wkb(division_areas.column("geometry_wkb").to_numpy(zero_copy_only=False))
    pieces = [[shapely.to_wkb(p) for p in _subdivide(g)] for g in geometries]
    return pa.table({"id": division_areas.column("id"), "pieces_wkb": pa.array(pieces, pa.list_(pa.binary()))})


@cache(behavior="recompute")
def overture_division_areas_table(division_areas: pa.Table, division_area_pieces: pa.Table, database_path: str,
                                  division_areas_url: str, overture_release: str,
                                  installations_bbox: Bbox | None) -> dict:
    """What raw_data.overture_division_areas holds after the load: release, URL, bbox and rows per subtype."""
    fetch_bbox = ",".join(f"{v:g}" for v in installations_bbox) if installations_bbox else None
    subtypes = division_areas.column("subtype").to_pylist()
    summary = {"release": overture_release, "url": division_areas_url, "bbox": installations_bbox,
               "rows": division_areas.num_rows, "by_subtype": {s: subtypes.count(s) for s in sorted(set(subtypes))},
               "countries": len(set(division_areas.column("country").to_pylist()) - {None}),
               "status": "skipped" if installations_bbox is None else "loaded"}
    with warehouse(database_path) as con:
        con.execute(DDL)
        loaded = con.execute(f"SELECT count(*), list(DISTINCT release), list(DISTINCT source_url), "
                             f"list(DISTINCT fetch_bbox) FROM {TABLE}").fetchone()
        if installations_bbox and loaded == (division_areas.num_rows, [overture_release], [division_areas_url],
                                             [fetch_bbox]):
            return {**summary, "status": "unchanged"}
        con.register("fetched_division_areas",
                     division_areas.append_column("pieces_wkb", division_area_pieces.column("pieces_wkb")))
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {TABLE}")
            con.execute(f"""
                INSERT INTO {TABLE} BY NAME
                SELECT * EXCLUDE (geometry_wkb, pieces_wkb), ST_GeomFromWKB(geometry_wkb) AS geometry,
                       list_transform(pieces_wkb, piece -> ST_GeomFromWKB(piece)) AS geometry_pieces, ? AS release,
                       ? AS source_url, ? AS fetch_bbox, ? AS loaded_at
                FROM fetched_division_areas""",
                        [overture_release, division_areas_url, fetch_bbox,
                         datetime.now(timezone.utc).replace(tzinfo=None)])
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise WarehouseError(f"loading {division_areas.num_rows} division areas of Overture release "
                                 f"{overture_release!r} ({division_areas_url}) into {TABLE} failed; the previous "
                                 f"rows are kept: {exc}") from None
        finally:
            con.unregister("fetched_division_areas")
    return summary


def _subdivide(geometry: shapely.Geometry) -> list[shapely.Geometry]:
    if not geometry.is_valid:  # cuts of an invalid polygon are garbage: keep it whole (slow, but as published)
        return [geometry]
    pieces, pending = [], [geometry]
    while pending:
        piece = pending.pop()
        halves = None if shapely.get_num_coordinates(piece) <= MAX_PIECE_VERTICES else _halves(piece)
        if halves is None:
            pieces.append(piece)
        else:
            pending.extend(h for h in halves if not h.is_empty)
    return pieces


def _halves(piece: shapely.Geometry) -> list[shapely.Geometry] | None:
    """The piece cut across its longer side: GEOS's fast rectangle clip, else a full intersection, each checked
    by area (the clip goes wrong on some spiky rings); None when neither cut holds or the piece is tiny."""
    xmin, ymin, xmax, ymax = piece.bounds
    size = max(xmax - xmin, ymax - ymin)
    if size < 1e-6:
        return None
    lo, hi = (xmin - size, ymin - size), (xmax + size, ymax + size)  # clear of the piece on the uncut sides
    if xmax - xmin >= ymax - ymin:
        middle = (xmin + xmax) / 2
        rects = ((lo[0], lo[1], middle, hi[1]), (middle, lo[1], hi[0], hi[1]))
    else:
        middle = (ymin + ymax) / 2
        rects = ((lo[0], lo[1], hi[0], middle), (lo[0], middle, hi[0], hi[1]))
    for cut in (shapely.clip_by_rect, lambda g, *rect: shapely.intersection(g, shapely.box(*rect))):
        try:
            halves = [cut(piece, *rect) for rect in rects]
        except shapely.errors.GEOSException:
            continue
        if math.isclose(sum(h.area for h in halves), piece.area, rel_tol=1e-9, abs_tol=1e-15):
            return halves
    return None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _configure(con, s3: S3Access) -> None:
    options = {"REGION": s3.region, "USE_SSL": s3.use_ssl, "URL_STYLE": s3.url_style, "ENDPOINT": s3.endpoint,
               "KEY_ID": s3.key_id.get_secret_value() if s3.key_id else None,
               "SECRET": s3.secret.get_secret_value() if s3.secret else None}
    body = ", ".join(f"{k} {str(v).lower() if isinstance(v, bool) else _quote(v)}"
                     for k, v in options.items() if v is not None)
    con.execute(f"CREATE OR REPLACE SECRET overture (TYPE s3, {body})")
    con.execute(f"SET http_timeout = {int(math.ceil(s3.timeout_s))}")
    con.execute(f"SET http_retries = {int(s3.retries)}")
    con.execute("SET http_retry_backoff = 2")  # DuckDB's default 4 makes 5 retries wait 34 s


def _query(url: str, columns: dict[str, str], bbox: Bbox, where: str) -> str:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise OvertureSourceError(f"{where} lacks the division_area columns {missing}; it has {sorted(columns)}")
    geometry_type = columns["geometry"].upper()
    if geometry_type.startswith("GEOMETRY"):
        geometry = "ST_AsWKB(geometry)"
    elif geometry_type == "BLOB":
        geometry = "geometry"
    else:
        raise OvertureSourceError(f"{where}: column geometry is {columns['geometry']}, not a geometry or WKB")
    optional = ", ".join(f'"{name}"' if name in columns else f'CAST(NULL AS {kind}) AS "{name}"'
                         for name, kind in OPTIONAL_COLUMNS.items())
    xmin, ymin, xmax, ymax = (float(v) for v in bbox)
    subtypes = ", ".join(_quote(s) for s in SUBTYPES)
    return f"""
        SELECT id, subtype, country, names."primary" AS name, {optional},
               bbox.xmin AS bbox_xmin, bbox.xmax AS bbox_xmax, bbox.ymin AS bbox_ymin, bbox.ymax AS bbox_ymax,
               {geometry} AS geometry_wkb
        FROM read_parquet({_quote(url)}, hive_partitioning = false)
        WHERE bbox.xmin <= {xmax!r} AND bbox.xmax >= {xmin!r} AND bbox.ymin <= {ymax!r} AND bbox.ymax >= {ymin!r}
          AND subtype IN ({subtypes}) AND geometry IS NOT NULL"""


def _source_error(exc: duckdb.Error, where: str) -> OvertureSourceError:
    text = str(exc).split("\n\nLINE ")[0].strip()
    status = getattr(exc, "status_code", None)
    if "No files found" in text:
        return OvertureSourceError(f"{where}: no division_area files there; check the release id (releases are "
                                   f"listed at https://stac.overturemaps.org) and the base URL ({text})")
    if isinstance(status, int) and status in (401, 403):
        return OvertureSourceError(f"{where}: access denied (HTTP {status}); check the S3 endpoint and keys ({text})")
    if (isinstance(status, int) and status >= 500) or re.search(r"connect|timed? ?out|resolve", text, re.I):
        return OvertureUnreachableError(f"{where} is unreachable: {text}")
    return OvertureSourceError(f"{where}: {text}")
