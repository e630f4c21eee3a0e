"""The Overture divisions dataflow against a real S3 API on loopback, and dbt's country and region assignment.

A session-scoped moto server (``ThreadedMotoServer`` on 127.0.0.1) holds the bucket ``overturemaps-us-west-2``
with Overture-schema GeoParquet files written here: the real division_area column names and types (``bbox``
struct of floats, ``names`` struct, ``sources``, ``is_land`` / ``is_territorial`` ...), GeoParquet metadata and
small row groups, under the default release's path. DuckDB's httpfs reaches it through an S3 secret whose
endpoint is the server. The installations are test_dbt_project's realistic features plus a few placed to
exercise the rules: offshore in territorial waters, just off a coast, mid-ocean, and in a region polygon
that the country polygon misses.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from hamilton_nodes import overture
from pvdoi.errors import OvertureSourceError, OvertureUnreachableError
from pvdoi.overture import run_overture, s3_access
from pvdoi.settings import Settings
from tests.test_dbt_project import (
    DivisionArea,
    Feature,
    division_areas,
    failed_nodes,
    query,
    realistic_features,
    run_dbt,
    write_warehouse,
)

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


@pytest.fixture(scope="session")
def s3_server():
    """A local S3 API serving the release's division_area files (countries and regions in two part files)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET)
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
    yield endpoint
    server.stop()


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(overture_s3_key_id=KEY_ID, overture_s3_secret=SECRET, cache_path=str(tmp_path / "cache"),
                    data_dir=str(tmp_path / "data"), http_retries=1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, s3_server):
    """A warehouse with the installations, after a first Overture run from the local S3 API (cold cache)."""
    work = tmp_path_factory.mktemp("overture")
    database, cache = work / "eo_pv_data.duckdb", str(work / "cache")
    write_warehouse(database, realistic_features() + EXTRA_FEATURES, with_overture=False)
    settings = Settings(overture_s3_key_id=KEY_ID, overture_s3_secret=SECRET)
    summary = run_overture(str(database), cache_path=cache, s3_endpoint=s3_server, settings=settings)
    return database, cache, summary, settings


def loaded_ids(database: Path) -> list[str]:
    from pvdoi.duckdb_ext import connect

    con = connect(str(database), read_only=True)
    try:
        return [r[0] for r in con.execute("select id from raw_data.overture_division_areas order by id").fetchall()]
    finally:
        con.close()


def test_url_node_builds_globs_and_refuses_a_malformed_release():
    default = Settings.model_fields["overture_base_url"].default
    assert overture.division_areas_url(default, "2026-06-17.0") == (
        "s3://overturemaps-us-west-2/release/2026-06-17.0/theme=divisions/type=division_area/*.parquet")
    local = overture.division_areas_url("/data/overture/{release}", "2026-06-17.0")
    assert local == "/data/overture/2026-06-17.0/*.parquet"
    assert overture.division_areas_url("/data/areas.parquet", "2026-06-17.0") == "/data/areas.parquet"
    with pytest.raises(OvertureSourceError, match=r"release 'latest' \(URL s3://overturemaps-us-west-2/release/latest/"):
        overture.division_areas_url(default, "latest")


def test_subdivided_pieces_cover_the_polygon_and_answer_point_in_polygon_alike():
    import numpy as np

    outer = shapely.Point(0, 0).buffer(10.0, quad_segs=2000)  # 8,000 vertices
    polygon = shapely.difference(outer, shapely.box(-2, -2, 2, 2))  # with a hole
    pieces = overture._subdivide(polygon)
    assert len(pieces) > 30 and max(shapely.get_num_coordinates(pieces)) <= overture.MAX_PIECE_VERTICES
    assert sum(p.area for p in pieces) == pytest.approx(polygon.area, rel=1e-9)
    x, y = np.random.default_rng(1).uniform(-11, 11, size=(2, 5000))
    in_pieces = np.any([shapely.intersects_xy(p, x, y) for p in pieces], axis=0)
    assert (in_pieces == shapely.intersects_xy(polygon, x, y)).all()


