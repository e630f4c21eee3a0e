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
    (lambda r: r["datasets"][5]["attributes"][0].update(name="geometry"),
     r"entry 5 .*field 'attributes.0.name'.*'geometry' is a column every dataset has"),
    (lambda r: r["datasets"][5]["attributes"][0].update(name="State; drop table x"), r"field 'attributes.0.name'"),
    (lambda r: r["datasets"][5]["attributes"][0].update(type="date"), r"field 'attributes.0.type'"),
    (lambda r: r["datasets"][5]["attributes"][0].update(file_regex="x"), r"needs exactly one of json_key, file_regex"),
    (lambda r: r["datasets"][5]["attributes"][0].pop("json_key"), r"needs exactly one of .* \(has none\)"),
    (lambda r: r["datasets"][4]["attributes"][1].update(group=3), r"group 3 but .* has 2"),
    (lambda r: r["datasets"][4]["attributes"][1].update(file_regex="(unclosed"), r"bad regular expression"),
    (lambda r: r["datasets"][5]["attributes"][0].update(scale=2.0), r"scale applies to double, bigint, integer"),
    (lambda r: r["datasets"][3]["attributes"][1].update(transform="upper"), r"transform applies to text, not bigint"),
    (lambda r: r["datasets"][3]["attributes"][1].update(file_prefixes={"a": "b"}, json_key=None),
     r"file_prefixes give text, not bigint"),
    (lambda r: r["datasets"][5]["attributes"].append(r["datasets"][5]["attributes"][0]),
     r"field 'attributes'.*attribute names repeat: state_name"),
    (lambda r: r["datasets"][5]["attributes"].append({"name": "label_set", "type": "integer", "json_key": "x"}),
     r"attribute 'label_set' is integer in 'ind_pv_solar_farms_2022' but text in "),
    (lambda r: r["datasets"][5].update(dbt_model="stg x"), r"field 'dbt_model'"),
    (lambda r: r["datasets"][5].update(geometry_types=["Polygon", "Circle"]), r"field 'geometry_types.1'"),
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


def test_the_declared_attributes_are_what_dbt_reads_and_no_part_of_what_ingestion_reads():
    from pvdoi.transform import dbt_vars

    manifest = load_manifest(DEFAULT_MANIFEST)
    china = manifest.get("chn_med_res_pv_2024")
    [year] = [a for a in china.attributes if a.name == "label_year"]
    assert year.dbt_var() == {"name": "label_year", "type": "integer", "file_regex": r"(?i)PV_(Train|Test)_(\d{4})",
                              "group": 2}  # no description; group only with a file_regex
    datasets = dbt_vars(DEFAULT_MANIFEST)["pv_datasets"]
    assert [d["id"] for d in datasets] == manifest.ids
    assert datasets[2]["attributes"][0]["accepted_values"] == ["A", "B", "C", "D"]
    bare = china.model_copy(update={"attributes": [], "dbt_model": None, "geometry_types": None})
    assert china.ingest_json() == bare.ingest_json() and "label_year" not in china.ingest_json()
    assert not {"attributes", "dbt_model", "geometry_types"} & json.loads(china.ingest_json()).keys()


def test_a_process_without_the_manifests_file_reads_a_copy_of_its_text_named_by_its_sha256(tmp_path):
    """The file at the path with the same bytes is read where it is; missing or with other bytes, a copy of the text
    under the data folder (written once); a copy that cannot be written names the dataset and the file."""
    import hashlib

    from pvdoi.errors import StorageError
    from pvdoi.manifest_text import read_manifest_text, readable_manifest

    path = tmp_path / "flow" / "manifest.json"
    path.parent.mkdir()
    path.write_bytes(DEFAULT_MANIFEST.read_bytes().replace(b"\n", b"\r\n"))  # line ends kept as they are
    text = read_manifest_text(path)
    copy = tmp_path / "data" / "manifests" / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.json"
    assert readable_manifest(str(path), text, str(tmp_path / "data"), dataset_id="d") == str(path)
    assert not copy.exists()
    path.write_text('{"datasets": []}')  # other bytes at the path: the run's text, not these
    assert readable_manifest(str(path), text, str(tmp_path / "data"), dataset_id="d") == str(copy)
    assert copy.read_bytes() == DEFAULT_MANIFEST.read_bytes().replace(b"\n", b"\r\n")
    path.unlink()
    assert readable_manifest(str(path), text, str(tmp_path / "data"), dataset_id="d") == str(copy)
    assert load_manifest(copy).ids == load_manifest(DEFAULT_MANIFEST).ids
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "manifests").write_text("a file where the folder goes")
    with pytest.raises(StorageError, match=r"\[dataset 'd', file 'manifest.json'\] the manifest .*flow/manifest.json "
                                           r"is not on this machine, and its copy .* cannot be written to .*full/"):
        readable_manifest(str(path), text, str(tmp_path / "full"), dataset_id="d")
