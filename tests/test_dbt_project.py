"""The dbt project (dbt_project/) built with `dbt build` against a small DuckDB warehouse.

The warehouse is written per session in tmp_path: `raw_data.doi_pv_features` with a few realistic rows
of each of the six datasets (a UK point inside a Kruitwagen polygon, a Kruitwagen "<2016-06" date, a
Kruitwagen and a Dunnett polygon that overlap by half, a rectangle of known orientation) and
`raw_data.datasets`, and `raw_data.overture_division_areas` with Overture-shaped country and region boxes
around them (a land and a territorial area for GB). dbt runs in-process through dbtRunner with its working
files in tmp_path.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import shapely
from dbt.cli.main import dbtRunner, dbtRunnerResult
from pyproj import Transformer
from shapely import affinity

from pvdoi import DBT_PROJECT_DIR, DEFAULT_MANIFEST
from pvdoi.attributes import RESERVED
from pvdoi.duckdb_ext import connect, install_extensions
from pvdoi.transform import release_dbt_duckdb
from pvdoi.manifest import load_manifest
from pvdoi.transform import CATALOG_TESTS, dbt_vars
from pvdoi.warehouse.divisions import DDL as OVERTURE_DDL

_TO_EQUAL_AREA = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
_WGS84_A, _WGS84_E2 = 6_378_137.0, 6.694379990141316e-3

RECTANGLE_AZIMUTH_DEG = 30.0  # long side of the known rectangle, clockwise from north
RECTANGLE_LENGTH_M, RECTANGLE_WIDTH_M = 40.0, 10.0

DATASETS = {
    "usa_cali_usgs_pv_2016": ("10.6084/m9.figshare.3385780.v4", "figshare", "SolarArrayPolygons.geojson"),
    "uk_crowdsourced_pv_2020": ("10.5281/zenodo.4059881", "zenodo", "ukpvgeo_geometries.geojson"),
    "global_pv_inventory_sent2_spot_2021": ("10.5281/zenodo.5005867", "zenodo", "predicted_polygons.geojson"),
    "global_harmonized_large_solar_farms_2020": ("10.6084/m9.figshare.11310269.v6", "figshare",
                                                 "global_solar_2020_WGS84.gpkg"),
    "chn_med_res_pv_2024": ("https://github.com/qingfengxitu/ChinaPV", "github", "PV_Train_2020.shp"),
    "ind_pv_solar_farms_2022": ("https://github.com/microsoft/solar-farms-mapping", "url",
                                "solar_farms_india_2021_merged_simplified.geojson"),
}


@dataclass
class Feature:
    uid: str
    dataset_id: str
    geometry: shapely.Geometry
    unified_id: str | None = None
    source_area_m2: float | None = None
    capacity_mw: float | None = None
    install_date: str | None = None
    attributes: dict = field(default_factory=dict)
    source_file: str | None = None
    area_m2: float | None = None  # override, to break the data


def _from_local_metres(local: shapely.Geometry, lon0: float, lat0: float) -> shapely.Geometry:
    """A geometry drawn in metres east/north of lon0/lat0, converted to lon/lat on the WGS84 ellipsoid."""
    phi = math.radians(lat0)
    w = math.sqrt(1 - _WGS84_E2 * math.sin(phi) ** 2)
    north, east = _WGS84_A * (1 - _WGS84_E2) / w**3, _WGS84_A / w * math.cos(phi)
    return shapely.transform(local, lambda xy: np.column_stack(
        (lon0 + np.degrees(xy[:, 0] / east), lat0 + np.degrees(xy[:, 1] / north))))


def _rectangle(lon0: float, lat0: float, length_m: float, width_m: float, azimuth_deg: float) -> shapely.Polygon:
    """A length x width metre rectangle centred on lon0/lat0, its long side at azimuth_deg from north."""
    local = shapely.box(-width_m / 2, -length_m / 2, width_m / 2, length_m / 2)
    return _from_local_metres(affinity.rotate(local, -azimuth_deg, origin=(0, 0)), lon0, lat0)


def realistic_features() -> list[Feature]:
    """A few features per dataset, shaped like the published files."""
    usa, uk, kru, dun, chn, ind = DATASETS
    return [
        Feature("usa-1", usa, shapely.box(-119.7812, 36.7501, -119.7811, 36.7502), "1", 88.9,
                attributes={"polygon_id": 1, "city": "Fresno", "jaccard_index": 0.91}),
        Feature("usa-rect", usa, _rectangle(-120.99, 37.64, RECTANGLE_LENGTH_M, RECTANGLE_WIDTH_M,
                                            RECTANGLE_AZIMUTH_DEG), "2", 400.0,
                attributes={"polygon_id": 2, "city": "Modesto"}),
        Feature("uk-point", uk, shapely.Point(-1.2, 52.1), "4242", 150.0, 0.004, "2015-03-31T00:00:00",
                {"osm_id": 4242, "repd_status": "Operational", "repd_id": 1234.0, "area_sqm": 150.0}),
        Feature("uk-roof", uk, shapely.box(-0.10010, 51.50000, -0.10000, 51.50006), "4343", None, None, "2017",
                {"osm_id": 4343, "osm_objtype": "way"}),
        Feature("uk-line", uk, shapely.LineString([(-2.0, 53.0), (-2.0001, 53.0001)]), "4444",
                attributes={"osm_id": 4444}),
        Feature("kru-uk", kru, shapely.box(-1.202, 52.0985, -1.198, 52.1015), "K1", 81_000.0, 4.1, "<2016-06",
                {"unique_id": "K1", "confidence": "A", "iso-3166-1": "GB", "install_date": "<2016-06"}),
        Feature("kru-es", kru, shapely.box(-3.700, 40.400, -3.690, 40.407), "K2", 658_000.0, 32.0, "2017-06-30",
                {"unique_id": "K2", "confidence": "B", "iso-3166-1": "ES", "install_date": "2017-06-30"}),
        Feature("dun-es", dun, shapely.box(-3.695, 40.400, -3.685, 40.407), "S1", 600_000.0, 30.0,
                attributes={"sol_id": 1, "GID_0": "ESP", "panels": 1200.0, "panel.area": 0.6,
                            "landscape.area": 0.66, "water": 0, "urban": 0, "power": 30.0}),
        Feature("dun-in", dun, shapely.box(77.30, 13.10, 77.31, 13.11), "S2", 1_200_000.0, 60.0,
                attributes={"sol_id": 2, "GID_0": "IND", "power": 60.0}),
        Feature("chn-1", chn, shapely.box(116.40, 39.90, 116.402, 39.902), None, None, None, None,
                {"OID_": 1, "landcover": 3}, "PV_Train_2020.shp"),
        Feature("chn-2", chn, shapely.box(101.0, 36.0, 101.003, 36.002), None, None, None, None,
                {"FID_PV_202": 7}, "PV_Test_2015.shp"),
        Feature("ind-1", ind, shapely.MultiPolygon([shapely.box(72.50, 27.00, 72.505, 27.004),
                                                    shapely.box(72.51, 27.00, 72.512, 27.002)]), "11",
                410_000.0, attributes={"fid": 11, "State": "Rajasthan", "Area": 410000.0}),
    ]


@dataclass
class DivisionArea:
    """An Overture division_area (theme=divisions) reduced to what the dataflow loads."""

    id: str
    subtype: str
    country: str
    name: str
    geometry: shapely.Geometry
    region: str | None = None
    is_land: bool = True
    is_territorial: bool = True

    @property
    def area_class(self) -> str:
        return "land" if self.is_land else "maritime"


def _ragged_box(xmin: float, ymin: float, xmax: float, ymax: float, *, n: int = 5000,
                depth: float = 0.05) -> shapely.Polygon:
    """A valid box whose sides zigzag inwards by up to ``depth`` degrees: 4 n vertices, like a detailed coastline.

    The teeth shrink to nothing near the corners, so the teeth of two sides never cross."""
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    dent = depth * (np.arange(n) % 2) * np.clip(20 * np.minimum(t, 1 - t), 0, 1)
    along_x, along_y = t * (xmax - xmin), t * (ymax - ymin)
    ring = np.concatenate([
        np.column_stack([xmin + along_x, ymin + dent]), np.column_stack([xmax - dent, ymin + along_y]),
        np.column_stack([xmax - along_x, ymax - dent]), np.column_stack([xmin + dent, ymax - along_y])])
    return shapely.Polygon(ring)


def division_areas() -> list[DivisionArea]:
    """Country and region areas (boxes) around every realistic feature: GB with a land and a territorial area,
    its land area with a 20,000-vertex coastline."""
    return [
        DivisionArea("area-us", "country", "US", "United States", shapely.box(-124.0, 32.5, -114.0, 42.0)),
        DivisionArea("area-us-ca", "region", "US", "California", shapely.box(-124.5, 32.5, -114.1, 42.0), "US-CA"),
        DivisionArea("area-gb-land", "country", "GB", "United Kingdom", _ragged_box(-6.0, 50.0, 2.0, 56.0),
                     is_territorial=False),
        DivisionArea("area-gb-sea", "country", "GB", "United Kingdom", shapely.box(-7.0, 49.0, 3.0, 57.0),
                     is_land=False),
        DivisionArea("area-gb-eng", "region", "GB", "England", shapely.box(-6.0, 50.0, 2.0, 55.8), "GB-ENG"),
        DivisionArea("area-es", "country", "ES", "España", shapely.box(-9.5, 36.0, 3.3, 43.8)),
        DivisionArea("area-es-md", "region", "ES", "Comunidad de Madrid", shapely.box(-4.6, 39.9, -3.0, 41.2), "ES-MD"),
        DivisionArea("area-in", "country", "IN", "India", shapely.box(68.0, 6.0, 97.5, 35.5)),
        DivisionArea("area-in-ka", "region", "IN", "Karnataka", shapely.box(74.0, 11.5, 78.6, 18.5), "IN-KA"),
        DivisionArea("area-in-rj", "region", "IN", "Rajasthan", shapely.box(69.5, 23.0, 78.3, 30.2), "IN-RJ"),
        DivisionArea("area-cn", "country", "CN", "中国", shapely.box(98.0, 18.0, 135.0, 53.5)),
        DivisionArea("area-cn-bj", "region", "CN", "北京市", shapely.box(115.4, 39.4, 117.5, 41.1), "CN-BJ"),
        DivisionArea("area-cn-qh", "region", "CN", "青海省", shapely.box(98.5, 31.6, 103.1, 39.2), "CN-QH"),
    ]


def write_division_areas(con, areas: list[DivisionArea], *, release: str = "2026-06-17.0") -> None:
    """raw_data.overture_division_areas as the Overture dataflow loads it."""
    con.execute(OVERTURE_DDL)
    con.executemany(f"""
        insert into raw_data.overture_division_areas by name
        select ? as id, ? as division_id, ? as subtype, ? as class, ? as is_land, ? as is_territorial,
               ? as country, ? as region, ? as name, 1 as version, ? as bbox_xmin, ? as bbox_xmax, ? as bbox_ymin,
               ? as bbox_ymax, ST_GeomFromText(?::varchar) as geometry,
               [ST_GeomFromText(?::varchar)] as geometry_pieces, '{release}' as release,
               's3://overturemaps-us-west-2/release/{release}/theme=divisions/type=division_area/*.parquet'
                   as source_url, null as fetch_bbox, timestamp '2024-01-01 00:06:00' as loaded_at""",
        [(a.id, "division-" + a.id, a.subtype, a.area_class, a.is_land, a.is_territorial, a.country, a.region,
          a.name, a.geometry.bounds[0], a.geometry.bounds[2], a.geometry.bounds[1], a.geometry.bounds[3],
          a.geometry.wkt, a.geometry.wkt) for a in areas])


def write_warehouse(path: Path, features: list[Feature], *, with_overture: bool = True) -> None:
    """Create raw_data.doi_pv_features and raw_data.datasets as the loader does, and the Overture areas."""
    con = connect(str(path))
    try:
        con.execute("create schema raw_data")
        con.execute("""
            create table raw_data.doi_pv_features (
                feature_uid varchar, dataset_id varchar, doi varchar, source_file varchar,
                source_file_checksum varchar, source_feature_index bigint, unified_id varchar,
                geometry geometry('EPSG:4326'), geometry_type varchar, area_m2 double, centroid_lon double,
                centroid_lat double, source_area_m2 double, capacity_mw double, install_date varchar,
                source_attributes json, ingested_at timestamp, loaded_at timestamp)""")
        rows = []
        for index, f in enumerate(features):
            doi, _, default_file = DATASETS[f.dataset_id]
            projected = shapely.transform(f.geometry, lambda xy: np.column_stack(
                _TO_EQUAL_AREA.transform(xy[:, 0], xy[:, 1])))
            centroid = f.geometry.centroid
            rows.append((f.uid, f.dataset_id, doi, f.source_file or default_file, "md5:" + "0" * 32, index,
                         f.unified_id, f.geometry.wkt, f.geometry.geom_type,
                         projected.area if f.area_m2 is None else f.area_m2, centroid.x, centroid.y,
                         f.source_area_m2, f.capacity_mw, f.install_date, json.dumps(f.attributes)))
        con.executemany("""
            insert into raw_data.doi_pv_features values
            (?, ?, ?, ?, ?, ?, ?, ST_GeomFromText(?::varchar), ?, ?, ?, ?, ?, ?, ?, ?::json,
             timestamp '2024-01-01 00:00:00', timestamp '2024-01-01 00:05:00')""", rows)
        con.execute("""
            create table raw_data.datasets (
                dataset_id varchar primary key, doi varchar, title varchar, license varchar, repository varchar,
                record_id varchar, record_version varchar, files json, features_read bigint,
                features_written bigint, expected_count bigint, geoparquet_path varchar,
                last_loaded_at timestamp, citation varchar, year integer, publisher varchar)""")
        for dataset_id, (doi, repository, file_name) in DATASETS.items():
            written = sum(f.dataset_id == dataset_id for f in features)
            con.execute(
                "insert into raw_data.datasets values (?, ?, ?, 'CC-BY-4.0', ?, '1', '1', ?, ?, ?, ?, ?, "
                "timestamp '2024-01-01 00:05:00', ?, 2020, ?)",
                [dataset_id, doi, f"title of {dataset_id}", repository,
                 json.dumps([{"name": file_name, "checksum": "md5:" + "0" * 32, "size": 1}]),
                 written, written, written + 1, f"/data/{dataset_id}.parquet",
                 f"Someone (2020). title of {dataset_id} [dataset]. {repository}", repository])
        if with_overture:
            write_division_areas(con, division_areas())
    finally:
        con.close()


@dataclass
class DbtRun:
    result: dbtRunnerResult
    database: Path
    seconds: float


def run_dbt(command: list[str], database: Path, work_dir: Path, *, manifest: Path = DEFAULT_MANIFEST,
            vars: dict | None = None, project: Path = DBT_PROJECT_DIR) -> DbtRun:
    """Run dbt in-process against the given warehouse, with the manifest's datasets as vars (as the flow passes
    them; ``vars`` replace or add some); target/ and logs/ go to work_dir."""
    install_extensions(("spatial",))  # from the wheel: the profile's `extensions: [spatial]` then loads offline
    args = [*command, "--project-dir", str(project), "--profiles-dir", str(project),
            "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs"),
            "--vars", json.dumps({**dbt_vars(manifest), **(vars or {})})]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PVDOI_DATABASE_PATH", str(database))
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        started = time.perf_counter()
        try:
            result = dbtRunner().invoke(args)
        finally:
            release_dbt_duckdb()
    return DbtRun(result, database, time.perf_counter() - started)


def dbt_tables(database: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every table of the prepared and curated schemas: its columns and all its rows in a stable order (geometries as
    WKB, lists and structs as JSON; ordered by the columns that are not floating point first)."""
    con = connect(str(database), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() "
                                            "WHERE schema_name IN ('prepared', 'curated') ORDER BY 1").fetchall()]
        out = {}
        for table in tables:
            columns = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
            select = ", ".join(f"ST_AsWKB({c})" if t.startswith("GEOMETRY") else
                               (f"to_json({c})" if "[]" in t or t.startswith("STRUCT") else c) for c, t in columns)
            order = [str(i + 1) for i, (_, t) in enumerate(columns) if t not in ("DOUBLE", "FLOAT")]
            order += [str(i + 1) for i, (_, t) in enumerate(columns) if t in ("DOUBLE", "FLOAT")]
            rows = con.execute(f"SELECT {select} FROM {table} ORDER BY {', '.join(order)}").fetchall()
            out[table] = ([c for c, _ in columns], rows)
        return out
    finally:
        con.close()


