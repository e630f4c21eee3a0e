"""Look-alike files of the four solar-farm datasets: Kruitwagen et al., Dunnett et al., ChinaPV and India."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from pvdoi.testing.lookalike.common import _COUNTRIES, _FIXED_DATE, _blobs, _places, _shapefile, _world, _write, shared_dir

INDIA_FILE = "solar_farms_india_2021_merged_simplified.geojson"
_CHINA = [("青海", 97.5, 36.5, 2.0), ("甘肃", 98.5, 40.0, 2.0), ("宁夏", 106.0, 37.5, 0.8),
          ("内蒙古", 110.0, 41.0, 3.0), ("河北", 115.5, 39.0, 1.0), ("山东", 118.0, 36.5, 1.2),
          ("新疆", 88.0, 43.5, 3.0), ("江苏", 119.5, 33.0, 1.0)]


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