def test_s3_access_from_settings():
    aws = s3_access(Settings())
    assert (aws.endpoint, aws.use_ssl, aws.url_style, aws.key_id) == (None, True, "vhost", None)  # the public bucket
    local = s3_access(Settings(), endpoint="http://127.0.0.1:9000")
    assert (local.endpoint, local.use_ssl, local.url_style) == ("127.0.0.1:9000", False, "path")


def test_first_run_loads_the_country_and_region_areas_around_the_installations(loaded):
    database, _, summary, _ = loaded
    expected = sorted(a.id for a in division_areas())  # not Australia (outside the bbox), London, the null geometry
    assert loaded_ids(database) == expected
    assert summary["status"] == "loaded" and summary["rows"] == len(expected)
    assert summary["by_subtype"] == {"country": 6, "region": 7} and summary["countries"] == 5
    assert summary["release"] == RELEASE and summary["url"].startswith(f"s3://{BUCKET}/release/{RELEASE}/")
    xmin, ymin, xmax, ymax = summary["bbox"]
    assert xmin < -124.5 and xmax > 116.4 and ymin < 13.1 and ymax > 52.1  # widened by the fallback distance
    assert {"division_areas", "division_area_pieces"} <= set(summary["cache"]["misses"])
    [(release, url, geometry_type, name)] = query_one(database, """
        select distinct release, source_url, ST_GeometryType(geometry), name
        from raw_data.overture_division_areas where id = 'area-cn-bj'""")
    assert (release, url, geometry_type, name) == (RELEASE, summary["url"], "POLYGON", "北京市")
    [(n_pieces, most_vertices, area_ratio)] = query_one(database, """
        select len(geometry_pieces), list_max(list_transform(geometry_pieces, p -> ST_NPoints(p))),
               list_sum(list_transform(geometry_pieces, p -> ST_Area(p))) / ST_Area(geometry)
        from raw_data.overture_division_areas where id = 'area-gb-land'""")  # the 20,000-vertex coastline
    assert n_pieces > 80 and most_vertices <= overture.MAX_PIECE_VERTICES and area_ratio == pytest.approx(1.0)
    [(single_pieces,)] = query_one(database, "select bool_and(len(geometry_pieces) = 1) from "
                                             "raw_data.overture_division_areas where id <> 'area-gb-land'")
    assert single_pieces  # boxes have 5 vertices


def query_one(database: Path, sql: str) -> list[tuple]:
    from pvdoi.duckdb_ext import connect

    con = connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_second_run_is_a_cache_hit_that_never_touches_the_source(loaded):
    database, cache, _, settings = loaded
    summary = run_overture(str(database), cache_path=cache, s3_endpoint=DEAD_ENDPOINT, settings=settings)
    assert {"division_areas", "division_area_pieces"} <= set(summary["cache"]["hits"])
    assert summary["cache"]["misses"] == []
    assert summary["status"] == "unchanged" and summary["rows"] == len(division_areas())


def test_wrong_release_fails_naming_url_and_release_and_keeps_the_loaded_rows(loaded, s3_server):
    database, cache, _, settings = loaded
    with pytest.raises(OvertureSourceError, match=r"release '2025-01-22\.0' at s3://overturemaps-us-west-2/release/"
                                                  r"2025-01-22\.0/theme=divisions/type=division_area/\*\.parquet: "
                                                  r"no division_area files") as caught:
        run_overture(str(database), release="2025-01-22.0", cache_path=cache, s3_endpoint=s3_server, settings=settings)
    assert not caught.value.transient
    assert loaded_ids(database) == sorted(a.id for a in division_areas())


def test_unreachable_source_is_a_transient_error_naming_url_and_release(loaded, settings):
    database = loaded[0]
    with pytest.raises(OvertureUnreachableError, match=rf"release '{RELEASE}' at s3://{BUCKET}/.* is unreachable"):
        run_overture(str(database), enable_caching=False, s3_endpoint=DEAD_ENDPOINT, settings=settings)