def assert_same_tables(got: dict, expected: dict, *, rel: float = 1e-9) -> None:
    """The same tables, columns and rows, in order; floats equal within ``rel`` (sums may add in another order)."""
    assert sorted(got) == sorted(expected) and len(expected) >= 6
    for table, (columns, rows) in expected.items():
        assert got[table][0] == columns, table
        assert len(got[table][1]) == len(rows), table
        for got_row, row in zip(got[table][1], rows):
            for column, a, b in zip(columns, got_row, row):
                if isinstance(b, float) and isinstance(a, float):
                    assert a == pytest.approx(b, rel=rel, abs=1e-9, nan_ok=True), (table, column, row)
                else:
                    assert a == b, (table, column, row)


def failed_nodes(run: DbtRun) -> list[str]:
    return [r.node.name for r in run.result.result if str(r.status) in {"error", "fail"}]


@pytest.fixture(scope="session")
def dbt_work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dbt_work")


@pytest.fixture(scope="session")
def built(tmp_path_factory, dbt_work_dir) -> DbtRun:
    database = tmp_path_factory.mktemp("warehouse") / "eo_pv_data.duckdb"
    write_warehouse(database, realistic_features())
    return run_dbt(["build"], database, dbt_work_dir)


def query(run: DbtRun, sql: str, params: list | None = None) -> list[tuple]:
    con = connect(str(run.database), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_dbt_build_succeeds_with_every_test_and_unit_test(built):
    assert built.result.success, failed_nodes(built)
    kinds = {r.node.resource_type for r in built.result.result}
    assert {"model", "test", "unit_test"} <= {str(k) for k in kinds}
    assert not failed_nodes(built)
    print(f"dbt build took {built.seconds:.1f} s")


def test_union_holds_every_raw_row_with_unique_keys(built):
    [(raw,)] = query(built, "select count(*) from raw_data.doi_pv_features")
    [(unioned, keys)] = query(built, "select count(*), count(distinct installation_key) "
                                     "from prepared.int_installations_unioned")
    assert unioned == keys == raw == len(realistic_features())
    [(key,)] = query(built, "select installation_key from curated.installations where feature_uid = 'dun-es'")
    [(expected,)] = query(built, "select md5('global_harmonized_large_solar_farms_2020' || 'dun-es')")
    assert key == expected


def test_overlapping_polygons_of_two_datasets_are_matched(built):
    rows = query(built, """
        select m.match_method, m.overlap_ratio, m.intersection_over_union, m.distance_m
        from prepared.int_installations_cross_dataset_matched m
        join prepared.int_installations_unioned a on a.installation_key = m.installation_key_a
        join prepared.int_installations_unioned b on b.installation_key = m.installation_key_b
        where a.feature_uid = 'dun-es' and b.feature_uid = 'kru-es'  -- oriented: dataset_id_a < dataset_id_b""")
    assert len(rows) == 1
    method, ratio, iou, distance = rows[0]
    assert method == "polygon_overlap"
    assert ratio == pytest.approx(0.5, abs=0.01)  # half of each 0.010 x 0.007 degree box
    assert iou == pytest.approx(1 / 3, abs=0.01)
    assert distance == 0


def test_uk_point_inside_a_kruitwagen_polygon_is_a_proximity_match_and_nothing_else_matches(built):
    rows = query(built, """
        select a.feature_uid, b.feature_uid, m.match_method, m.distance_m
        from prepared.int_installations_cross_dataset_matched m
        join prepared.int_installations_unioned a on a.installation_key = m.installation_key_a
        join prepared.int_installations_unioned b on b.installation_key = m.installation_key_b
        order by 1""")
    assert rows == [("dun-es", "kru-es", "polygon_overlap", 0.0), ("kru-uk", "uk-point", "proximity", 0.0)]


def match_statements(database: Path, work_dir: Path) -> list[str]:
    """The model's post-hook as dbt renders it against this warehouse (a full build): one statement per join."""
    unioned = "ref('int_installations_unioned')"
    run = run_dbt(["compile", "--inline", f"{{{{ insert_cross_dataset_matches({unioned}) }}}}"], database, work_dir)
    assert run.result.success, failed_nodes(run)
    sql = run.result.result.results[0].node.compiled_code
    return [s.strip() for s in sql.split(";") if s.strip()]


def test_the_model_sql_holds_no_join_and_its_post_hook_one_join_per_statement(built, dbt_work_dir, tmp_path):
    """All joins in one statement hold every build side at once (memory): the table is created empty, then filled
    by one insert per join."""
    compiled = dbt_work_dir / "target" / "compiled" / "pv_warehouse" / "models" / "prepared"
    sql = (compiled / "int_installations_cross_dataset_matched.sql").read_text()
    assert "ST_Intersects(" not in sql and "ST_DWithin(" not in sql
    statements = match_statements(built.database, tmp_path)
    assert statements and all(s.startswith("insert into ") for s in statements)
    assert all(s.count("ST_Intersects(") + s.count("ST_DWithin(") == 1 for s in statements)


def test_cross_dataset_matching_is_planned_as_spatial_joins(built, tmp_path):
    """A comparison between the two sides in a join makes DuckDB drop the SPATIAL_JOIN for a nested loop."""
    for statement in match_statements(built.database, tmp_path):
        select = statement[statement.index(" by name ") + len(" by name "):]
        [(_, plan)] = query(built, "explain " + select)
        assert "SPATIAL_JOIN" in plan
        for slow_join in ("NESTED_LOOP_JOIN", "PIECEWISE_MERGE_JOIN", "BLOCKWISE_NL_JOIN", "IE_JOIN", "CROSS_PRODUCT"):
            assert slow_join not in plan


def test_proximity_joins_are_generated_only_for_datasets_holding_non_polygons(built, tmp_path):
    """A join whose point side is empty still builds its other side (memory): such joins are left out."""
    sql = "\n".join(match_statements(built.database, tmp_path))
    holders = [d for (d,) in query(built, "select distinct dataset_id from prepared.int_installations_unioned "
                                          "where geometry_class <> 'polygon'")]
    assert holders  # the fixture's UK point
    assert sql.count("ST_DWithin(") == len(holders) * 5  # each against the five other datasets
    assert sql.count("ST_Intersects(") == 15  # polygons: every unordered pair of the six


def test_compile_before_a_first_build_generates_every_proximity_join(tmp_path):
    """Before the union exists there is nothing to ask which datasets hold points: all 30 joins (correct, larger)."""
    database = tmp_path / "fresh.duckdb"
    write_warehouse(database, realistic_features())
    assert "\n".join(match_statements(database, tmp_path)).count("ST_DWithin(") == 30


def test_a_first_build_with_changed_datasets_joins_every_pair(built, tmp_path):
    """The post-hook runs after the table was created: a first build (no table before) still joins every pair, even
    with the var `changed_datasets` (which only restricts an incremental build)."""
    database = tmp_path / "first.duckdb"
    write_warehouse(database, realistic_features())
    run = run_dbt(["run", "--select", "+int_installations_cross_dataset_matched"], database, tmp_path,
                  vars={"changed_datasets": ["usa_cali_usgs_pv_2016"]})
    assert run.result.success, failed_nodes(run)
    sql = "select * from prepared.int_installations_cross_dataset_matched order by all"
    assert query(run, sql) == query(built, sql) and query(built, sql)


def test_without_non_polygons_the_matches_are_the_polygon_overlaps(tmp_path):
    polygons = [f for f in realistic_features() if f.geometry.geom_type in {"Polygon", "MultiPolygon"}]
    database = tmp_path / "polygons.duckdb"
    write_warehouse(database, polygons)
    run = run_dbt(["run", "--select", "+int_installations_cross_dataset_matched"], database, tmp_path)
    assert run.result.success, failed_nodes(run)
    rows = query(run, """
        select a.feature_uid, b.feature_uid, m.match_method
        from prepared.int_installations_cross_dataset_matched m
        join prepared.int_installations_unioned a on a.installation_key = m.installation_key_a
        join prepared.int_installations_unioned b on b.installation_key = m.installation_key_b""")
    assert rows == [("dun-es", "kru-es", "polygon_overlap")]


def test_the_build_runs_under_the_configured_duckdb_memory_limit(built, tmp_path, monkeypatch):
    def limit() -> str:
        run = run_dbt(["show", "--inline", "select current_setting('memory_limit') as memory_limit"],
                      built.database, tmp_path)
        assert run.result.success, failed_nodes(run)
        return run.result.result.results[0].agate_table.rows[0][0]

    assert limit() == "488.2 MiB"  # the profile's default, 512MB
    monkeypatch.setenv("PVDOI_DBT_MEMORY_LIMIT", "300MB")
    assert limit() == "286.1 MiB"


def test_installations_count_the_datasets_that_map_them(built):
    rows = dict(query(built, "select feature_uid, mapped_by_n_datasets from curated.installations"))
    assert rows["kru-es"] == rows["dun-es"] == rows["uk-point"] == rows["kru-uk"] == 2
    assert rows["usa-1"] == rows["chn-1"] == rows["uk-roof"] == 1
    [(area, basis)] = query(built, "select best_area_m2, best_area_basis from curated.installations "
                                   "where feature_uid = 'uk-point'")
    assert (area, basis) == (150.0, "published")


def test_before_dates_and_uk_attributes_are_parsed(built):
    [(date, precision, qualifier, confidence)] = query(built, """
        select install_date::varchar, install_date_precision, install_date_qualifier, confidence
        from curated.installations where feature_uid = 'kru-uk'""")
    assert (date, precision, qualifier, confidence) == ("2016-06-01", "month", "before", "A")
    [(status, repd_id, precision)] = query(built, """
        select repd_status, repd_id, install_date_precision
        from curated.installations where feature_uid = 'uk-point'""")
    assert (status, repd_id, precision) == ("Operational", 1234, "day")


def _to_local_metres(geometry: shapely.Geometry, lon0: float, lat0: float) -> shapely.Geometry:
    """A lon/lat geometry in metres east/north of lon0/lat0 (the inverse of _from_local_metres)."""
    phi = math.radians(lat0)
    w = math.sqrt(1 - _WGS84_E2 * math.sin(phi) ** 2)
    north, east = _WGS84_A * (1 - _WGS84_E2) / w**3, _WGS84_A / w * math.cos(phi)
    return shapely.transform(geometry, lambda xy: np.column_stack(
        (np.radians(xy[:, 0] - lon0) * east, np.radians(xy[:, 1] - lat0) * north)))


def reference_shape_metrics(geometry: shapely.Geometry) -> dict:
    """A lon/lat polygon's shape metrics by pyproj and shapely, as the model defines them: area in EPSG:6933;
    perimeter, the minimum rotated rectangle (GEOS) and its long side's azimuth in metres east/north of the centroid."""
    area = shapely.transform(geometry, lambda xy: np.column_stack(_TO_EQUAL_AREA.transform(xy[:, 0], xy[:, 1]))).area
    local = _to_local_metres(geometry, geometry.centroid.x, geometry.centroid.y)
    rectangle = shapely.minimum_rotated_rectangle(local)
    orientation = rectangularity = None
    if rectangle.geom_type == "Polygon" and rectangle.area > 0:
        (x0, y0), (x1, y1), (x2, y2) = rectangle.exterior.coords[:3]
        if math.hypot(x1 - x0, y1 - y0) < math.hypot(x2 - x1, y2 - y1):
            x0, y0, x1, y1 = x1, y1, x2, y2
        orientation = math.degrees(math.atan2(x1 - x0, y1 - y0)) % 180.0
        orientation = 0.0 if abs(orientation - 180.0) <= 1e-8 + 1e-5 * 180.0 else orientation  # numpy's isclose
        rectangularity = min(local.area / rectangle.area, 1.0)
    return {"area_m2": area, "perimeter_m": local.length, "orientation_deg": orientation,
            "compactness": min(4 * math.pi * area / local.length**2, 1.0) if local.length > 0 else None,
            "rectangularity": rectangularity}


def shape_metrics_by_feature(run: DbtRun) -> dict[str, dict]:
    rows = query(run, """
        select u.feature_uid, s.area_m2, s.perimeter_m, s.compactness, s.orientation_deg, s.rectangularity
        from curated.installation_shape_metrics s join prepared.int_installations_unioned u using (installation_key)""")
    names = ("area_m2", "perimeter_m", "compactness", "orientation_deg", "rectangularity")
    return {uid: dict(zip(names, values)) for uid, *values in rows}


def assert_shape_metrics_match_the_reference(got: dict, expected: dict, *, orientation: bool = True) -> None:
    """Equal within 1e-9 (relative, or absolute near 0): the SQL and the reference differ by float rounding only
    (DuckDB's and GEOS's centroids, the order of operations), at most 1e-13 relative on 93,946 look-alike polygons;
    a change of method (a sphere for the ellipsoid, another projection) moves them by 1e-3 or more. The orientation
    is left out for shapes with several minimum rectangles of the same area (a disc, a square): GEOS takes one by the
    last bits of the coordinates, in SQL as in shapely."""
    for name, value in expected.items():
        if name != "orientation_deg" or orientation:
            assert got[name] == (None if value is None else pytest.approx(value, rel=1e-9, abs=1e-9)), name


def test_shape_metrics_equal_a_shapely_reference(built):
    """Every polygon of the realistic features, and the known rectangle's area, orientation and compactness."""
    metrics = shape_metrics_by_feature(built)
    polygons = {f.uid: f.geometry for f in realistic_features() if f.geometry.geom_type in {"Polygon", "MultiPolygon"}}
    assert set(metrics) == set(polygons)
    for uid, geometry in polygons.items():
        assert_shape_metrics_match_the_reference(metrics[uid], reference_shape_metrics(geometry))
    rectangle, (length, width) = metrics["usa-rect"], (RECTANGLE_LENGTH_M, RECTANGLE_WIDTH_M)
    assert rectangle["area_m2"] == pytest.approx(length * width, rel=1e-3)
    assert rectangle["rectangularity"] == pytest.approx(1.0, abs=1e-6)
    assert rectangle["orientation_deg"] == pytest.approx(RECTANGLE_AZIMUTH_DEG, abs=0.1)
    assert rectangle["compactness"] == pytest.approx(4 * math.pi * length * width / (2 * (length + width)) ** 2,
                                                     rel=1e-3)


def test_shape_metrics_of_awkward_shapes(tmp_path):
    """A disc, a polygon with a hole (its ring counts in the perimeter), two parts, an L, a rectangle a hair short of
    180 degrees (counted as 0), a bowtie without area (its centroid is that of its rings), a collinear ring (no
    rectangle: no orientation) and a square (in metres)."""
    usa = "usa_cali_usgs_pv_2016"
    shapes = {
        "disc": _from_local_metres(shapely.Point(0, 0).buffer(100.0, quad_segs=64), 10.0, 50.0),
        "holed": shapely.Polygon(shapely.box(5.0, 45.0, 5.004, 45.002).exterior.coords,
                                 [shapely.box(5.001, 45.0005, 5.002, 45.0015).exterior.coords[::-1]]),
        "two-parts": shapely.MultiPolygon([shapely.box(20.0, 60.0, 20.001, 60.003), shapely.box(20.002, 60.0, 20.004,
                                                                                               60.0005)]),
        "l-shape": shapely.union(shapely.box(-70.0, -33.0, -69.998, -32.9995), shapely.box(-70.0, -33.0, -69.9995,
                                                                                          -32.998)),
        "wrap": _rectangle(100.0, 10.0, 40.0, 10.0, 179.9995),
        "bowtie": shapely.Polygon([(30.0, 40.0), (30.001, 40.001), (30.001, 40.0), (30.0, 40.001)]),
        "collinear": shapely.Polygon([(31.0, 41.0), (31.0, 41.001), (31.0, 41.002)]),  # along a meridian
        "square": _from_local_metres(shapely.box(-50.0, -50.0, 50.0, 50.0), 40.0, 0.0),
    }
    database = tmp_path / "shapes.duckdb"
    write_warehouse(database, [Feature(uid, usa, geometry) for uid, geometry in shapes.items()])
    run = run_dbt(["run", "--select", "+installation_shape_metrics"], database, tmp_path)
    assert run.result.success, failed_nodes(run)
    metrics = shape_metrics_by_feature(run)
    for uid, geometry in shapes.items():
        assert_shape_metrics_match_the_reference(metrics[uid], reference_shape_metrics(geometry),
                                                 orientation=uid not in {"disc", "bowtie", "square"})
    assert metrics["disc"]["compactness"] == pytest.approx(1.0, abs=0.01)
    assert metrics["disc"]["rectangularity"] == pytest.approx(math.pi / 4, abs=0.01)
    assert metrics["wrap"]["orientation_deg"] == 0.0 and metrics["wrap"]["rectangularity"] == pytest.approx(1.0)
    assert metrics["bowtie"]["area_m2"] == pytest.approx(0.0, abs=1e-6) and metrics["bowtie"]["perimeter_m"] > 400
    assert metrics["collinear"]["orientation_deg"] is metrics["collinear"]["rectangularity"] is None


def test_every_column_is_a_common_one_or_a_declared_attribute(built):
    """pvdoi.attributes.RESERVED lists the columns every dataset has, so no attribute can be declared under one."""
    declared = {a.name for d in load_manifest(DEFAULT_MANIFEST).datasets for a in d.attributes}
    columns = {c for (c,) in query(built, "select column_name from (describe curated.installations)")}
    assert declared <= columns and columns - declared == RESERVED
    staging = {c for (c,) in query(built, "select column_name from (describe staging.stg_doi__installations)")}
    assert staging - declared < RESERVED and declared <= staging


def test_dataset_summary_reconciles_with_the_load(built):
    rows = {r[0]: r[1:] for r in query(built, """
        select dataset_id, n_installations, n_point, n_linestring, n_polygon, n_multipolygon,
               is_count_reconciled, difference_from_expected_count, total_capacity_mw
        from curated.dataset_summary""")}
    assert set(rows) == set(DATASETS)
    assert rows["uk_crowdsourced_pv_2020"] == (3, 1, 1, 1, 0, True, -1, 0.004)
    assert rows["ind_pv_solar_farms_2022"][:5] == (1, 0, 0, 0, 1)


def test_docs_generate(built, dbt_work_dir):
    run = run_dbt(["docs", "generate"], built.database, dbt_work_dir)
    assert run.result.success
    catalog = json.loads((dbt_work_dir / "target" / "catalog.json").read_text())
    columns = catalog["nodes"]["model.pv_warehouse.installations"]["columns"]
    assert columns["geometry"]["type"] == "GEOMETRY" and "mapped_by_n_datasets" in columns
    assert (dbt_work_dir / "target" / "index.html").exists()
    assert "model.pv_warehouse.installation_shape_metrics" in catalog["nodes"]


def test_broken_rows_fail_the_build_with_the_failing_tests_named(tmp_path, dbt_work_dir):
    features = realistic_features()
    features.append(Feature("usa-1", "usa_cali_usgs_pv_2016", shapely.box(-119.79, 36.75, -119.7899, 36.7501)))
    features.append(Feature("chn-negative", "chn_med_res_pv_2024", shapely.box(110.0, 30.0, 110.001, 30.001),
                            area_m2=-5.0, source_file="PV_Test_2015.shp"))
    database = tmp_path / "broken.duckdb"
    write_warehouse(database, features)
    run = run_dbt(["build"], database, dbt_work_dir)
    assert not run.result.success
    failed = failed_nodes(run)
    # the source tests fail first, and dbt build skips every model downstream of them
    assert "source_unique_raw_data_doi_pv_features_feature_uid" in failed
    assert "source_positive_for_polygons_raw_data_doi_pv_features_area_m2" in failed
    skipped = {r.node.name for r in run.result.result if str(r.status) == "skipped"}
    assert {"installations", "int_installations_unioned", "installation_shape_metrics"} <= skipped


# what a load does to the rows of a part it replaces (pvdoi/warehouse/datasets.py): all of them get its loaded_at
# (one fixed time: the tests apply a change to two copies)
LOADED_AGAIN = ("update raw_data.doi_pv_features set loaded_at = timestamp '2025-01-01 00:00:00' "
                "where dataset_id = '{dataset}' and source_file = '{file}'")


def _changed_copy(built: DbtRun, tmp_path: Path, name: str, change: str) -> Path:
    """A copy of the built warehouse (under its own name: the tests name its catalog) in the folder ``name``, with
    ``change`` (SQL) applied to its raw rows."""
    import shutil

    (tmp_path / name).mkdir()
    copy = tmp_path / name / built.database.name
    shutil.copy(built.database, copy)
    con = connect(str(copy))
    try:
        con.execute(change)
    finally:
        con.close()
    return copy


def _incremental_equals_full(built: DbtRun, tmp_path: Path, change: str, changed: list[str], *,
                             vars: dict | None = None) -> tuple[Path, Path]:
    """Apply ``change`` to two copies of the built warehouse; build one incrementally (the changed datasets' staging
    and what follows, as pvdoi.transform selects it) and the other whole; assert every table is the same."""
    incremental = _changed_copy(built, tmp_path, "incremental", change)
    full = _changed_copy(built, tmp_path, "full", change)
    run = run_dbt(["build", "--select", "stg_doi__installations+", CATALOG_TESTS], incremental,
                  tmp_path / "incremental", vars={**(vars or {}), "changed_datasets": changed})
    assert run.result.success, failed_nodes(run)
    statuses = {r.node.name: str(r.status) for r in run.result.result}
    assert statuses["installations"] == statuses["int_installations_cross_dataset_matched"] == "success"
    run = run_dbt(["build", "--full-refresh"], full, tmp_path / "full", vars=vars)
    assert run.result.success, failed_nodes(run)
    assert_same_tables(dbt_tables(incremental), dbt_tables(full))
    return incremental, full


def test_an_incremental_build_after_one_dataset_changed_equals_a_full_build(built, tmp_path):
    """Kruitwagen loses its Spanish polygon (Dunnett's lost its match there), its UK polygon moves away from the UK
    point (which loses its match) and north (its shape metrics change), and a new polygon overlaps the Indian Dunnett
    farm (which gains one)."""
    kru = "global_pv_inventory_sent2_spot_2021"
    change = f"""
        delete from raw_data.doi_pv_features where feature_uid = 'kru-es';
        update raw_data.doi_pv_features
        set geometry = ST_Translate(geometry, 0.5, 0.2),
            centroid_lon = centroid_lon + 0.5, centroid_lat = centroid_lat + 0.2
        where feature_uid = 'kru-uk';
        {LOADED_AGAIN.format(dataset=kru, file=DATASETS[kru][2])};
        insert into raw_data.doi_pv_features select * replace ('kru-in' as feature_uid, '{kru}' as dataset_id,
            ST_Translate(geometry, 0.005, 0) as geometry, centroid_lon + 0.005 as centroid_lon, timestamp '2025-01-01 00:00:00' as loaded_at)
        from raw_data.doi_pv_features where feature_uid = 'dun-in'"""
    incremental, _ = _incremental_equals_full(built, tmp_path, change, [kru])
    mapped = dict(query(DbtRun(None, incremental, 0), "select feature_uid, mapped_by_n_datasets "
                                                      "from curated.installations"))
    assert mapped["dun-es"] == mapped["uk-point"] == 1 and mapped["dun-in"] == mapped["kru-in"] == 2
    assert "kru-es" not in mapped


def test_a_partial_build_keeps_the_unions_rows_of_the_parts_it_holds(built, tmp_path):
    """A part is a dataset's rows of one source file, loaded together (pvdoi/warehouse/datasets.py: the load replaces
    a dataset's rows part by part, each row it writes with that load's loaded_at). Kruitwagen gains a file: the
    union inserts that part's row and keeps the rows of the part it holds (the same rows, by DuckDB's rowid);
    the tables equal a full build's."""
    kru = "global_pv_inventory_sent2_spot_2021"
    rowids = "select feature_uid, rowid from prepared.int_installations_unioned where dataset_id = ? order by 1"
    before = query(built, rowids, [kru])
    change = f"""
        insert into raw_data.doi_pv_features select * replace ('kru-cv' as feature_uid, 'cv_polygons.geojson'
            as source_file, ST_Translate(geometry, 0.2, 0) as geometry, centroid_lon + 0.2 as centroid_lon,
            timestamp '2025-01-01 00:00:00' as loaded_at)
        from raw_data.doi_pv_features where feature_uid = 'kru-uk';
        update raw_data.datasets set features_written = features_written + 1 where dataset_id = '{kru}'"""
    incremental, _ = _incremental_equals_full(built, tmp_path, change, [kru])
    after = query(DbtRun(None, incremental, 0), rowids, [kru])
    assert [r for r in after if r[0] != "kru-cv"] == before and len(after) == len(before) + 1


def test_dbt_run_by_hand_after_a_var_changed_computes_every_row_of_the_union_again(built, tmp_path):
    """Without the changed datasets (dbt run by hand, say after an attribute's scale was edited) the union keeps no
    part: every row is computed again from the new vars, and the tables equal a full build's."""
    datasets = dbt_vars(DEFAULT_MANIFEST)["pv_datasets"]
    for attribute in (a for d in datasets for a in d["attributes"] if a["name"] == "landscape_area_m2"):
        attribute["scale"] = 1.0  # km² published, m² meant: now left as published
    incremental = _changed_copy(built, tmp_path, "incremental", "select 1")
    full = _changed_copy(built, tmp_path, "full", "select 1")
    run = run_dbt(["build", "--exclude", "resource_type:unit_test"], incremental, tmp_path / "incremental",
                  vars={"pv_datasets": datasets})
    assert run.result.success, failed_nodes(run)
    run = run_dbt(["build", "--full-refresh"], full, tmp_path / "full", vars={"pv_datasets": datasets})
    assert run.result.success, failed_nodes(run)
    assert_same_tables(dbt_tables(incremental), dbt_tables(full))


def test_a_dataset_with_a_model_of_its_own_has_every_row_replaced_in_the_union(built, tmp_path):
    """A dataset-specific model's SQL may read its dataset's other rows (here a count over them), so the union keeps
    none of its parts: a file added to it changes every row, as in a full build."""
    import shutil

    kru = "global_pv_inventory_sent2_spot_2021"
    project = tmp_path / "project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "models" / "staging" / "stg_counted__installations.sql").write_text(
        "with staged as ({{ stg_installations([pv_dataset_of_model()]) }})\n"
        "select * replace (cast(count(*) over () as double) as source_area_m2) from staged\n")
    datasets = [{**d, "dbt_model": "stg_counted__installations"} if d["id"] == kru else d
                for d in dbt_vars(DEFAULT_MANIFEST)["pv_datasets"]]
    own = {"pv_datasets": datasets}
    base = _changed_copy(built, tmp_path, "base", "select 1")
    assert run_dbt(["build", "--full-refresh"], base, tmp_path / "base", vars=own, project=project).result.success
    change = f"""
        insert into raw_data.doi_pv_features select * replace ('kru-cv' as feature_uid, 'cv_polygons.geojson'
            as source_file, timestamp '2025-01-01 00:00:00' as loaded_at)
        from raw_data.doi_pv_features where feature_uid = 'kru-uk';
        update raw_data.datasets set features_written = features_written + 1 where dataset_id = '{kru}'"""
    built_own = DbtRun(None, base, 0)
    incremental = _changed_copy(built_own, tmp_path, "incremental", change)
    full = _changed_copy(built_own, tmp_path, "full", change)
    run = run_dbt(["build", "--select", "stg_counted__installations+", CATALOG_TESTS], incremental,
                  tmp_path / "incremental", vars={**own, "changed_datasets": [kru]}, project=project)
    assert run.result.success, failed_nodes(run)
    assert run_dbt(["build", "--full-refresh"], full, tmp_path / "full", vars=own, project=project).result.success
    assert query(DbtRun(None, incremental, 0), "select distinct source_area_m2 from prepared.int_installations_unioned "
                                               "where dataset_id = ?", [kru]) == [(3.0,)]
    assert_same_tables(dbt_tables(incremental), dbt_tables(full))


