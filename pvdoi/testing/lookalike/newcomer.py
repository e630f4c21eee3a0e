"""A dataset no manifest lists: solar parks in England as a GeoPackage in the British National Grid (EPSG:27700).

It stands in for the many PV label datasets the product has never seen (``pvdoi datasets add``): a projected CRS,
its own column names (``site_ref``, ``panel_area_m2``, ``kwp``, ``commissioned``, ``operator``, ``mounting``,
``n_panels``), a README beside it. The local repository server publishes it as a Zenodo record whose DOI is not a
Zenodo DOI, so only the DOI resolver (doi.org's handle redirect) leads to it.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np

from pvdoi.testing.lookalike.common import _blobs, _write

PARKS_FILE = "solar_parks_england.gpkg"
_OPERATORS = ["Meadow Energy", "Wessex Solar Co-op", "Fenland Power", "Chiltern Renewables", None]
_README = """Ground-mounted solar parks in England
=====================================

solar_parks_england.gpkg: one polygon per solar park, British National Grid (EPSG:27700).
site_ref        park reference (text)
panel_area_m2   area covered by panels, square metres
kwp             installed capacity, kilowatt-peak
commissioned    date of commissioning (YYYY-MM-DD), empty when unknown
operator        operating company
mounting        fixed or tracker
n_panels        number of modules
"""


def _parks(rng, folder: Path, n) -> list[str]:
    count = n("parks")
    lon = rng.uniform(-2.6, -0.4, count)  # inland England: Wiltshire to Cambridgeshire
    lat = rng.uniform(51.4, 52.6, count)
    site_area = np.round(rng.lognormal(np.log(6e4), 0.6, count), 1)
    geoms = _blobs(rng, lon, lat, site_area, rng.integers(5, 16, count))
    panel_area = np.round(site_area * rng.uniform(0.35, 0.5, count), 1)
    days = (np.datetime64("2011-04-01") + rng.integers(0, 4000, count)).astype(str).astype(object)
    days[rng.random(count) < 0.05] = None
    frame = gpd.GeoDataFrame({
        "site_ref": [f"ENG-SP-{i:05d}" for i in range(1, count + 1)],
        "panel_area_m2": panel_area,
        "kwp": np.round(panel_area * rng.uniform(0.17, 0.21, count), 1),
        "commissioned": days,
        "operator": rng.choice(np.array(_OPERATORS, dtype=object), count),
        "mounting": rng.choice(["fixed", "tracker"], count, p=[0.85, 0.15]),
        "n_panels": np.round(panel_area / 1.7).astype("int64"),
    }, geometry=geoms, crs="EPSG:4326").to_crs("EPSG:27700")
    frame["geometry"] = frame.geometry.set_precision(0.01)
    _write(frame, folder / PARKS_FILE, "GPKG")
    (folder / "README.txt").write_text(_README, encoding="utf-8")
    return [PARKS_FILE, "README.txt"]