def test_empty_answer_for_a_nonempty_bbox_is_an_error(loaded, s3_server):
    database, _, _, settings = loaded
    with pytest.raises(OvertureSourceError, match=rf"release '{RELEASE}' at s3://{BUCKET}/elsewhere/{RELEASE}/"
                                                  r"\*\.parquet returned no country/dependency/region division areas"):
        run_overture(str(database), base_url=f"s3://{BUCKET}/elsewhere/{{release}}/", enable_caching=False,
                     s3_endpoint=s3_server, settings=settings)


def test_a_local_copy_stands_in_for_the_bucket(tmp_path, settings):
    database = tmp_path / "local.duckdb"
    write_warehouse(database, realistic_features(), with_overture=False)
    base_url = write_overture_release(tmp_path / "overture", division_areas() + S3_ONLY_AREAS)
    summary = run_overture(str(database), base_url=base_url, s3_endpoint=DEAD_ENDPOINT, settings=settings)
    assert summary["url"] == str(tmp_path / "overture" / "release" / RELEASE / "theme=divisions" /
                                 "type=division_area" / "*.parquet")
    assert loaded_ids(database) == sorted(a.id for a in division_areas())


def test_no_installations_skips_and_leaves_an_empty_table(tmp_path, settings):
    from pvdoi.warehouse import warehouse

    database = tmp_path / "empty.duckdb"
    with warehouse(str(database)):  # the loader's empty schema
        pass
    summary = run_overture(str(database), s3_endpoint=DEAD_ENDPOINT, settings=settings)  # never asked
    assert (summary["status"], summary["rows"], summary["bbox"]) == ("skipped", 0, None)
    assert loaded_ids(database) == []


def test_bbox_filter_is_pushed_into_the_parquet_scan(s3_server):
    from pvdoi.duckdb_ext import connect

    url = overture.division_areas_url(Settings().overture_base_url, RELEASE)
    con = connect(extensions=("spatial", "httpfs"))
    try:
        overture._configure(con, s3_access(Settings(overture_s3_key_id=KEY_ID, overture_s3_secret=SECRET),
                                           endpoint=s3_server))
        columns = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                                   f"read_parquet('{url}'))").fetchall())
        sql = overture._query(url, columns, (-10.0, 30.0, 10.0, 60.0), "test")
        [(_, plan)] = con.execute("EXPLAIN " + sql).fetchall()
    finally:
        con.close()
    scan = plan[plan.index("READ_PARQUET"):]
    assert "Filters:" in scan and "bbox.xmin<=10.0" in scan.replace(" ", "").replace("\n", "").replace("│", "")


@pytest.fixture(scope="module")
def dbt_overture_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dbt_overture")


@pytest.fixture(scope="module")
def assigned(loaded, dbt_overture_dir):
    """dbt build on the warehouse the Overture run loaded."""
    run = run_dbt(["build"], loaded[0], dbt_overture_dir)
    assert run.result.success, failed_nodes(run)
    print(f"dbt build took {run.seconds:.1f} s")
    return run