def test_a_dataset_whose_rows_left_leaves_the_incremental_models(built, tmp_path):
    """Dunnett's rows leave the warehouse: its rows and matches leave every table, Kruitwagen's Spanish polygon is
    mapped by one dataset again, and the tables equal a full build's."""
    dun = "global_harmonized_large_solar_farms_2020"
    change = (f"delete from raw_data.doi_pv_features where dataset_id = '{dun}'; "
              f"delete from raw_data.datasets where dataset_id = '{dun}'")
    incremental, _ = _incremental_equals_full(built, tmp_path, change, [dun])
    _assert_gone(DbtRun(None, incremental, 0), dun)


def test_a_dataset_taken_out_of_the_manifest_leaves_the_incremental_models(built, tmp_path):
    """A dataset no longer in the manifest var leaves every incremental table even when the build names no changed
    dataset (its raw rows stay). Its entry is taken by a dataset with no rows that declares the same attributes:
    without them the union's columns change, which an incremental build refuses (on_schema_change fail); pvdoi
    builds whole when the vars change."""
    dun = "global_harmonized_large_solar_farms_2020"
    datasets = [{**d, "id": "a_dataset_with_no_rows"} if d["id"] == dun else d
                for d in dbt_vars(DEFAULT_MANIFEST)["pv_datasets"]]
    incremental, _ = _incremental_equals_full(built, tmp_path, "select 1", [], vars={"pv_datasets": datasets})
    _assert_gone(DbtRun(None, incremental, 0), dun)


