"""dbt's country and region assignment on the Overture division areas the dataflow fetched and the load loaded.

The areas come from a local copy of the release (``tests/overture_release.py``: the same Overture-schema files
the S3 tests serve); the installations are test_dbt_project's realistic features plus a few placed to exercise
the rules: offshore in territorial waters, just off a coast, mid-ocean, and in a region polygon that the country
polygon misses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pvdoi.settings import Settings
from tests.overture_release import (
    DEAD_ENDPOINT,
    EXTRA_FEATURES,
    S3_ONLY_AREAS,
    fetch_and_load,
    write_overture_release,
)
from tests.test_dbt_project import division_areas, failed_nodes, query, realistic_features, run_dbt, write_warehouse


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Path:
    """A warehouse with the installations and the division areas around them, loaded from a local release copy."""
    work = tmp_path_factory.mktemp("overture_dbt")
    database = work / "eo_pv_data.duckdb"
    write_warehouse(database, realistic_features() + EXTRA_FEATURES, with_overture=False)
    base_url = write_overture_release(work / "overture", division_areas() + S3_ONLY_AREAS)
    summary = fetch_and_load(str(database), base_url=base_url, s3_endpoint=DEAD_ENDPOINT, enable_caching=False,
                             settings=Settings())
    assert summary["status"] == "loaded" and summary["rows"] == len(division_areas())
    return database


@pytest.fixture(scope="module")
def dbt_overture_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dbt_overture")


@pytest.fixture(scope="module")
def assigned(loaded, dbt_overture_dir):
    """dbt build on the warehouse the Overture run loaded."""
    run = run_dbt(["build"], loaded, dbt_overture_dir)
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
