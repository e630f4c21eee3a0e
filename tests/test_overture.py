"""The Overture divisions dataflow and its warehouse load against a real S3 API on loopback.

A session-scoped moto server holds the bucket ``overturemaps-us-west-2`` with Overture-schema GeoParquet files
under the default release's path (see ``tests/overture_release.py``); DuckDB's httpfs reaches it through an S3
secret whose endpoint is the server. dbt's country and region assignment on the loaded areas is in
``tests/test_overture_dbt.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import shapely

from flows.dataflow import run_divisions
from hamilton_nodes import divisions as nodes
from pvdoi import divisions
from pvdoi.divisions import s3_access
from pvdoi.errors import OvertureSourceError, OvertureUnreachableError, WarehouseError
from pvdoi.settings import Settings
from pvdoi.warehouse import load_division_areas, warehouse
from tests.overture_release import (
    BUCKET,
    DEAD_ENDPOINT,
    EXTRA_FEATURES,
    KEY_ID,
    RELEASE,
    S3_ONLY_AREAS,
    SECRET,
    data_dir_of,
    loaded_ids,
    query_one,
    fetch_and_load,
    s3_release_server,
    write_overture_release,
)
from tests.test_dbt_project import division_areas, realistic_features, write_warehouse


@pytest.fixture(scope="session")
def s3_server():
    """A local S3 API serving the release's division_area files (countries and regions in two part files)."""
    with s3_release_server() as endpoint:
        yield endpoint


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
    summary = fetch_and_load(str(database), cache_path=cache, s3_endpoint=s3_server, settings=settings)
    return database, cache, summary, settings


def test_url_node_builds_globs_and_refuses_a_malformed_release():
    default = Settings.model_fields["overture_base_url"].default
    assert nodes.division_areas_url(default, "2026-06-17.0") == (
        "s3://overturemaps-us-west-2/release/2026-06-17.0/theme=divisions/type=division_area/*.parquet")
    local = nodes.division_areas_url("/data/overture/{release}", "2026-06-17.0")
    assert local == "/data/overture/2026-06-17.0/*.parquet"
    assert nodes.division_areas_url("/data/areas.parquet", "2026-06-17.0") == "/data/areas.parquet"
    with pytest.raises(OvertureSourceError, match=r"release 'latest' \(URL s3://overturemaps-us-west-2/release/latest/"):
        nodes.division_areas_url(default, "latest")


def test_subdivided_pieces_cover_the_polygon_and_answer_point_in_polygon_alike():
    import numpy as np

    outer = shapely.Point(0, 0).buffer(10.0, quad_segs=2000)  # 8,000 vertices
    polygon = shapely.difference(outer, shapely.box(-2, -2, 2, 2))  # with a hole
    pieces = divisions._subdivide(polygon)
    assert len(pieces) > 30 and max(shapely.get_num_coordinates(pieces)) <= divisions.MAX_PIECE_VERTICES
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
    fetched = summary["fetched"]
    assert (fetched["status"], fetched["written"], fetched["rows"]) == ("fetched", True, len(expected))
    assert Path(fetched["path"]).parent == Path(data_dir_of(database)) / "overture"
    assert pq.read_table(fetched["path"]).column_names[-2:] == ["geometry_wkb", "pieces_wkb"]
    [(release, url, geometry_type, name)] = query_one(database, """
        select distinct release, source_url, ST_GeometryType(geometry), name
        from raw_data.overture_division_areas where id = 'area-cn-bj'""")
    assert (release, url, geometry_type, name) == (RELEASE, summary["url"], "POLYGON", "北京市")
    [(n_pieces, most_vertices, area_ratio)] = query_one(database, """
        select len(geometry_pieces), list_max(list_transform(geometry_pieces, p -> ST_NPoints(p))),
               list_sum(list_transform(geometry_pieces, p -> ST_Area(p))) / ST_Area(geometry)
        from raw_data.overture_division_areas where id = 'area-gb-land'""")  # the 20,000-vertex coastline
    assert n_pieces > 80 and most_vertices <= divisions.MAX_PIECE_VERTICES and area_ratio == pytest.approx(1.0)
    [(single_pieces,)] = query_one(database, "select bool_and(len(geometry_pieces) = 1) from "
                                             "raw_data.overture_division_areas where id <> 'area-gb-land'")
    assert single_pieces  # boxes have 5 vertices


def test_second_run_is_a_cache_hit_that_never_touches_the_source(loaded):
    database, cache, _, settings = loaded
    summary = fetch_and_load(str(database), cache_path=cache, s3_endpoint=DEAD_ENDPOINT, settings=settings)
    assert {"division_areas", "division_area_pieces"} <= set(summary["cache"]["hits"])
    assert not summary["cache"]["misses"]
    assert summary["status"] == "unchanged" and summary["rows"] == len(division_areas())
    assert summary["fetched"]["written"] is False  # the areas file of the first run is kept as it is


def test_wrong_release_fails_naming_url_and_release_and_keeps_the_loaded_rows(loaded, s3_server):
    database, cache, _, settings = loaded
    with pytest.raises(OvertureSourceError, match=r"release '2025-01-22\.0' at s3://overturemaps-us-west-2/release/"
                                                  r"2025-01-22\.0/theme=divisions/type=division_area/\*\.parquet: "
                                                  r"no division_area files") as caught:
        fetch_and_load(str(database), release="2025-01-22.0", cache_path=cache, s3_endpoint=s3_server,
                       settings=settings)
    assert not caught.value.transient
    assert loaded_ids(database) == sorted(a.id for a in division_areas())


