"""The manifest model: the default manifest is valid; every kind of bad entry is named precisely."""

from __future__ import annotations

import copy
import json

import pytest

from pvdoi import DEFAULT_MANIFEST
from pvdoi.errors import ManifestError
from pvdoi.manifest import NameFilter, load_manifest, parse_manifest

RAW = json.loads(DEFAULT_MANIFEST.read_text())


def test_default_manifest_holds_the_six_datasets():
    manifest = load_manifest(DEFAULT_MANIFEST)
    assert manifest.ids == [
        "usa_cali_usgs_pv_2016", "uk_crowdsourced_pv_2020", "global_pv_inventory_sent2_spot_2021",
        "global_harmonized_large_solar_farms_2020", "chn_med_res_pv_2024", "ind_pv_solar_farms_2022",
    ]
    assert manifest.get("uk_crowdsourced_pv_2020").repository.record_id == 4059881
    assert manifest.get("usa_cali_usgs_pv_2016").repository.version == 4
    assert sum(d.expected_count for d in manifest.datasets) == 443_917


def _broken(mutate) -> dict:
    raw = copy.deepcopy(RAW)
    mutate(raw)
    return raw


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda r: r["datasets"][1].update(bogus=1), r"entry 1 \('uk_crowdsourced_pv_2020'\), field 'bogus': Extra inputs"),
    (lambda r: r["datasets"][0].pop("doi"), r"entry 0 \('usa_cali_usgs_pv_2016'\), field 'doi': Field required"),
    (lambda r: r["datasets"][2]["files"].update(include=["(unclosed"]),
     r"entry 2 .*field 'files.include'.*bad regular expression '\(unclosed'"),
    (lambda r: r["datasets"][3].update(id="x'; DROP TABLE raw_data.datasets; --"), r"field 'id'.*not a safe identifier"),
    (lambda r: r["datasets"][3].update(id="../../etc"), r"field 'id'.*not a safe identifier"),
    (lambda r: r["datasets"][4].update(id=r["datasets"][5]["id"]), r"duplicate dataset id 'ind_pv_solar_farms_2022'"),
    (lambda r: r["datasets"][5]["repository"].update(type="dropbox"), r"entry 5 .*field 'repository'"),
    (lambda r: r["datasets"][0].update(expected_crs="EPSG:99999999"), r"field 'expected_crs'.*unknown CRS"),
    (lambda r: r["datasets"][0].update(expected_count=-3), r"field 'expected_count'"),
])
def test_invalid_entries_are_named(mutate, match):
    with pytest.raises(ManifestError, match=match):
        parse_manifest(_broken(mutate))


def test_malformed_json_and_missing_file(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"datasets": [')
    with pytest.raises(ManifestError, match=r"m.json' is not valid JSON"):
        load_manifest(bad)
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "missing.json")


def test_unknown_dataset_lists_the_allowed_ids():
    with pytest.raises(ManifestError, match=r"unknown dataset 'nope'; the manifest has: usa_cali_usgs_pv_2016, "):
        load_manifest(DEFAULT_MANIFEST).select(["nope"])


def test_filters_match_names_not_paths_and_includes_are_any_of():
    f = NameFilter(include=[r"\.gpkg$", r"\.shp$"], exclude=["(?i)wind"])
    assert f.matches("global_wind_solar_2020/solar_WGS84.gpkg")  # 'wind' in the folder name does not exclude
    assert f.matches("solar.shp")  # any one include is enough
    assert not f.matches("wind_WGS84.gpkg")
    assert not f.matches("solar.csv")