def _assert_gone(run: DbtRun, dataset_id: str) -> None:
    for table in ("prepared.int_installations_unioned", "prepared.int_installations_divisions_assigned",
                  "curated.installations"):
        assert query(run, f"select count(*) from {table} where dataset_id = ?", [dataset_id]) == [(0,)], table
    assert query(run, "select count(*) from prepared.int_installations_cross_dataset_matched "
                      "where ? in (dataset_id_a, dataset_id_b)", [dataset_id]) == [(0,)]
    assert query(run, "select count(*) from curated.installation_shape_metrics where installation_key in "
                      "(select installation_key from prepared.int_installations_unioned)") == \
        query(run, "select count(*) from curated.installation_shape_metrics")
    assert query(run, "select mapped_by_n_datasets from curated.installations where feature_uid = 'kru-es'") == [(1,)]


def test_a_partial_build_tests_the_changed_datasets_rows_and_every_row_where_it_must(built, tmp_path):
    """In a partial build (pvdoi.transform.run_build), a test whose `where` names __changed_datasets__ reads those
    datasets' rows: a broken row of an unchanged dataset passes it there and fails it in a full test run; `unique`
    reads every row; the unit tests are left out."""
    from pvdoi.transform import run_build

    broken = ("update prepared.int_installations_unioned set area_m2 = null where feature_uid = 'usa-1'; "
              "insert into prepared.int_installations_unioned "
              "select * from prepared.int_installations_unioned where feature_uid = 'usa-rect'")
    database = _changed_copy(built, tmp_path, "broken", broken)
    build = run_build(str(database), str(tmp_path / "partial"), dbt_vars=dbt_vars(DEFAULT_MANIFEST),
                      select=["stg_doi__installations+", CATALOG_TESTS],
                      changed=["global_pv_inventory_sent2_spot_2021"])
    statuses = {n.name: n.status for n in build.nodes}
    assert statuses["not_null_int_installations_unioned_area_m2"] == "pass"
    assert statuses["unique_int_installations_unioned_installation_key"] == "fail"
    assert "unit_test" not in {n.kind for n in build.nodes} and "test" in {n.kind for n in build.nodes}
    run = run_dbt(["test", "--select", "int_installations_unioned"], database, tmp_path / "full")
    assert {"not_null_int_installations_unioned_area_m2",
            "unique_int_installations_unioned_installation_key"} <= set(failed_nodes(run))


