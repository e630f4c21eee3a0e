"""Standardisation nodes called directly on tiny frames: CRS, repair, drops, area, columns, counts."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry.polygon import orient

from hamilton_nodes import read
from pvdoi.features.reader import RawLayer
from pvdoi.features.geometry import geodesic_area_m2
from hamilton_nodes.standardise import standardised_features
from pvdoi.errors import SchemaError
from pvdoi.manifest import DatasetSpec
from pvdoi.records import SourceFile

GEOD = Geod(ellps="WGS84")


def _spec(**kw) -> DatasetSpec:
    base = {"id": "toy", "title": "Toy", "doi": "10.1/x", "license": "CC0-1.0",
            "repository": {"type": "url", "urls": ["http://x/toy.geojson"]},
            "columns": {"unified_id": {"from": ["pid"]}, "capacity_mw": {"from": ["kw", "mw"], "scale": 1.0}}}
    base.update(kw)
    return DatasetSpec.model_validate(base)


def _layer(frame: gpd.GeoDataFrame, name: str = "toy.geojson") -> RawLayer:
    return RawLayer(SourceFile(name, f"/x/{name}", name, "md5:abc"), frame)


def test_geodesic_area_within_0_1_percent_at_several_latitudes():
    rng = np.random.default_rng(1)
    for lat in (-33.9, 0.0, 36.7, 52.5, 64.0):
        for size in (1e-4, 5e-3, 5e-2):  # ~10 m to ~5 km
            poly = shapely.Polygon([(10 + rng.uniform(0, size), lat + rng.uniform(0, size)) for _ in range(3)] +
                                   [(10 + size, lat + size), (10, lat + size)]).convex_hull
            expected = abs(GEOD.geometry_area_perimeter(poly)[0])
            got = geodesic_area_m2(np.array([poly], dtype=object))[0]
            assert got == pytest.approx(expected, rel=1e-3), (lat, size)


def test_real_india_sample_area_matches_geodesic(india_sample):
    frame = gpd.read_file(india_sample).to_crs(4326)
    geoms = shapely.make_valid(np.asarray(frame.geometry.array, dtype=object))
    ours = geodesic_area_m2(geoms)
    # pyproj sums signed ring areas; orient every part counter-clockwise so parts add up
    expected = np.array([sum(GEOD.geometry_area_perimeter(orient(p, 1.0))[0] for p in shapely.get_parts(g)
                             if p.geom_type == "Polygon") for g in geoms])
    assert np.allclose(ours, expected, rtol=1e-3)
    assert (ours[:50] > 0).all()


def test_standardise_counts_repairs_and_columns():
    bowtie = shapely.Polygon([(0, 0), (1e-3, 1e-3), (1e-3, 0), (0, 1e-3)])
    square = shapely.box(5, 50, 5.001, 50.001)
    frame = gpd.GeoDataFrame({
        "pid": [1, 2, 3, 3, 4, 5],
        "kw": [None, 2.5, 1.0, 1.0, None, None],
        "mw": [0.7, None, None, None, None, None],
        "note": ["a", "Caf\ufffd", "b", "b", None, "e"],
    }, geometry=[shapely.Point(1, 2), bowtie, square, square, None, shapely.Polygon()], crs="EPSG:4326")
    out = standardised_features([_layer(frame)], _spec())
    c = out.counts
    assert c == {"read": 6, "repaired_invalid": 1, "repaired_text": 0, "dropped_empty": 2, "dropped_unrepairable": 0,
                 "dropped_duplicate": 1, "written": 3}
    assert c["read"] == c["written"] + c["dropped_empty"] + c["dropped_unrepairable"] + c["dropped_duplicate"]
    f = out.frame
    assert f.crs.to_epsg() == 4326 and shapely.is_valid(f.geometry.array).all()
    assert list(f["unified_id"]) == ["1", "2", "3"]
    assert list(f["capacity_mw"]) == [0.7, 2.5, 1.0]
    assert list(f["geometry_type"]) == ["Point", "MultiPolygon", "Polygon"]
    assert f["area_m2"].iloc[0] == 0 and f["area_m2"].iloc[2] == pytest.approx(
        abs(GEOD.geometry_area_perimeter(square)[0]), rel=1e-3)
    assert json.loads(f["source_attributes"].iloc[1]) == {"pid": 2, "kw": 2.5, "mw": None, "note": "Caf\ufffd"}
    assert f["feature_uid"].is_unique and list(f["source_feature_index"]) == [0, 1, 2]


def test_missing_crs_uses_declared_and_fails_without_one():
    frame = gpd.GeoDataFrame({"pid": [1]}, geometry=[shapely.box(0, 0, 1e-3, 1e-3)], crs=None)
    out = standardised_features([_layer(frame)], _spec(expected_crs="EPSG:4326"))
    assert out.counts["written"] == 1 and "no CRS in the file" in out.notes[0]
    with pytest.raises(SchemaError, match=r"dataset 'toy', file 'toy.geojson'.*no CRS and the manifest declares none"):
        standardised_features([_layer(frame)], _spec()).frame  # the features are standardised as they are read


def test_projected_metres_declared_as_wgs84_is_an_error():
    frame = gpd.GeoDataFrame({"pid": [1]}, geometry=[shapely.box(500000, 5700000, 500010, 5700010)], crs="EPSG:4326")
    with pytest.raises(SchemaError, match=r"file 'toy.geojson'.*impossible for the geographic CRS"):
        standardised_features([_layer(frame)], _spec()).frame


def test_projected_crs_is_reprojected_and_z_dropped():
    frame = gpd.GeoDataFrame({"pid": [1]}, geometry=[shapely.Polygon([(500000, 5700000, 0), (500100, 5700000, 0),
                                                                      (500100, 5700100, 0), (500000, 5700100, 0)])],
                             crs="EPSG:32631")
    out = standardised_features([_layer(frame)], _spec())
    geom = out.frame.geometry.iloc[0]
    assert not geom.has_z and 2 < geom.centroid.x < 4 and 51 < geom.centroid.y < 52
    assert out.frame["area_m2"].iloc[0] == pytest.approx(10_000, rel=2e-3)


@pytest.mark.parametrize("crs", ["EPSG:4979", "EPSG:4326+5773", "EPSG:7415"])
def test_3d_crs_and_heights_are_dropped_to_2d(tmp_path, crs):
    """3-D geographic (4979), WGS 84 + EGM96 height and a projected compound CRS, read back from a GeoPackage."""
    x, y = (5.0, 52.0) if crs != "EPSG:7415" else (155_000.0, 463_000.0)
    d = 1e-3 if crs != "EPSG:7415" else 100.0
    ring = [(x, y, 3.0), (x + d, y, 3.5), (x + d, y + d, 4.0), (x, y + d, 3.0)]
    path = tmp_path / "heights.gpkg"
    gpd.GeoDataFrame({"pid": [1]}, geometry=[shapely.Polygon(ring)], crs=crs).to_file(path)
    source = SourceFile("heights.gpkg", str(path), "heights.gpkg", "md5:abc")
    out = standardised_features(read.raw_layers([source], _spec()), _spec())
    geom = out.frame.geometry.iloc[0]
    assert out.counts["written"] == 1 and not geom.has_z and out.frame.crs.to_epsg() == 4326
    lon, lat = (5.0005, 52.0005) if crs != "EPSG:7415" else (5.3880, 52.1557)  # RD New's origin is Amersfoort
    assert geom.centroid.x == pytest.approx(lon, abs=1e-3) and geom.centroid.y == pytest.approx(lat, abs=1e-3)
    expected = 111_320 * 0.001 * 111_320 * 0.001 * np.cos(np.radians(52)) if crs != "EPSG:7415" else 10_000
    assert out.frame["area_m2"].iloc[0] == pytest.approx(expected, rel=1e-2)


def test_files_with_different_schemas_are_unified_explicitly():
    a = gpd.GeoDataFrame({"OID_": [1], "Name": ["x"]}, geometry=[shapely.box(100, 30, 100.001, 30.001)], crs=4326)
    b = gpd.GeoDataFrame({"FID_PV_202": [7], "Shape_Area": [1e-7]}, geometry=[shapely.box(101, 31, 101.001, 31.001)],
                         crs=4326)
    out = standardised_features([_layer(a, "PV_Test_2015.shp"), _layer(b, "PV_Train_2020.shp")], _spec(columns={}))
    f = out.frame
    assert list(f.columns) == list(out.frame.columns) and len(f) == 2
    assert set(json.loads(f["source_attributes"].iloc[0])) == {"OID_", "Name"}
    assert set(json.loads(f["source_attributes"].iloc[1])) == {"FID_PV_202", "Shape_Area"}
    assert out.per_file["PV_Test_2015.shp"]["written"] == 1 and out.counts["written"] == 2
    assert not f.isna().all().any() or f["unified_id"].isna().all()


def test_duplicates_are_exact_and_the_first_copy_stays():
    from pvdoi.features.attributes import duplicated

    a, b = shapely.box(0, 0, 1, 1), shapely.box(0, 0, 1, 2)
    wkb = shapely.to_wkb(np.array([a, a, b, a, a, shapely.Point(0, 0)], dtype=object))
    attrs = np.array(['{"k":1}', '{"k":2}', '{"k":1}', '{"k":1}', '{"k":1}', '{"k":1}'], dtype=object)
    assert duplicated(wkb, attrs, set()).tolist() == [False, False, False, True, True, False]
    assert duplicated(wkb[:0], attrs[:0], set()).tolist() == []
    seen: set = set()  # batches of one file share what was seen: a copy in a later batch is a duplicate too
    assert duplicated(wkb[:2], attrs[:2], seen).tolist() == [False, False]
    assert duplicated(wkb[2:], attrs[2:], seen).tolist() == [False, True, True, False]
