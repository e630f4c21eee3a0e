"""Look-alike files of the two rooftop datasets: Bradbury et al. (California) and the UK crowd-sourced PV."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from pvdoi.testing.lookalike.common import _M_PER_DEG, _blobs, _places, _split, _write

# (lon, lat, half-width lon, half-width lat, weight)
_UK_BOXES = np.array([(-1.0, 52.0, 2.2, 1.4, 8), (-3.3, 56.5, 1.2, 1.0, 1), (-3.6, 52.3, 0.7, 0.7, 1)])
_BRADBURY_CITIES = [("Fresno", -119.79, 36.75, 11), ("Stockton", -121.29, 37.96, 10),
                    ("Modesto", -120.99, 37.64, 10), ("Oxnard", -119.18, 34.20, 11)]


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
        # as in the real file, a column filled in one long run of rows and empty elsewhere: whole batches of 32,768
        # rows without a null (int64 in pandas) and others all null (float64); no draw from rng (others unchanged)
        "osm_version": _maybe(np.arange(count) % 9 + 1, np.arange(count) < int(count * 0.4)),
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