def test_a_partial_build_inserts_the_rows_in_place_without_a_temporary_copy(built, tmp_path):
    """The incremental `append` models of a partial build insert their SQL's rows straight into their tables
    (macros/append_in_place.sql), not through dbt-duckdb's temporary table; the tables still equal a full build's
    (the equality tests above)."""
    kru = "global_pv_inventory_sent2_spot_2021"
    database = _changed_copy(built, tmp_path, "partial", "update raw_data.doi_pv_features set geometry = ST_Translate("
                                                          "geometry, 0.5, 0.2) where feature_uid = 'kru-uk'; "
                             + LOADED_AGAIN.format(dataset=kru, file=DATASETS[kru][2]))
    run = run_dbt(["build", "--select", "stg_doi__installations+"], database, tmp_path / "partial",
                  vars={"changed_datasets": [kru]})
    assert run.result.success, failed_nodes(run)
    for model in ("prepared/int_installations_unioned", "prepared/int_installations_divisions_assigned",
                  "curated/installations", "curated/installation_shape_metrics"):
        sql = (tmp_path / "partial/target/run/pv_warehouse/models" / f"{model}.sql").read_text()
        assert "insert into" in sql and " by name (" in sql and "__dbt_tmp" not in sql, model


def test_a_partial_build_of_a_table_whose_columns_differ_from_its_model_fails_naming_them(built, tmp_path):
    """on_schema_change 'fail' holds for the in-place insert: a table with a column its model does not make is not
    filled with nulls; the model fails, names the columns and says to build it whole, and nothing is inserted."""
    database = _changed_copy(built, tmp_path, "drifted",
                             "alter table prepared.int_installations_unioned add column legacy_flag boolean")
    before = query(DbtRun(None, database, 0), "select count(*) from prepared.int_installations_unioned")
    run = run_dbt(["build", "--select", "int_installations_unioned"], database, tmp_path / "drifted",
                  vars={"changed_datasets": ["global_pv_inventory_sent2_spot_2021"]})
    [result] = [r for r in run.result.result if r.node.name == "int_installations_unioned"]
    assert str(result.status) == "error"
    assert "legacy_flag" in result.message and "--full-refresh" in result.message
    assert query(DbtRun(None, database, 0), "select count(*) from prepared.int_installations_unioned") == before


