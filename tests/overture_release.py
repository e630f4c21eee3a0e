"""Overture's divisions as the tests serve them: Overture-schema GeoParquet files in a local release tree or on a
local S3 API (moto's ``ThreadedMotoServer`` on 127.0.0.1), and the flow's two steps (fetch, then load) in one call.

The files carry the real division_area column names and types (``bbox`` struct of floats, ``names`` struct,
``sources``, ``is_land`` / ``is_territorial`` ...), GeoParquet metadata and small row groups, under the default
release's path. The installations are test_dbt_project's realistic features plus a few placed to exercise the
assignment rules: offshore in territorial waters, just off a coast, mid-ocean, and in a region polygon that the
country polygon misses.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from flows.dataflow import run_divisions
from pvdoi.duckdb_ext import connect
from pvdoi.settings import Settings
from pvdoi.warehouse import load_division_areas, warehouse
from tests.test_dbt_project import DivisionArea, Feature, division_areas

BUCKET = "overturemaps-us-west-2"
KEY_ID, SECRET = "testing-key", "testing-secret"
RELEASE = Settings.model_fields["overture_release"].default  # the documented default, so its real path is used
DEAD_ENDPOINT = "http://127.0.0.1:1"  # nothing listens there

KRUITWAGEN, USA = "global_pv_inventory_sent2_spot_2021", "usa_cali_usgs_pv_2016"
EXTRA_FEATURES = [  # centroid, and what the assignment must make of it
    Feature("coast-gb", KRUITWAGEN, shapely.box(2.2, 52.0, 2.201, 52.001)),  # GB sea only; England 13.7 km away
    Feature("off-gb", KRUITWAGEN, shapely.box(2.5, 52.0, 2.501, 52.001)),  # GB sea only; England 34 km away
    Feature("coast-es", KRUITWAGEN, shapely.box(-9.611, 40.0, -9.610, 40.001)),  # 9.4 km off Spain's land
    Feature("ocean", KRUITWAGEN, shapely.box(-30.0, 40.0, -29.999, 40.001)),  # nothing within 25 km
    Feature("gap-us", USA, shapely.box(-124.4, 40.0, -124.399, 40.001)),  # in California, not in the US polygon
]
S3_ONLY_AREAS = [  # served, but never loaded: outside the bbox, another subtype, no geometry
    DivisionArea("area-au", "country", "AU", "Australia", shapely.box(113.0, -44.0, 154.0, -10.0)),
    DivisionArea("area-london", "locality", "GB", "London", shapely.box(-0.5, 51.3, 0.3, 51.7), "GB-ENG"),
    DivisionArea("area-ru-null", "country", "RU", "Россия", None),
]

_BBOX = pa.struct([("xmin", pa.float32()), ("xmax", pa.float32()), ("ymin", pa.float32()), ("ymax", pa.float32())])
_DIVISION_AREA = pa.schema([
    ("id", pa.string()), ("geometry", pa.binary()), ("bbox", _BBOX), ("country", pa.string()),
    ("version", pa.int32()),
    ("sources", pa.list_(pa.struct([("property", pa.string()), ("dataset", pa.string()), ("record_id", pa.string()),
                                    ("update_time", pa.string()), ("confidence", pa.float64()),
                                    ("between", pa.list_(pa.float64()))]))),
    ("subtype", pa.string()), ("class", pa.string()),
    ("names", pa.struct([("primary", pa.string()), ("common", pa.map_(pa.string(), pa.string())),
                         ("rules", pa.list_(pa.struct([("variant", pa.string()), ("language", pa.string()),
                                                       ("value", pa.string()), ("between", pa.list_(pa.float64())),
                                                       ("side", pa.string())])))])),
    ("is_land", pa.bool_()), ("is_territorial", pa.bool_()), ("region", pa.string()), ("division_id", pa.string()),
    ("admin_level", pa.int32()),
])


def overture_geoparquet(areas: list[DivisionArea]) -> bytes:
    """A division_area file as Overture publishes it: GeoParquet 1.1 with a bbox covering, zstd, small row groups."""
    def bbox(a: DivisionArea) -> dict:
        xmin, ymin, xmax, ymax = a.geometry.bounds if a.geometry is not None else (27.0, 41.0, 180.0, 82.0)
        return {"xmin": xmin, "xmax": xmax, "ymin": ymin, "ymax": ymax}

    rows = [{"id": a.id, "geometry": shapely.to_wkb(a.geometry) if a.geometry is not None else None, "bbox": bbox(a),
             "country": a.country, "version": 3,
             "sources": [{"property": "", "dataset": "OpenStreetMap", "record_id": f"r{i}@12", "update_time": None,
                          "confidence": None, "between": None}],
             "subtype": a.subtype, "class": a.area_class,
             "names": {"primary": a.name, "common": [("en", a.name)], "rules": None},
             "is_land": a.is_land, "is_territorial": a.is_territorial, "region": a.region,
             "division_id": "division-" + a.id, "admin_level": 1 if a.subtype == "country" else 2}
            for i, a in enumerate(sorted(areas, key=lambda a: bbox(a)["xmin"]))]
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"],
                                    "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}}}}
    table = pa.Table.from_pylist(rows, schema=_DIVISION_AREA).replace_schema_metadata({"geo": json.dumps(geo)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=2, compression="zstd")
    return buffer.getvalue()


def write_overture_release(directory: Path, areas: list[DivisionArea], *, release: str = RELEASE) -> str:
    """Overture-schema division_area files of ``areas`` in a local release tree; returns the base URL to use."""
    target = directory / "release" / release / "theme=divisions" / "type=division_area"
    target.mkdir(parents=True, exist_ok=True)
    for part, subtypes in enumerate([("country", "dependency"), ("region", "locality")]):
        chosen = [a for a in areas if a.subtype in subtypes]
        if chosen:
            (target / f"part-0000{part}-{uuid.uuid4()}-c000.zstd.parquet").write_bytes(overture_geoparquet(chosen))
    return str(directory / "release" / "{release}" / "theme=divisions" / "type=division_area")


@contextmanager
def moto_server() -> Iterator[str]:
    """A local S3 API (moto's server on loopback), emptied when it stops; yields its endpoint ``http://host:port``."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        reset_and_stop(server)


def s3_client(endpoint: str, key_id: str = KEY_ID, secret: str = SECRET, region: str = "us-west-2"):
    """A boto3 client of the local S3 API at ``endpoint``."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=key_id,
                        aws_secret_access_key=secret)


@contextmanager
def s3_release_server() -> Iterator[str]:
    """A local S3 API serving the release's division_area files (countries and regions in two part files), and
    nothing near the installations under ``elsewhere/``; yields its endpoint."""
    with moto_server() as endpoint:
        _upload_release(endpoint)
        yield endpoint


def reset_and_stop(server) -> None:
    """Stop a moto server after emptying its buckets: moto keeps them in the process, for the next server to see
    (a second server creating the same bucket failed with BucketAlreadyOwnedByYou)."""
    import urllib.request

    host, port = server.get_host_and_port()
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10)
    server.stop()


def _upload_release(endpoint: str) -> None:
    client = s3_client(endpoint)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    areas = division_areas() + S3_ONLY_AREAS
    prefix = f"release/{RELEASE}/theme=divisions/type=division_area"
    for part, subtypes in enumerate([("country",), ("region", "locality")]):
        body = overture_geoparquet([a for a in areas if a.subtype in subtypes])
        key = f"{prefix}/part-0000{part}-{uuid.uuid4()}-c000.zstd.parquet"
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    far_away = overture_geoparquet([a for a in S3_ONLY_AREAS if a.geometry is not None])  # none near installations
    key = f"elsewhere/{RELEASE}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
    client.put_object(Bucket=BUCKET, Key=key, Body=far_away)


def data_dir_of(database: Path | str) -> str:
    """The data folder the tests give a warehouse: ``data`` beside it."""
    return str(Path(database).parent / "data")


def fetch_and_load(database: str, **options) -> dict:
    """The flow's two steps: the dataflow writes the areas file (``fetched``), then the warehouse loads it.

    The load's summary, with the fetch's cache use and the fetch's own summary.
    """
    fetched = run_divisions(database, data_dir=data_dir_of(database), **options)
    with warehouse(database) as con:
        loaded = load_division_areas(con, fetched)
    return {**loaded, "cache": fetched["cache"], "fetched": fetched}


def query_one(database: Path, sql: str) -> list[tuple]:
    """The rows of a query on the warehouse, opened read-only."""
    con = connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def loaded_ids(database: Path) -> list[str]:
    """The ids of the loaded division areas, sorted."""
    return [r[0] for r in query_one(database, "select id from raw_data.overture_division_areas order by id")]
