"""Shared pieces of the look-alike generator: where the files are, places, polygon shapes, reproducible writes."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pyogrio
import shapely

_M_PER_DEG = 111_320.0
_FIXED_DATE = "2020-01-01"
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


def shared_dir() -> Path:
    """The shared folder beside the project; ``PVDOI_SHARED_DIR`` overrides it."""
    override = os.environ.get("PVDOI_SHARED_DIR")
    return Path(override) if override else (Path(__file__).resolve().parents[3] / ".." / "shared").resolve()


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