def test_an_invalid_geometry_fails_the_union_whether_or_not_its_model_recorded_the_verdict(tmp_path, dbt_work_dir):
    """A bowtie (self-intersecting) fails the union's geometry_is_valid test, which reads the ST_IsValid verdict the
    staging model recorded in is_geometry_valid; where a model recorded none (null), the test asks GEOS itself."""
    bowtie = shapely.Polygon([(30.0, 40.0), (30.001, 40.001), (30.001, 40.0), (30.0, 40.001)])
    database = tmp_path / "bowtie.duckdb"
    features = [*realistic_features(), Feature("usa-bowtie", "usa_cali_usgs_pv_2016", bowtie, area_m2=12345.0)]
    write_warehouse(database, features)
    run = run_dbt(["build", "--exclude", "resource_type:unit_test"], database, tmp_path / "build")
    union_test = [n for n in failed_nodes(run) if n.startswith("geometry_is_valid_int_installations_unioned")]
    assert len(union_test) == 1, failed_nodes(run)
    assert "installations" in {r.node.name for r in run.result.result if str(r.status) == "skipped"}
    con = connect(str(database))
    try:
        con.execute("update prepared.int_installations_unioned set is_geometry_valid = null")
    finally:
        con.close()
    run = run_dbt(["test", "--select", union_test[0]], database, tmp_path / "test")
    assert failed_nodes(run) == union_test
