"""The whole per-dataset dataflow against the local repository server: formats, filters, outputs, cache."""

from __future__ import annotations

import json
import os
import stat

import geopandas as gpd
import pyarrow.parquet as pq
import pandas as pd
import pytest

from flows.dataflow import build_driver, run_dataset
from flows.fanout import run_doi_pipeline
from pvdoi.records import SourceFile
from pvdoi.settings import get_settings
from tests.conftest import write_manifest

ALL = ["usa_cali_usgs_pv_2016", "uk_crowdsourced_pv_2020", "global_pv_inventory_sent2_spot_2021",
       "global_harmonized_large_solar_farms_2020", "chn_med_res_pv_2024", "ind_pv_solar_farms_2022"]
REQUIRED = ["feature_uid", "dataset_id", "doi", "source_file", "source_file_checksum", "source_feature_index",
            "unified_id", "geometry", "geometry_type", "area_m2", "centroid_lon", "centroid_lat", "source_area_m2",
            "capacity_mw", "install_date", "source_attributes", "ingested_at"]


def _downloads(repo) -> int:
    return sum(path.endswith("/content") or "/ndownloader/" in path or "/github-raw/" in path
               for _, path in list(repo.requests))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


_umask = os.umask(0o022)
os.umask(_umask)
_readable = 0o666 & ~_umask


def test_all_six_datasets_become_verified_geoparquet(repo, workdir):
    results = run_doi_pipeline()
    assert [r.status for r in results.values()] == ["completed"] * 6, results
    for dataset_id, report in results.items():
        c = report.counts
        assert c["read"] == c["written"] + c["dropped_empty"] + c["dropped_unrepairable"] + c["dropped_duplicate"]
        path = report.geoparquet.path
        assert path == str(workdir / "data" / "geoparquet" / f"{dataset_id}.parquet")
        assert _mode(path) == _readable, "outputs are for a team: mode as open() gives, not mkstemp's 0600"
        geo = json.loads(pq.read_schema(path).metadata[b"geo"])
        assert geo["version"] == "1.1.0" and "covering" in geo["columns"]["geometry"]
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
        frame = gpd.read_parquet(path)
        assert frame.crs.to_epsg() == 4326 and list(frame.columns[:len(REQUIRED)]) == REQUIRED
        assert len(frame) == c["written"] and frame["feature_uid"].is_unique
        assert frame.geometry.is_valid.all() and not frame.geometry.is_empty.any() and not frame.geometry.has_z.any()
        assert frame["area_m2"][frame.geom_type.str.contains("Polygon")].gt(0).all()
        assert set(frame["dataset_id"]) == {dataset_id}
        assert all(f["checksum"] for f in report.files)
        json.loads(frame["source_attributes"].iloc[0])

    uk = results["uk_crowdsourced_pv_2020"].counts
    assert uk["dropped_empty"] >= 2 and uk["dropped_duplicate"] >= 1 and uk["repaired_invalid"] >= 1
    assert uk["repaired_text"] >= 1
    uk_frame = gpd.read_parquet(results["uk_crowdsourced_pv_2020"].geoparquet.path)
    assert {"Point", "Polygon", "MultiPolygon"} <= set(uk_frame["geometry_type"])
    assert uk_frame["source_attributes"].str.contains("\ufffd").any()
    assert uk_frame["capacity_mw"].notna().any()

    india = results["ind_pv_solar_farms_2022"]
    assert india.counts["read"] == 1363 and india.counts["repaired_invalid"] == 78
    assert india.files[0]["checksum"].startswith("gitsha1:")

    dunnett = gpd.read_parquet(results["global_harmonized_large_solar_farms_2020"].geoparquet.path)
    assert {os.path.basename(s) for s in dunnett["source_file"]} == {"solar_WGS84.gpkg"}
    assert (dunnett["source_area_m2"] > 1000).all()  # km² scaled to m²

    kruitwagen = gpd.read_parquet(results["global_pv_inventory_sent2_spot_2021"].geoparquet.path)
    assert set(kruitwagen["source_file"]) == {"predicted_polygons.geojson", "trn_polygons.geojson",
                                              "cv_polygons.geojson", "test_polygons.geojson"}
    assert kruitwagen["install_date"].str.startswith("<").any()

    china = gpd.read_parquet(results["chn_med_res_pv_2024"].geoparquet.path)
    assert set(china["source_file"]) == {"PV_Test_2015.shp", "PV_Test_2020.shp", "PV_Train_2020.shp"}
    keys = {name: set(json.loads(china.loc[china["source_file"] == name, "source_attributes"].iloc[0]))
            for name in set(china["source_file"])}
    assert keys["PV_Test_2015.shp"] != keys["PV_Train_2020.shp"]  # schemas kept apart, not NaN-unioned

    store = workdir / "data" / "downloads"
    downloads = [p for p in store.rglob("*") if p.is_file() and p.relative_to(store).parts[0] != "tmp"]
    assert downloads and {_mode(p) for p in downloads} == {_readable}

    bradbury = results["usa_cali_usgs_pv_2016"]
    assert [f["name"] for f in bradbury.files] == ["SolarArrayPolygons.geojson"]