def test_dbt_assigns_every_installation_a_country_and_region(assigned):
    rows = {r[0]: r[1:] for r in query(assigned, """
        select i.feature_uid, d.country_code, d.country_assignment, d.region_code, d.region_assignment,
               d.country_division_area_id, d.is_on_land, round(d.country_distance_km, 1), round(d.region_distance_km, 1)
        from prepared.int_installations_divisions_assigned d
        join prepared.int_installations_unioned i using (installation_key)""")}
    within = {"usa-1": ("US", "US-CA"), "usa-rect": ("US", "US-CA"), "uk-point": ("GB", "GB-ENG"),
              "uk-roof": ("GB", "GB-ENG"), "uk-line": ("GB", "GB-ENG"), "kru-uk": ("GB", "GB-ENG"),
              "kru-es": ("ES", "ES-MD"), "dun-es": ("ES", "ES-MD"), "dun-in": ("IN", "IN-KA"),
              "ind-1": ("IN", "IN-RJ"), "chn-1": ("CN", "CN-BJ"), "chn-2": ("CN", "CN-QH")}
    for uid, (country, region) in within.items():
        assert rows[uid][:4] == (country, "within_land", region, "within_land"), uid
        assert rows[uid][5] is True
    assert rows["uk-point"][4] == "area-gb-land"  # the land area wins over the territorial one around it
    assert rows["coast-gb"][:5] == ("GB", "within_territorial", "GB-ENG", "nearest", "area-gb-sea")
    assert rows["coast-gb"][7] == pytest.approx(13.8, abs=0.2)
    assert rows["off-gb"][:4] == ("GB", "within_territorial", None, None)  # England is 34 km away
    assert rows["coast-es"][:4] == ("ES", "nearest", None, None) and rows["coast-es"][5] is False
    assert rows["coast-es"][6] == pytest.approx(9.4, abs=0.2)
    assert rows["ocean"] == (None, None, None, None, None, False, None, None)
    assert rows["gap-us"][:5] == ("US", "within_land", "US-CA", "within_land", "area-us-ca")
    on_land_without_country = [uid for uid, r in rows.items() if r[5] and r[0] is None]
    assert on_land_without_country == []


def test_curated_installations_and_country_summary(assigned):
    [(name, region_name)] = query(assigned, "select country_name, region_name from curated.installations "
                                            "where feature_uid = 'chn-1'")
    assert (name, region_name) == ("中国", "北京市")
    summary = {r[0]: r[1:] for r in query(assigned, """
        select country_dataset_key, n_installations, n_within_land, n_within_territorial, n_nearest,
               total_capacity_mw, round(total_area_m2)
        from curated.country_summary""")}
    assert summary["GB/global_pv_inventory_sent2_spot_2021"][:5] == (3, 1, 2, 0, 4.1)
    assert summary["ES/global_pv_inventory_sent2_spot_2021"][:5] == (2, 1, 0, 1, 32.0)
    assert summary["unassigned/global_pv_inventory_sent2_spot_2021"][:4] == (1, 0, 0, 0)
    assert summary["GB/uk_crowdsourced_pv_2020"][:4] == (3, 3, 0, 0)
    [(total,)] = query(assigned, "select sum(n_installations) from curated.country_summary")
    assert total == len(realistic_features()) + len(EXTRA_FEATURES)


def test_assignment_is_planned_as_spatial_joins(assigned, dbt_overture_dir):
    compiled = dbt_overture_dir / "target" / "compiled" / "pv_warehouse" / "models" / "prepared"
    [(_, plan)] = query(assigned, "explain " + (compiled / "int_installations_divisions_assigned.sql").read_text())
    assert plan.count("SPATIAL_JOIN") >= 3  # containment, and the nearest search at both levels
    for slow_join in ("NESTED_LOOP_JOIN", "BLOCKWISE_NL_JOIN", "CROSS_PRODUCT"):
        assert slow_join not in plan


def test_the_prefect_task_reports_a_cache_hit_and_fails_visibly(prefect_api, loaded, s3_server, monkeypatch):
    from prefect import flow

    from flows.overture import overture_divisions

    database, cache, _, _ = loaded
    for key, value in {"OVERTURE_S3_ENDPOINT": s3_server, "OVERTURE_S3_KEY_ID": KEY_ID,
                       "OVERTURE_S3_SECRET": SECRET}.items():
        monkeypatch.setenv("PVDOI_" + key, value)

    @flow
    def divisions_between_load_and_dbt():
        good = overture_divisions(str(database), cache_path=cache)
        bad = overture_divisions(str(database), cache_path=cache, release="2025-01-22.0", return_state=True)
        return good, bad

    good, bad = divisions_between_load_and_dbt()
    assert good["status"] == "unchanged" and "division_areas" in good["cache"]["hits"]
    assert bad.is_failed()
    with pytest.raises(OvertureSourceError, match=r"2025-01-22\.0.*s3://overturemaps-us-west-2/release/2025-01-22\.0"):
        bad.result()
