"""The geometry rules of standardisation: the source CRS, the move to EPSG:4326, repairs and equal-area areas.

Part of the engine (:mod:`pvdoi.features`): rules for one batch, called by :mod:`pvdoi.features.batch`.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from pvdoi.errors import SchemaError
from pvdoi.manifest import DatasetSpec

WGS84 = CRS.from_epsg(4326)
EQUAL_AREA = CRS.from_epsg(6933)  # WGS 84 / NSIDC EASE-Grid 2.0 Global: equal-area on the WGS84 ellipsoid
_TO_EQUAL_AREA = Transformer.from_crs(WGS84, EQUAL_AREA, always_xy=True)
GEOMETRY_TYPES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
                  5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


def source_crs(gdf: gpd.GeoDataFrame, spec: DatasetSpec, name: str, notes: list[str]) -> CRS:
    """The file's 2D CRS, or the manifest's when the file has none (noted); neither is an error."""
    crs = gdf.crs
    if crs is None:
        if spec.expected_crs is None:
            raise SchemaError("the file has no CRS and the manifest declares none (set expected_crs)",
                              dataset_id=spec.id, file=name)
        crs = CRS.from_user_input(spec.expected_crs)
        notes.append(f"{name}: no CRS in the file; used the declared {spec.expected_crs}")
    crs = CRS.from_user_input(crs)
    return crs.to_2d() if len(crs.axis_info) > 2 else crs


def to_wgs84(gdf: gpd.GeoDataFrame, crs: CRS, spec: DatasetSpec, name: str) -> np.ndarray:
    """The batch's geometries, 2D, in EPSG:4326 (a new array: repairs may replace its items)."""
    geoms = np.array(gdf.geometry.array, dtype=object)  # a copy: repairs replace its items
    extra = shapely.has_z(geoms) | shapely.has_m(geoms)
    if extra.any():  # only those: force_2d copies every geometry it is given
        geoms[extra] = shapely.force_2d(geoms[extra])
    if crs.is_geographic:
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        if np.isfinite(x0) and (x0 < -180.5 or x1 > 360.5 or y0 < -90.5 or y1 > 90.5):
            raise SchemaError(
                f"coordinates span x {x0:.1f}..{x1:.1f}, y {y0:.1f}..{y1:.1f}, impossible for the geographic CRS "
                f"{crs.to_string()}: the file is probably projected (metres) with a wrong or missing CRS",
                dataset_id=spec.id, file=name)
    if not crs.equals(WGS84, ignore_axis_order=True):
        transformer = Transformer.from_crs(crs, WGS84, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    return geoms


def repair(geom):
    """A valid version of an invalid geometry, keeping only parts of the original dimension."""
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    dim = shapely.get_dimensions(geom)
    if shapely.get_type_id(fixed) == 7 or shapely.get_dimensions(fixed) != dim:
        parts = [p for p in shapely.get_parts(fixed) if shapely.get_dimensions(p) == dim]
        if not parts:
            return None
        fixed = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    return fixed


def geodesic_area_m2(geoms: np.ndarray) -> np.ndarray:
    """Area on the WGS84 ellipsoid via the EASE-Grid 2.0 equal-area projection (0 for points and lines).

    Only the geometries with a surface are projected (a point's or a line's area is 0 in any projection).
    """
    area = np.where(shapely.is_missing(geoms), np.nan, 0.0)
    surfaces = shapely.get_dimensions(geoms) == 2
    if surfaces.any():
        kept = geoms[surfaces]  # a new array: set_coordinates puts new geometries in it
        xy = shapely.get_coordinates(kept)
        x, y = _TO_EQUAL_AREA.transform(xy[:, 0], xy[:, 1])
        area[surfaces] = shapely.area(shapely.set_coordinates(kept, np.column_stack((x, y))))
    return area