def test_unchanged_rerun_costs_nothing_and_one_changed_dataset_reruns_alone(repo, workdir):
    first = run_doi_pipeline()
    assert all(r.status == "completed" for r in first.values())
    downloads = _downloads(repo)
    second = run_doi_pipeline()
    assert _downloads(repo) == downloads  # no byte downloaded again
    for report in second.values():
        assert report.cache.misses == (), report.cache
        assert {"raw_layers", "standardised_features", "geoparquet_file"} <= set(report.cache.hits)
        assert report.downloaded_bytes == 0

    india = next(p for p in (repo.files_dir / "ind_pv_solar_farms_2022").iterdir() if p.suffix == ".geojson")
    doc = json.loads(india.read_bytes())
    doc["features"] = doc["features"][:100]
    repo.replace_file("ind_pv_solar_farms_2022", india.name, json.dumps(doc).encode())
    third = run_doi_pipeline()
    assert list(third["ind_pv_solar_farms_2022"].cache.misses) == ["dataset_report", "geoparquet_file", "raw_layers",
                                                                   "standardised_features"]
    assert third["ind_pv_solar_farms_2022"].counts["read"] == 100
    for dataset_id in ALL[:-1]:
        assert third[dataset_id].cache.misses == (), dataset_id


def test_cached_geodataframe_round_trips_geometry_and_crs(repo, workdir):
    settings = get_settings()
    inputs = {"manifest_path": settings.manifest_path, "dataset_id": "chn_med_res_pv_2024",
              "data_dir": str(workdir / "data"), "max_mb": 100.0, "force_download": False, "settings": settings}
    computed = build_driver(cache_path=str(workdir / "cache")).execute(["standardised_features"], inputs=inputs)
    dr = build_driver(cache_path=str(workdir / "cache"))
    cached = dr.execute(["standardised_features"], inputs=inputs)
    assert "standardised_features" in {n for n, ev in dr.cache.logs(dr.cache.last_run_id, level="debug").items()
                                       if any("GET_RESULT" in str(e.event_type) for e in ev)}
    a, b = computed["standardised_features"].frame, cached["standardised_features"].frame
    assert type(b) is gpd.GeoDataFrame and b.crs == a.crs and b.crs.to_epsg() == 4326
    assert b.geometry.geom_equals_exact(a.geometry, tolerance=0).all()


def test_deleted_output_is_rewritten_from_the_cache(repo, workdir):
    report = run_dataset("ind_pv_solar_farms_2022")
    os.unlink(report.geoparquet.path)
    again = run_dataset("ind_pv_solar_farms_2022")
    assert os.path.exists(again.geoparquet.path)
    assert "standardised_features" in again.cache.hits
    with open(again.geoparquet.path, "ab") as fh:  # tampered with: rewritten too
        fh.write(b"junk")
    third = run_dataset("ind_pv_solar_farms_2022")
    assert os.path.getsize(third.geoparquet.path) == third.geoparquet.bytes
    gpd.read_parquet(third.geoparquet.path)


