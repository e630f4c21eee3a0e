"""Third-party reference data slightly off: an Overture area whose longitude reaches 180.00000000000006 (float
noise at the antimeridian) is clipped to the world in staging, and the curated models still build."""

from __future__ import annotations

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


def query_raw(database) -> float:
    from pvdoi.duckdb_ext import connect

    con = connect(str(database), read_only=True)
    try:
        return con.execute("select max(ST_XMax(geometry)) from raw_data.overture_division_areas").fetchone()[0]
    finally:
        con.close()
