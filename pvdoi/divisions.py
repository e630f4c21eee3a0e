"""Overture Maps divisions: the country and region areas around the installations, from GeoParquet on S3.

DuckDB's ``httpfs`` reads the release's ``theme=divisions/type=division_area`` files with the filter on the ``bbox``
struct pushed into the Parquet scan (row groups outside the installations' extent are skipped). Every failure names the
URL and the release: an unreachable source or an empty answer never becomes an empty table. Each area is also cut into
pieces of at most 256 vertices, like PostGIS's ST_Subdivide: a centroid-in-polygon join against a million-vertex
coastline costs milliseconds per installation, against its pieces microseconds. The areas and their pieces go to one
Parquet file, which :func:`pvdoi.warehouse.load_division_areas` loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from hamilton.caching import fingerprinting
from pydantic import SecretStr

from pvdoi.atomic import publish
from pvdoi.caching import _HashSink
from pvdoi.duckdb_ext import connect
from pvdoi.errors import OvertureSourceError, OvertureUnreachableError, StorageError
from pvdoi.settings import Settings

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
FINGERPRINT_KEY = b"pvdoi:fingerprint"  # in the areas file's schema metadata: what it holds, to reuse it unchanged

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


def s3_access(settings: Settings, *, endpoint: str | None = None) -> S3Access:
    """The S3 access of the settings; ``endpoint`` (``host:port`` or ``http[s]://host:port``) overrides theirs."""
    endpoint = endpoint or settings.overture_s3_endpoint
    use_ssl, url_style = settings.overture_s3_use_ssl, settings.overture_s3_url_style
    if endpoint:
        scheme, _, endpoint = endpoint.rstrip("/").rpartition("://")
        use_ssl = (scheme != "http") if use_ssl is None else use_ssl
    return S3Access(
        region=settings.overture_s3_region, endpoint=endpoint, use_ssl=True if use_ssl is None else use_ssl,
        url_style=url_style or ("path" if endpoint else "vhost"), key_id=settings.overture_s3_key_id,
        secret=settings.overture_s3_secret, timeout_s=settings.http_timeout_s, retries=settings.http_retries)


def read_division_areas(url: str, bbox: Bbox | None, release: str, s3: S3Access) -> pa.Table:
    """The country, dependency and region division areas at ``url`` whose bbox meets ``bbox`` (WKB geometry)."""
    if bbox is None:
        return DIVISION_AREAS_SCHEMA.empty_table()
    where = f"Overture release {release!r} at {url}"
    con = connect(extensions=("spatial", "httpfs"))
    try:
        _configure(con, s3)
        try:
            columns = dict(con.execute(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                f"read_parquet({_quote(url)}, hive_partitioning = false))").fetchall())
            table = con.execute(_query(url, columns, bbox, where)).fetch_arrow_table()
        except duckdb.Error as exc:
            raise _source_error(exc, where) from None
    finally:
        con.close()
    if table.num_rows == 0:
        raise OvertureSourceError(f"{where} returned no {'/'.join(SUBTYPES)} division areas for the installations' "
                                  f"bbox {bbox}; the files exist but hold nothing there (wrong base URL or an "
                                  "incomplete copy?)")
    log.info("%s: %d division areas for bbox %s", where, table.num_rows, bbox)
    return table.select(DIVISION_AREAS_SCHEMA.names).cast(DIVISION_AREAS_SCHEMA)


def area_pieces(areas: pa.Table) -> pa.Table:
    """Each area's geometry cut along its longer side until every piece has at most 256 vertices (id, WKB list);
    a ring left unclosed (as in some published areas) is closed first, as the load does (pvdoi.warehouse)."""
    geometries = shapely.from_wkb(areas.column("geometry_wkb").to_numpy(zero_copy_only=False), on_invalid="fix")
    pieces = [[shapely.to_wkb(p) for p in _subdivide(g)] for g in geometries]
    return pa.table({"id": areas.column("id"), "pieces_wkb": pa.array(pieces, pa.list_(pa.binary()))})


def write_areas_file(areas: pa.Table, pieces: pa.Table, data_dir: str, *, url: str,
                     bbox: Bbox | None) -> tuple[str, bool]:
    """The areas with their pieces (``pieces_wkb``) in ``<data_dir>/overture/division_areas-<hash>.parquet``.

    The name is a hash of the URL and the bbox; a file already holding the same rows is kept, else replaced
    atomically. Returns the file's absolute path and whether it was written.
    """
    table = areas.append_column("pieces_wkb", pieces.column("pieces_wkb"))
    fingerprint = _fingerprint_arrow(table).encode()
    key = hashlib.sha256(json.dumps([url, list(bbox) if bbox else None]).encode()).hexdigest()[:16]
    folder = os.path.join(data_dir, "overture")
    final = os.path.abspath(os.path.join(folder, f"division_areas-{key}.parquet"))
    try:
        previous = (pq.read_schema(final).metadata or {}).get(FINGERPRINT_KEY)
    except (OSError, pa.ArrowException):  # missing or unreadable: written again
        previous = None
    if previous == fingerprint:
        return final, False
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".division_areas-", suffix=".parquet.tmp", dir=folder)
    os.close(fd)
    try:
        pq.write_table(table.replace_schema_metadata({FINGERPRINT_KEY: fingerprint}), tmp, compression="zstd",
                       row_group_size=1024)  # large polygons: row groups DuckDB reads with bounded memory
        publish(tmp, final)
    except OSError as exc:
        raise StorageError(f"cannot write the Overture division areas of {url} to {final}: {exc}; the previous "
                           "file (if any) is unchanged", file=os.path.basename(final)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final, True


def register_arrow_fingerprint() -> None:
    """Register the Arrow table fingerprint with Hamilton's cache (idempotent; Hamilton has none of its own)."""
    fingerprinting.hash_value.register(pa.Table)(_fingerprint_arrow)


def _fingerprint_arrow(obj: pa.Table, *args, **kwargs) -> str:
    """Hash of an Arrow table's schema and values (its IPC stream), at C speed."""
    h = hashlib.blake2b(digest_size=20)
    with pa.ipc.new_stream(pa.PythonFile(_HashSink(h), mode="w"), obj.schema) as writer:
        writer.write_table(obj)
    return fingerprinting._compact_hash(h.digest())


def _subdivide(geometry: shapely.Geometry) -> list[shapely.Geometry]:
    if geometry is None or not geometry.is_valid:  # cuts of it would be garbage: kept whole (None: the load fails)
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
        reason = re.sub(r" (error )?for HTTP \w+ to '[^']*'", "", text)  # without the request URL, once more
        return OvertureUnreachableError(f"{where} is unreachable: {reason} (offline? --no-overture skips the areas)")
    return OvertureSourceError(f"{where}: {text}")