def test_no_cache_runs_everything(repo, workdir):
    report = run_dataset("ind_pv_solar_farms_2022", enable_caching=False)
    assert report.counts["written"] == 1363 and not (workdir / "cache").exists()


def test_filters_that_match_nothing_list_what_was_there(repo, workdir):
    manifest = write_manifest(workdir / "m.json",
                              lambda raw: raw["datasets"][0]["files"].update(include=[r"^nothing\.here$"]))
    results = run_doi_pipeline(["usa_cali_usgs_pv_2016", "ind_pv_solar_farms_2022"], manifest_path=manifest)
    failed = results["usa_cali_usgs_pv_2016"]
    assert failed.status == "failed" and failed.error_type == "NoMatchingFilesError"
    assert "SolarArrayPolygons.geojson" in failed.error and "nothing" in failed.error
    assert results["ind_pv_solar_farms_2022"].status == "completed"


@pytest.mark.parametrize("layer", ["solar_WGS84", None])
def test_geopackage_layer_choice(repo, workdir, layer):
    manifest = write_manifest(workdir / "m.json", lambda raw: raw["datasets"][3]["read"].update(layer=layer))
    report = run_dataset("global_harmonized_large_solar_farms_2020", manifest_path=manifest)
    assert report.counts["written"] > 0
    bad = write_manifest(workdir / "bad.json", lambda raw: raw["datasets"][3]["read"].update(layer="wind"))
    from pvdoi.errors import ReadError
    with pytest.raises(ReadError, match=r"file '.*solar_WGS84.gpkg'.*layers present: \['solar_WGS84'\]"):
        run_dataset("global_harmonized_large_solar_farms_2020", manifest_path=bad, enable_caching=False)


def _content(path: str):
    frame = gpd.read_parquet(path).drop(columns=["ingested_at"])
    frame["geometry"] = frame.geometry.to_wkb()
    return frame.sort_values("feature_uid").reset_index(drop=True)


def test_fast_paths_change_nothing(repo, tmp_path):
    """Processes + cache + lazily decoded frames give the same rows as one plain process without cache."""
    fast = run_doi_pipeline(data_dir=str(tmp_path / "fast"), cache_path=str(tmp_path / "cache"), max_workers=2)
    again = run_doi_pipeline(data_dir=str(tmp_path / "fast"), cache_path=str(tmp_path / "cache"), max_workers=2)
    plain = run_doi_pipeline(data_dir=str(tmp_path / "plain"), enable_caching=False, max_workers=1)
    for dataset_id in ALL:
        a, b = _content(fast[dataset_id].geoparquet.path), _content(plain[dataset_id].geoparquet.path)
        pd.testing.assert_frame_equal(a, b)
        assert again[dataset_id].geoparquet.sha256 == fast[dataset_id].geoparquet.sha256


def test_attribute_json_matches_pandas_json(repo, workdir):
    """The DuckDB JSON writer says what pandas' would: same keys, values and nulls, row by row."""
    from pvdoi.features.reader import RawLayer, read_layer
    from pvdoi.features.attributes import json_rows
    from pvdoi.manifest import load_manifest

    spec = load_manifest(get_settings().manifest_path).get("uk_crowdsourced_pv_2020")
    path = str(repo.files_dir / "uk_crowdsourced_pv_2020" / "ukpvgeo_geometries.geojson")
    frame = read_layer(RawLayer(SourceFile("ukpvgeo_geometries.geojson", path, path, "md5:x")), spec)
    attrs = frame.drop(columns="geometry")
    ours = [json.loads(t) for t in json_rows(attrs)[0]]
    reference = [json.loads(t) for t in attrs.to_json(orient="records", lines=True, date_format="iso",
                                                       force_ascii=False).splitlines()]
    assert len(ours) == len(reference) == len(attrs)
    for mine, theirs in zip(ours, reference):
        assert mine.keys() == theirs.keys()
        for key in mine:
            if isinstance(theirs[key], float):
                assert mine[key] == pytest.approx(theirs[key])
            elif key == "repd_operational_date" and theirs[key]:
                assert str(mine[key])[:10] == theirs[key][:10]
            else:
                assert mine[key] == theirs[key], key