def test_unreachable_source_is_a_transient_error_naming_url_and_release(loaded, settings):
    database = loaded[0]
    with pytest.raises(OvertureUnreachableError, match=rf"release '{RELEASE}' at s3://{BUCKET}/.* is unreachable") as e:
        fetch_and_load(str(database), enable_caching=False, s3_endpoint=DEAD_ENDPOINT, settings=settings)
    assert "--no-overture skips" in str(e.value) and "HTTP" not in str(e.value)  # the hint, not the request URL again


def test_empty_answer_for_a_nonempty_bbox_is_an_error(loaded, s3_server):
    database, _, _, settings = loaded
    with pytest.raises(OvertureSourceError, match=rf"release '{RELEASE}' at s3://{BUCKET}/elsewhere/{RELEASE}/"
                                                  r"\*\.parquet returned no country/dependency/region division areas"):
        fetch_and_load(str(database), base_url=f"s3://{BUCKET}/elsewhere/{{release}}/", enable_caching=False,
                       s3_endpoint=s3_server, settings=settings)


def test_a_local_copy_stands_in_for_the_bucket(tmp_path, settings):
    database = tmp_path / "local.duckdb"
    write_warehouse(database, realistic_features(), with_overture=False)
    base_url = write_overture_release(tmp_path / "overture", division_areas() + S3_ONLY_AREAS)
    summary = fetch_and_load(str(database), base_url=base_url, s3_endpoint=DEAD_ENDPOINT, settings=settings)
    assert summary["url"] == str(tmp_path / "overture" / "release" / RELEASE / "theme=divisions" /
                                 "type=division_area" / "*.parquet")
    assert loaded_ids(database) == sorted(a.id for a in division_areas())


def test_no_installations_skips_and_leaves_an_empty_table(tmp_path, settings):
    from pvdoi.warehouse import warehouse

    database = tmp_path / "empty.duckdb"
    with warehouse(str(database)):  # the loader's empty schema
        pass
    summary = fetch_and_load(str(database), s3_endpoint=DEAD_ENDPOINT, settings=settings)  # never asked
    assert (summary["status"], summary["rows"], summary["bbox"]) == ("skipped", 0, None)
    assert loaded_ids(database) == []


def test_the_dataflow_only_reads_the_warehouse_and_a_failed_load_keeps_the_rows(tmp_path, settings):
    database = tmp_path / "fresh.duckdb"
    write_warehouse(database, realistic_features(), with_overture=False)
    base_url = write_overture_release(tmp_path / "overture", division_areas())
    fetched = run_divisions(str(database), data_dir=str(tmp_path / "data"), base_url=base_url,
                            s3_endpoint=DEAD_ENDPOINT, settings=settings)
    [(tables,)] = query_one(database, "select count(*) from duckdb_tables() where table_name = "
                                      "'overture_division_areas'")
    assert tables == 0 and fetched["status"] == "fetched" and Path(fetched["path"]).is_file()
    with warehouse(str(database)) as con:
        assert load_division_areas(con, fetched)["status"] == "loaded"
    broken = {**fetched, "url": fetched["url"] + "?v2", "path": str(tmp_path / "missing.parquet")}
    with pytest.raises(WarehouseError, match=rf"Overture release '{RELEASE}' \(/.*\?v2\) into "
                                             r"raw_data.overture_division_areas failed; the previous rows are kept"), \
            warehouse(str(database)) as con:
        load_division_areas(con, broken)
    assert loaded_ids(database) == sorted(a.id for a in division_areas())


def test_bbox_filter_is_pushed_into_the_parquet_scan(s3_server):
    from pvdoi.duckdb_ext import connect

    url = nodes.division_areas_url(Settings().overture_base_url, RELEASE)
    con = connect(extensions=("spatial", "httpfs"))
    try:
        divisions._configure(con, s3_access(Settings(overture_s3_key_id=KEY_ID, overture_s3_secret=SECRET),
                                           endpoint=s3_server))
        columns = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                                   f"read_parquet('{url}'))").fetchall())
        sql = divisions._query(url, columns, (-10.0, 30.0, 10.0, 60.0), "test")
        [(_, plan)] = con.execute("EXPLAIN " + sql).fetchall()
    finally:
        con.close()
    scan = plan[plan.index("READ_PARQUET"):]
    assert "Filters:" in scan and "bbox.xmin<=10.0" in scan.replace(" ", "").replace("\n", "").replace("│", "")


def test_the_prefect_task_reports_a_cache_hit_and_fails_visibly(prefect_api, loaded, s3_server, monkeypatch):
    from prefect import flow

    from flows.tasks import fetch_divisions, load_divisions

    database, cache, _, _ = loaded
    for key, value in {"OVERTURE_S3_ENDPOINT": s3_server, "OVERTURE_S3_KEY_ID": KEY_ID,
                       "OVERTURE_S3_SECRET": SECRET}.items():
        monkeypatch.setenv("PVDOI_" + key, value)

    @flow
    def divisions_between_load_and_dbt():
        fetched = fetch_divisions(str(database), data_dir=data_dir_of(database), cache_path=cache)
        good = load_divisions(fetched, str(database))
        bad = fetch_divisions(str(database), data_dir=data_dir_of(database), cache_path=cache,
                              release="2025-01-22.0", return_state=True)
        return fetched, good, bad

    fetched, good, bad = divisions_between_load_and_dbt()
    assert "division_areas" in fetched["cache"]["hits"] and good["status"] == "unchanged"
    assert bad.is_failed()
    with pytest.raises(OvertureSourceError, match=r"2025-01-22\.0.*s3://overturemaps-us-west-2/release/2025-01-22\.0"):
        bad.result()
