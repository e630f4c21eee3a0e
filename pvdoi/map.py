"""One self-contained HTML page of the warehouse's installations: a map and counts per dataset and country.

No network is needed to open it (no tiles, no CDN): the installations' centroids are embedded as quantised integer
arrays and drawn by a few lines of JavaScript into a canvas pixel buffer (hundreds of thousands of points in a few
milliseconds, so panning and zooming stay responsive); the basemap is the Overture country areas, simplified, when
the warehouse has them, else a graticule. Charts are plain HTML bars.
"""

from __future__ import annotations

import base64
import json
import os
from importlib import resources

import numpy as np

from pvdoi.atomic import write_text_atomic
from pvdoi.duckdb_ext import connect
from pvdoi.errors import ExportError
from pvdoi.warehouse.connection import require_warehouse

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#808000",
           "#000075"]


def write_map(database_path: str, output: str) -> str:
    """The map page of ``curated.installations`` written to ``output``; its path."""
    require_warehouse(database_path, ExportError)
    con = connect(database_path, read_only=True)
    try:
        points = con.execute("""SELECT dataset_id, centroid_lon, centroid_lat FROM curated.installations
                                WHERE centroid_lon IS NOT NULL ORDER BY dataset_id""").fetchnumpy()
        datasets = con.execute("""SELECT dataset_id, count(*), coalesce(sum(best_area_m2), 0) / 1e6
                                  FROM curated.installations GROUP BY 1 ORDER BY 1""").fetchall()
        countries = con.execute("""SELECT coalesce(country_name, country_code, 'unassigned'), count(*)
                                   FROM curated.installations GROUP BY 1 ORDER BY 2 DESC LIMIT 20""").fetchall()
        outlines = _outlines(con)
    except Exception as exc:  # no curated models yet
        raise ExportError(f"cannot read curated.installations from {database_path}: {exc}") from None
    finally:
        con.close()
    data = {"datasets": [{"id": d, "n": n, "km2": round(a, 3), "color": PALETTE[i % len(PALETTE)],
                          "xy": _packed(points, d)} for i, (d, n, a) in enumerate(datasets)],
            "countries": [[c, n] for c, n in countries], "outlines": outlines}
    template = resources.files("pvdoi").joinpath("map.html").read_text(encoding="utf-8")
    return write_text_atomic(os.path.abspath(output), template.replace("/*DATA*/null", json.dumps(data)))


def _packed(points: dict, dataset_id: str) -> str:
    """The dataset's centroids as base64 of int32 pairs (degrees × 1e5: about a metre)."""
    mask = points["dataset_id"] == dataset_id
    xy = np.column_stack([points["centroid_lon"][mask], points["centroid_lat"][mask]])
    return base64.b64encode(np.round(xy * 1e5).astype("<i4").tobytes()).decode()


def _outlines(con) -> list:
    """Country outlines (simplified rings of lon/lat) from the Overture areas, or none."""
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw_data' "
                      "AND table_name = 'overture_division_areas'").fetchone()[0]
    if not has:
        return []
    rows = con.execute("""SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geometry, 0.02))
                          FROM raw_data.overture_division_areas WHERE subtype = 'country'""").fetchall()
    rings = []
    for (text,) in rows:
        geometry = json.loads(text)
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry.get("coordinates", [])
        rings += [[[round(x, 3), round(y, 3)] for x, y in polygon[0]] for polygon in polygons if polygon]
    return rings
