"""Third-party reference data slightly off: an Overture area whose longitude reaches 180.00000000000006 (float
noise at the antimeridian) is clipped to the world in staging, an area whose ring is not closed is closed on load,
and the curated models still build."""

from __future__ import annotations

import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from pvdoi.settings import Settings
from tests.overture_release import DEAD_ENDPOINT, fetch_and_load, write_overture_release
from tests.test_dbt_project import (
    DivisionArea,
    division_areas,
    failed_nodes,
    query,
    realistic_features,
    run_dbt,
    write_warehouse,
)

NOISY = DivisionArea("area-noisy", "region", "IN", "Noisy east", shapely.box(90.0, 6.0, 180.00000000000006, 35.5),
                     "IN-XX")


def test_an_area_past_the_antimeridian_by_float_noise_still_builds_the_curated_models(tmp_path):
    database = tmp_path / "eo_pv_data.duckdb"
    write_warehouse(database, realistic_features(), with_overture=False)
    base_url = write_overture_release(tmp_path / "overture", division_areas() + [NOISY])
    summary = fetch_and_load(str(database), base_url=base_url, s3_endpoint=DEAD_ENDPOINT, enable_caching=False,
                             settings=Settings())
    assert summary["status"] == "loaded"
    assert query_raw(database) > 180  # the noise reached the warehouse as published
    run = run_dbt(["build"], database, tmp_path / "dbt")
    assert run.result.success, failed_nodes(run)
    [(xmax, n)] = query(run, "select max(ST_XMax(geometry)), count(*) from staging.stg_overture__division_areas "
                             "where division_area_id = 'area-noisy'")
    assert xmax == 180 and n == 1
    assert query(run, "select count(*) from curated.installations")[0][0] == len(realistic_features())


def test_an_area_whose_ring_is_not_closed_is_closed_and_still_assigns_its_installations(tmp_path, caplog):
    database = tmp_path / "eo_pv_data.duckdb"
    write_warehouse(database, realistic_features(), with_overture=False)
    base_url = write_overture_release(tmp_path / "overture", division_areas())
    karnataka = next(a for a in division_areas() if a.region == "IN-KA")
    _unclose_ring(tmp_path / "overture", karnataka.id)
    assert shapely.from_wkb(_served_wkb(tmp_path / "overture", karnataka.id), on_invalid="ignore") is None  # GEOS
    summary = fetch_and_load(str(database), base_url=base_url, s3_endpoint=DEAD_ENDPOINT, enable_caching=False,
                             settings=Settings())
    assert summary["status"] == "loaded"
    assert f"1 division areas had a ring that was not closed, closed on load: {karnataka.id}" in caplog.text
    run = run_dbt(["build"], database, tmp_path / "dbt")
    assert run.result.success, failed_nodes(run)
    [(valid, area)] = query(run, "select ST_IsValid(geometry), ST_Area(geometry) from "
                                 f"staging.stg_overture__division_areas where division_area_id = '{karnataka.id}'")
    assert valid and area == pytest.approx(karnataka.geometry.area)
    assert query(run, "select count(*) from curated.installations")[0][0] == len(realistic_features())
    assert query(run, "select region_code, region_assignment from curated.installations "
                      "where feature_uid = 'dun-in'") == [("IN-KA", "within_land")]


def _unclose_ring(directory: Path, area_id: str) -> None:
    """The area's polygon served as WKB whose ring stops one point short of its start (not closed)."""
    ring = list(shapely.get_exterior_ring(shapely.from_wkb(_served_wkb(directory, area_id))).coords)[:-1]
    wkb = struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", *p) for p in ring)
    for path in directory.rglob("*.parquet"):
        table = pq.read_table(path)
        ids = table.column("id").to_pylist()
        if area_id in ids:
            geometry = table.column("geometry").to_pylist()
            geometry[ids.index(area_id)] = wkb
            table = table.set_column(table.schema.get_field_index("geometry"), "geometry",
                                     pa.array(geometry, pa.binary()))
            pq.write_table(table, path, row_group_size=2, compression="zstd")


def _served_wkb(directory: Path, area_id: str) -> bytes:
    for path in directory.rglob("*.parquet"):
        table = pq.read_table(path, columns=["id", "geometry"]).to_pylist()
        for row in table:
            if row["id"] == area_id:
                return row["geometry"]
    raise AssertionError(f"{area_id} is not served")


def query_raw(database) -> float:
    from pvdoi.duckdb_ext import connect

    con = connect(str(database), read_only=True)
    try:
        return con.execute("select max(ST_XMax(geometry)) from raw_data.overture_division_areas").fetchone()[0]
    finally:
        con.close()
