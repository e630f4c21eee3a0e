"""Deterministic look-alike files of the six DOI datasets, for tests and offline runs.

File names, columns, geometry types and CRS follow ``shared/datasets.md``; the values are
random (``numpy.random.default_rng(seed)``), so the same arguments give byte-identical files.
The India file is the real sample, copied unchanged. Each dataset gets a folder
``{out_dir}/{dataset_id}/`` holding every file its repository publishes (also the ones the
manifest filters must exclude); ``{out_dir}/lookalike.json`` records what was written.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

MARKER = "lookalike.json"
INDIA_FILE = "solar_farms_india_2021_merged_simplified.geojson"
_M_PER_DEG = 111_320.0
_FIXED_DATE = "2020-01-01"
# key: (feature count at scale 1.0, count at scale None); "≈" marks made-up full-size counts
_COUNTS = {
    "bradbury": (19_433, 120), "uk": (265_406, 300),
    "predicted": (68_661, 200), "trn": (36_882, 80), "cv": (6_281, 30), "test": (7_263, 40),
    "trn_tiles": (1_500, 12), "cv_tiles": (300, 6), "test_tiles": (350, 6),  # ≈
    "solar": (35_272, 150), "wind": (20_000, 60),  # wind ≈
    "PV_Test_2015": (687, 40), "PV_Test_2020": (817, 50), "PV_Train_2020": (1_852, 90),
    "NPV_Test_2015": (700, 20), "NPV_Test_2020": (800, 20), "NPV_Train_2020": (1_800, 30),  # ≈
}
# iso2, iso3, iso-3166-2, lon, lat, half-width (deg), weight
_COUNTRIES = [
    ("CN", "CHN", "CN-QH", 98.0, 36.5, 5.0, 30), ("US", "USA", "US-CA", -117.0, 35.0, 3.0, 12),
    ("IN", "IND", "IN-RJ", 73.0, 26.5, 3.0, 10), ("JP", "JPN", "JP-12", 140.1, 35.6, 1.0, 10),
    ("DE", "DEU", "DE-BY", 11.5, 48.8, 1.5, 8), ("IT", "ITA", "IT-75", 16.5, 41.0, 1.0, 4),
    ("ES", "ESP", "ES-AN", -5.0, 37.5, 1.5, 3), ("GB", "GBR", "GB-ENG", -1.5, 52.0, 1.2, 5),
    ("FR", "FRA", "FR-OCC", 2.5, 43.8, 1.2, 3), ("AU", "AUS", "AU-NSW", 147.0, -33.0, 3.0, 2),
    ("CL", "CHL", "CL-AN", -69.5, -23.5, 1.0, 1), ("ZA", "ZAF", "ZA-NC", 21.0, -29.0, 2.0, 1),
    ("MX", "MEX", "MX-SON", -110.5, 29.5, 2.0, 1), ("BR", "BRA", "BR-MG", -44.0, -17.0, 3.0, 1),
    ("TR", "TUR", "TR-42", 32.5, 38.0, 1.5, 2), ("KR", "KOR", "KR-46", 127.0, 35.0, 0.8, 3),
    ("EG", "EGY", "EG-ASN", 32.9, 24.0, 0.5, 1), ("VN", "VNM", "VN-40", 108.5, 11.5, 1.0, 1),
    ("NL", "NLD", "NL-GR", 6.6, 53.2, 0.4, 2), ("TH", "THA", "TH-30", 102.0, 15.0, 1.5, 1),
]
# (lon, lat, half-width lon, half-width lat, weight)
_UK_BOXES = np.array([(-1.0, 52.0, 2.2, 1.4, 8), (-3.3, 56.5, 1.2, 1.0, 1), (-3.6, 52.3, 0.7, 0.7, 1)])
_CHINA = [("青海", 97.5, 36.5, 2.0), ("甘肃", 98.5, 40.0, 2.0), ("宁夏", 106.0, 37.5, 0.8),
          ("内蒙古", 110.0, 41.0, 3.0), ("河北", 115.5, 39.0, 1.0), ("山东", 118.0, 36.5, 1.2),
          ("新疆", 88.0, 43.5, 3.0), ("江苏", 119.5, 33.0, 1.0)]
_BRADBURY_CITIES = [("Fresno", -119.79, 36.75, 11), ("Stockton", -121.29, 37.96, 10),
                    ("Modesto", -120.99, 37.64, 10), ("Oxnard", -119.18, 34.20, 11)]


def shared_dir() -> Path:
    """The shared folder beside the project; ``PVDOI_SHARED_DIR`` overrides it."""
    override = os.environ.get("PVDOI_SHARED_DIR")
    return Path(override) if override else (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()


def write_lookalike_files(
    out_dir: str | Path, *, scale: float | None = None, seed: int = 0
) -> dict[str, list[Path]]:
    """Write the look-alike files of every dataset and return them per manifest dataset id.

    Args:
        out_dir: Folder to write into; its per-dataset sub-folders are replaced.
        scale: ``None`` for small test files (tens to hundreds of features per file),
            ``1.0`` for the real feature counts, any other factor scales those counts.
        seed: Seed of the random generator; the same arguments give identical bytes.

    Returns:
        Dataset id -> the files its repository publishes, in publication order.
    """
    out = Path(out_dir)
    writers = {
        "usa_cali_usgs_pv_2016": _bradbury, "uk_crowdsourced_pv_2020": _uk,
        "global_pv_inventory_sent2_spot_2021": _kruitwagen,
        "global_harmonized_large_solar_farms_2020": _dunnett, "chn_med_res_pv_2024": _chinapv,
        "ind_pv_solar_farms_2022": _india,
    }
    result: dict[str, list[Path]] = {}
    for offset, (dataset_id, writer) in enumerate(writers.items()):
        folder = out / dataset_id
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        rng = np.random.default_rng([seed, offset])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result[dataset_id] = [folder / name for name in writer(rng, folder, lambda key: _n(key, scale))]
    marker = {"scale": scale, "seed": seed,
              "files": {k: [p.name for p in v] for k, v in result.items()}}
    (out / MARKER).write_text(json.dumps(marker, indent=1))
    return result


def _n(key: str, scale: float | None) -> int:
    real, small = _COUNTS[key]
    return small if scale is None else max(1, round(real * scale))


def _blobs(rng, lon, lat, area_m2, k) -> np.ndarray:
    """Star-shaped simple polygons of about ``area_m2`` with ``k`` vertices around lon/lat."""
    n = len(lon)
    idx = np.repeat(np.arange(n), k)
    j = np.arange(idx.size) - np.repeat(np.cumsum(k) - k, k)
    theta = 2 * np.pi * (j + rng.uniform(0, 0.7, idx.size)) / k[idx] + rng.uniform(0, 2 * np.pi, n)[idx]
    radius = np.sqrt(area_m2 / (0.5 * k * np.sin(2 * np.pi / k) * 0.77))[idx] * rng.uniform(0.75, 1, idx.size)
    x = lon[idx] + radius * np.cos(theta) / (_M_PER_DEG * np.cos(np.radians(lat[idx])))
    y = lat[idx] + radius * np.sin(theta) / _M_PER_DEG
    return shapely.polygons(shapely.linearrings(np.round(np.c_[x, y], 7), indices=idx))


def _places(rng, n, table):
    """Random lon/lat inside weighted boxes ``(lon, lat, half_lon, half_lat, weight)``; box index."""
    table = np.asarray(table, float)
    which = rng.choice(len(table), n, p=table[:, 4] / table[:, 4].sum())
    lon = table[which, 0] + rng.uniform(-1, 1, n) * table[which, 2]
    lat = table[which, 1] + rng.uniform(-1, 1, n) * table[which, 3]
    return lon, lat, which


def _world(rng, n, area_log_mean, *, k=(5, 40)):
    """Utility-scale polygons in the countries of ``_COUNTRIES``, with their areas and countries."""
    lon, lat, which = _places(rng, n, [(c[3], c[4], c[5], c[5], c[6]) for c in _COUNTRIES])
    area = np.clip(rng.lognormal(np.log(area_log_mean), 1.0, n), 1e4, 1e6)
    return _blobs(rng, lon, lat, area, rng.integers(*k, n)), area, which


def _split(geoms, *, z=False) -> list[list]:
    """The coordinate list of each geometry (exterior rings only), rounded to 1e-7 degrees."""
    xy, idx = shapely.get_coordinates(geoms, include_z=z, return_index=True)
    ends = np.cumsum(np.bincount(idx, minlength=len(geoms)))
    flat = np.round(xy, 7).tolist()
    return [flat[a:b] for a, b in zip(np.r_[0, ends[:-1]], ends)]


def _write(gdf, path: Path, driver: str, **options) -> None:
    pyogrio.write_dataframe(gdf, path, driver=driver, layer=path.stem, **options)
    if driver == "GPKG":  # GDAL stamps the current time; fix it so bytes are reproducible
        with sqlite3.connect(path) as db:
            db.execute("UPDATE gpkg_contents SET last_change = ?", (f"{_FIXED_DATE}T00:00:00.000Z",))
        db.close()


def _shapefile(gdf, folder: Path, stem: str) -> list[str]:
    """Write a UTF-8 shapefile with ArcGIS-style sidecars; return its file names."""
    _write(gdf, folder / f"{stem}.shp", "ESRI Shapefile", encoding="UTF-8",
           layer_options={"DBF_DATE_LAST_UPDATE": _FIXED_DATE})
    (folder / f"{stem}.cpg").rename(folder / f"{stem}.CPG")
    for ext in (".sbn", ".sbx"):
        (folder / f"{stem}{ext}").write_bytes(b"\x00\x00\x27\x0a" + bytes(96))
    (folder / f"{stem}.shp.xml").write_text(f"<?xml version=\"1.0\"?><metadata><name>{stem}</name></metadata>")
    return [f"{stem}{ext}" for ext in (".shp", ".shx", ".dbf", ".prj", ".CPG", ".sbn", ".sbx", ".shp.xml")]


def _bradbury(rng, folder: Path, n) -> list[str]:
    count = n("bradbury")
    cities = _BRADBURY_CITIES
    n_img = max(4, count // 40)
    img_city = rng.choice(len(cities), n_img, p=[0.55, 0.15, 0.2, 0.1])
    nw_lon = np.array([cities[c][1] for c in img_city]) + rng.uniform(-0.1, 0.1, n_img)
    nw_lat = np.array([cities[c][2] for c in img_city]) + rng.uniform(-0.1, 0.1, n_img)
    se_lon = nw_lon + 1500 / (_M_PER_DEG * np.cos(np.radians(nw_lat)))
    se_lat = nw_lat - 1500 / _M_PER_DEG
    img = rng.integers(0, n_img, count)
    px, py = rng.uniform(50, 4950, count), rng.uniform(50, 4950, count)
    lon = nw_lon[img] + px / 5000 * (se_lon - nw_lon)[img]
    lat = nw_lat[img] - py / 5000 * (nw_lat - se_lat)[img]
    area = np.round(np.clip(rng.lognormal(np.log(35), 0.7, count), 8, 400), 4)
    geoms = _blobs(rng, lon, lat, area, rng.integers(4, 10, count))
    rings = _split(geoms)
    pixels = [json.dumps([[round((x - nw_lon[i]) / (se_lon[i] - nw_lon[i]) * 5000, 2),
                           round((nw_lat[i] - y) / (nw_lat[i] - se_lat[i]) * 5000, 2)] for x, y in ring])
              for i, ring in zip(img, rings)]
    names = np.array([f"11ska{v:06d}" for v in rng.integers(0, 999_999, n_img)])
    df = pd.DataFrame({
        "polygon_id": np.arange(1, count + 1), "centroid_latitude": lat, "centroid_longitude": lon,
        "centroid_latitude_pixels": py, "centroid_longitude_pixels": px,
        "city": [cities[c][0] for c in img_city[img]], "area_pixels": np.round(area / 0.09, 1),
        "area_meters": area, "image_name": names[img],
        "nw_corner_of_image_latitude": nw_lat[img], "nw_corner_of_image_longitude": nw_lon[img],
        "se_corner_of_image_latitude": se_lat[img], "se_corner_of_image_longitude": se_lon[img],
        "datum": "NAD83", "projection_zone": [cities[c][3] for c in img_city[img]], "resolution": 0.3,
        "jaccard_index": np.where(rng.random(count) < 0.05, np.nan, rng.uniform(0.5, 1, count)),
        "polygon_vertices_pixels": pixels,
    })
    _write(gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326"), folder / "SolarArrayPolygons.geojson",
           "GeoJSON", layer_options={"AUTODETECT_JSON_STRINGS": "NO"})  # keep the vertices a JSON string
    df.to_json(folder / "SolarArrayPolygons.json", orient="records", double_precision=10)
    header = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jun 13 00:00:00 2016"
    (folder / "SolarArrayPolygons.mat").write_bytes(header.ljust(116) + bytes(8) + b"\x00\x01IM"
                                                    + rng.bytes(64 * count))
    df.drop(columns="polygon_vertices_pixels").to_csv(folder / "polygonDataExceptVertices.csv", index=False)
    for csv_name, table in (("polygonVertices_LatitudeLongitude.csv", [[[y, x] for x, y in r] for r in rings]),
                            ("polygonVertices_PixelCoordinates.csv", [json.loads(p) for p in pixels])):
        lines = [f"{pid},{len(t)}," + ",".join(f"{a},{b}" for a, b in t) for pid, t in zip(df.polygon_id, table)]
        (folder / csv_name).write_text("polygon_id,number_vertices,vertices\n" + "\n".join(lines) + "\n")
    return ["SolarArrayPolygons.geojson", "SolarArrayPolygons.json", "SolarArrayPolygons.mat",
            "polygonDataExceptVertices.csv", "polygonVertices_LatitudeLongitude.csv",
            "polygonVertices_PixelCoordinates.csv"]


def _maybe(values, keep) -> list:
    """Python values with ``None`` where ``keep`` is false (JSON null / empty CSV cell)."""
    out = np.asarray(values).astype(object)
    out[~np.asarray(keep, bool)] = None
    return out.tolist()


def _uk_columns(rng, count, kinds, area, farm) -> dict[str, list]:
    point = kinds == "Point"
    repd = farm | (rng.random(count) < 0.01)
    repd[5:7] = True
    repd_only = point & repd
    dates = np.datetime64("2011-01-01") + rng.integers(0, 3000, count)
    sites = rng.choice(["Manor Farm", "Westmill", "Kencot Hill", "Owls Hatch", "Ynys Môn", "Lark Rise"], count)
    cap_osm = np.round(area * np.where(farm, 5e-5, 1.7e-4), 4)
    has_cap_osm = ~repd_only & (rng.random(count) < 0.4)
    names = _maybe([f"{s} Solar Farm" for s in sites], repd)
    names[5], names[6] = "@@LATIN1@@", "@@SURROGATE@@"  # patched as raw bytes after encoding
    return {
        "osm_id": _maybe(rng.integers(10_000_000, 9_000_000_000, count), ~repd_only),
        "osm_objtype": _maybe(np.where(point, "node", np.where(
            np.isin(kinds, ["MultiPolygon", "GeometryCollection"]), "relation", "way")), ~repd_only),
        "repd_id": _maybe(rng.integers(1000, 9999, count), repd), "repd_site_name": names,
        "capacity_repd_MWp": _maybe(np.round(area * rng.uniform(4e-5, 7e-5, count), 3), repd),
        "capacity_osm_MWp": _maybe(cap_osm, has_cap_osm), "area_sqm": _maybe(area, ~point),
        "located": _maybe(np.where(farm, "ground", "roof"), rng.random(count) < 0.8),
        "orientation": _maybe(rng.choice([90.0, 135.0, 180.0, 225.0, 270.0], count), rng.random(count) < 0.2),
        "osm_power_type": _maybe(np.where(farm, "plant", "generator"), ~repd_only),
        "osm_tag_start_date": _maybe(dates.astype("datetime64[M]").astype(str), rng.random(count) < 0.05),
        "num_modules": _maybe(np.maximum(1, (area / 1.6).astype(int)), rng.random(count) < 0.1),
        "repd_status": _maybe(np.full(count, "Operational"), repd),
        "repd_operational_date": _maybe(dates.astype(str), repd),
        "old_repd_id": _maybe([f"N{v:05d}" for v in rng.integers(0, 99_999, count)], repd & (rng.random(count) < 0.3)),
        "osm_cluster_id": _maybe(rng.integers(0, count, count), rng.random(count) < 0.05),
        "repd_cluster_id": _maybe(rng.integers(0, 500, count), repd & (rng.random(count) < 0.1)),
        "source_capacity": np.where(repd, "repd", np.where(has_cap_osm, "osm", "area")).tolist(),
        "source_obj": np.where(repd_only, "repd", "osm").tolist(),
        "match_rule": _maybe(rng.choice(list("abcde"), count), repd & ~repd_only),
    }


def _uk_geometry(kind: str, ring: list, lon: float, lat: float, dx: float, z: bool) -> dict:
    if z:
        ring = [[x, y, 0.0] for x, y in ring]
    if kind == "Point":
        return {"type": "Point", "coordinates": [lon, lat, 0.0] if z else [lon, lat]}
    if kind == "LineString":
        return {"type": "LineString", "coordinates": ring[:-1]}
    if kind == "MultiPolygon":
        return {"type": "MultiPolygon", "coordinates": [[ring], [[[c[0] + dx, *c[1:]] for c in ring]]]}
    polygon = {"type": "Polygon", "coordinates": [ring]}
    if kind == "GeometryCollection":
        return {"type": "GeometryCollection", "geometries": [polygon, {"type": "Point", "coordinates": [lon, lat]}]}
    return polygon


def _uk(rng, folder: Path, n) -> list[str]:
    total = max(n("uk"), 20)
    count = total - 5  # five hostile extras are added below
    kinds = rng.choice(np.array(["Polygon", "Point", "MultiPolygon", "LineString", "GeometryCollection"]),
                       count, p=[0.684, 0.27, 0.045, 0.0005, 0.0005])
    kinds[1:5] = ["LineString", "GeometryCollection", "MultiPolygon", "Point"]
    lon, lat, _ = _places(rng, count, _UK_BOXES)
    lon, lat = np.round(lon, 7), np.round(lat, 7)
    farm = (rng.random(count) < 0.03) | (kinds == "MultiPolygon")
    area = np.where(farm, np.clip(rng.lognormal(np.log(6e4), 1.0, count), 1e4, 1e6),
                    np.clip(rng.lognormal(np.log(25), 0.6, count), 8, 250)).round(1)
    rings = _split(_blobs(rng, lon, lat, area, np.where(farm, rng.integers(5, 40, count), rng.integers(4, 8, count))))
    z3 = rng.random(count) < 0.01
    z3[[0, 4]] = True
    dx = np.round(2.5 * np.sqrt(area) / (_M_PER_DEG * np.cos(np.radians(lat))), 7)
    ids = np.arange(1, count + 1)
    repeat = rng.choice(np.arange(1, count), max(3, count // 200), replace=False)
    ids[repeat] = ids[repeat - 1]  # GDAL: "Several features with id = N"
    cols = _uk_columns(rng, count, kinds, area, farm)
    props = [dict(zip(cols, row)) for row in zip(*cols.values())]
    feats = [f'{{"type": "Feature", "id": {i}, "properties": {json.dumps(p, ensure_ascii=False)}, '
             f'"geometry": {json.dumps(_uk_geometry(k, r, x, y, d, z))}}}'
             for i, p, k, r, x, y, d, z in zip(ids.tolist(), props, kinds.tolist(), rings, lon.tolist(),
                                              lat.tolist(), dx.tolist(), z3.tolist())]
    d = 1e-4
    bowtie = {"type": "Polygon", "coordinates": [[[-0.1, 51.5], [-0.1 + d, 51.5 + d], [-0.1 + d, 51.5],
                                                  [-0.1, 51.5 + d], [-0.1, 51.5]]]}
    extras = [bowtie, None, {"type": "Polygon", "coordinates": []},
              {"type": "GeometryCollection", "geometries": []}]
    for j, (pos, geom) in enumerate(zip(np.linspace(count - 1, 10, len(extras)).astype(int), extras)):
        feats.insert(pos, f'{{"type": "Feature", "id": {count + j + 1}, "properties": '
                          f'{json.dumps(props[pos], ensure_ascii=False)}, "geometry": {json.dumps(geom)}}}')
    feats.insert(8, feats[7])  # an exact duplicate feature
    text = '{\n"type": "FeatureCollection",\n"name": "ukpvgeo_geometries",\n"features": [\n'
    data = (text + ",\n".join(feats) + "\n]\n}\n").encode()
    data = data.replace(b"@@LATIN1@@", b"Caf\xe9 Solar Roof").replace(b"@@SURROGATE@@", b"Solar \\ud83d Farm")
    (folder / "ukpvgeo_geometries.geojson").write_bytes(data)
    cols["repd_site_name"][5:7] = ["Café Solar Roof", "Solar Farm"]
    table = pd.DataFrame(cols).assign(latitude=lat, longitude=lon)
    extra_rows = table[table.repd_id.notna()].sample(total + 11 - count, replace=True, random_state=0)
    pd.concat([table, extra_rows]).to_csv(folder / "ukpvgeo_points.csv", index=False)
    return ["ukpvgeo_geometries.geojson", "ukpvgeo_points.csv"]


def _kruitwagen(rng, folder: Path, n) -> list[str]:
    names = []
    for split in ("predicted", "trn", "cv", "test"):
        count = n(split)
        geoms, area, which = _world(rng, count, 4e4)
        area = np.round(area * rng.uniform(0.97, 1.03, count), 3)
        if split == "predicted":
            days = (np.datetime64("2016-06-01") + rng.integers(0, 940, count)).astype(str).astype(object)
            days[rng.random(count) < 0.25] = "<2016-06"
            days[rng.random(count) < 0.02] = None
            gti = rng.uniform(1000, 2500, count)
            cols = {"unique_id": np.arange(count), "area": area,
                    "confidence": rng.choice(list("ABCD"), count, p=[0.4, 0.3, 0.2, 0.1]),
                    "install_date": days, "iso-3166-1": [_COUNTRIES[w][0] for w in which],
                    "iso-3166-2": [_COUNTRIES[w][2] for w in which], "gti": gti,
                    "pvout": gti * rng.uniform(0.7, 0.85, count),
                    "capacity_mw": np.round(area * rng.uniform(4e-5, 7e-5, count), 4),
                    "match_id": np.where(rng.random(count) < 0.6, np.nan, rng.integers(0, 9e4, count)),
                    "wdpa_10km": (rng.random(count) < 0.1).astype(int)}
            landcover = rng.choice([10.0, 11.0, 30.0, 130.0, 150.0, 190.0, 200.0], count)
            for year in range(1992, 2019):
                change = rng.random(count) < 0.04
                landcover = np.where(change, rng.choice([10.0, 130.0, 190.0], count), landcover)
                cols[f"LC_CLC300_{year}"] = landcover
            cols["resolution"] = rng.choice([1.5, 10.0], count)
        else:  # the training/validation/test labels carry a smaller schema
            cols = {"aoi_idx": rng.integers(0, n(f"{split}_tiles"), count),
                    "unique_id": np.arange(count), "area": area}
        _write(gpd.GeoDataFrame(cols, geometry=geoms, crs="EPSG:4326"), folder / f"{split}_polygons.geojson",
               "GeoJSON")
        names.append(f"{split}_polygons.geojson")
    for split in ("trn", "cv", "test"):
        count = n(f"{split}_tiles")
        lon, lat, _ = _places(rng, count, [(c[3], c[4], c[5], c[5], c[6]) for c in _COUNTRIES])
        half = rng.uniform(0.05, 0.25, count)
        tiles = shapely.box(lon - half, lat - half, lon + half, lat + half)
        _write(gpd.GeoDataFrame({"aoi_idx": np.arange(count)}, geometry=tiles, crs="EPSG:4326"),
               folder / f"{split}_tiles.geojson", "GeoJSON")
        names.append(f"{split}_tiles.geojson")
    return names


def _dunnett(rng, folder: Path, n) -> list[str]:
    count = n("solar")
    geoms, area, which = _world(rng, count, 8e4)
    panel_km2 = np.round(area / 1e6 * rng.uniform(0.9, 1.1, count), 6)
    solar = gpd.GeoDataFrame({
        "sol_id": np.arange(1, count + 1), "GID_0": [_COUNTRIES[w][1] for w in which],
        "panels": rng.integers(1, 80, count), "panel.area": panel_km2,
        "landscape.area": np.round(panel_km2 * rng.uniform(1.0, 2.5, count), 6),
        "water": (rng.random(count) < 0.02).astype(int), "urban": (rng.random(count) < 0.1).astype(int),
        "power": np.where(rng.random(count) < 0.03, np.nan, np.round(panel_km2 * rng.uniform(40, 80, count), 3)),
    }, geometry=geoms, crs="EPSG:4326")
    n_wind = n("wind")
    lon, lat, wind_which = _places(rng, n_wind, [(c[3], c[4], c[5], c[5], c[6]) for c in _COUNTRIES])
    wind = gpd.GeoDataFrame({
        "wind_id": np.arange(1, n_wind + 1), "GID_0": [_COUNTRIES[w][1] for w in wind_which],
        "turbines": rng.integers(1, 120, n_wind), "power": np.round(rng.uniform(1, 300, n_wind), 2),
    }, geometry=shapely.points(np.round(lon, 6), np.round(lat, 6)), crs="EPSG:4326")
    inner = "global_wind_solar_2020"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        _write(solar, stage / "solar_WGS84.gpkg", "GPKG")
        _write(solar, stage / "solar_WGS84.shp", "ESRI Shapefile", layer_options={"DBF_DATE_LAST_UPDATE": _FIXED_DATE})
        centroids = shapely.centroid(geoms)
        solar.drop(columns="geometry").assign(longitude=shapely.get_x(centroids).round(6),
                                              latitude=shapely.get_y(centroids).round(6)).to_csv(
            stage / "solar_WGS84.csv", index=False)
        _write(solar.to_crs("ESRI:54012"), stage / "solar_EckertIV.gpkg", "GPKG")
        _write(wind, stage / "wind_WGS84.gpkg", "GPKG")
        _write(wind.to_crs("ESRI:54012"), stage / "wind_EckertIV.gpkg", "GPKG")
        with zipfile.ZipFile(folder / f"{inner}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo(f"{inner}/", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
            for path in sorted(stage.iterdir()):
                info = zipfile.ZipInfo(f"{inner}/{path.name}", date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr, info.compress_type = 0o100644 << 16, zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return [f"{inner}.zip"]


def _chinapv(rng, folder: Path, n) -> list[str]:
    names = []
    for stem in ("PV_Test_2015", "PV_Test_2020", "PV_Train_2020",
                 "NPV_Test_2015", "NPV_Test_2020", "NPV_Train_2020"):
        count = n(stem)
        lon, lat, which = _places(rng, count, [(c[1], c[2], c[3], c[3], 1) for c in _CHINA])
        area = np.clip(rng.lognormal(np.log(8e4), 1.2, count), 1e4, 1e6)
        flat = _blobs(rng, lon, lat, area, rng.integers(5, 40, count))
        geoms = shapely.force_3d(flat)  # PolygonZ with z = 0, as the KML-born originals
        province = [_CHINA[w][0] for w in which]
        cover = rng.choice(["barren", "grassland", "cropland", "water", "shrubland"], count)
        ids = np.arange(count)
        if stem.startswith("NPV"):
            cols = {"OID_": ids, "Name": [f"非光伏_{i:04d}" for i in ids], "landcover": cover, "area": area.round(2)}
        elif stem == "PV_Test_2015":
            cols = {"OID_": ids, "Name": [f"光伏电站_{i:04d}" for i in ids],
                    "FolderPath": [f"{stem}/{p}" for p in province], "SymbolID": 0, "AltMode": 0,
                    "Base": 0.0, "Clamped": -1, "Extruded": 0, "Snippet": "", "PopupInfo": "",
                    "landcover": cover, "area": area.round(2)}
        elif stem == "PV_Test_2020":
            cols = {"FID_PV_202": ids, "Id": 0, "Shape_Leng": shapely.length(flat),
                    "Shape_Area": shapely.area(flat), "landcover": cover, "Province": province, "year": 2020}
        else:
            cols = {"OBJECTID": ids + 1, "gridcode": 1, "Shape_Leng": shapely.length(flat),
                    "Shape_Area": shapely.area(flat), "Province": province, "area_km2": (area / 1e6).round(5)}
        names += _shapefile(gpd.GeoDataFrame(cols, geometry=geoms, crs="EPSG:4326"), folder, stem)
    (folder / "README.md").write_text("# ChinaPV\n\nPV_* are photovoltaic samples, NPV_* negative samples.\n")
    return names + ["README.md"]


def _india(rng, folder: Path, n) -> list[str]:
    shutil.copyfile(shared_dir() / "samples" / "ind_pv_solar_farms_2022" / INDIA_FILE, folder / INDIA_FILE)
    return [INDIA_FILE]
