"""Shape metrics of polygonal installations: compactness, orientation and rectangularity.

Run by the dbt Python model `installation_shape_metrics` (dbt_project/models/curated/). Areas come
from the equal-area EPSG:6933 projection; lengths and angles from a local tangent plane centred on
each polygon (east/north metres on the WGS84 ellipsoid), because EPSG:6933 stretches east-west
lengths by up to ~1.4x at European latitudes and would bias perimeters and rotate orientations.
Every node works on whole arrays with shapely 2 vectorised functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

EQUAL_AREA_CRS = "EPSG:6933"  # WGS 84 / NSIDC EASE-Grid 2.0 Global
_WGS84_A = 6_378_137.0
_WGS84_E2 = 6.694379990141316e-3
_TO_EQUAL_AREA = Transformer.from_crs("EPSG:4326", EQUAL_AREA_CRS, always_xy=True)
OUTPUT_COLUMNS = ["installation_key", "area_m2", "perimeter_m", "compactness", "orientation_deg", "rectangularity"]


def installation_geometries(installation_polygons: pd.DataFrame) -> pd.Series:
    """Polygonal installation geometries in lon/lat (EPSG:4326), indexed by installation_key."""
    wkb = np.array([bytes(value) for value in installation_polygons["geometry_wkb"]], dtype=object)
    index = pd.Index(installation_polygons["installation_key"].astype(str), name="installation_key")
    return pd.Series(shapely.from_wkb(wkb), index=index, dtype=object)


def equal_area_geometries(installation_geometries: pd.Series) -> pd.Series:
    """The installation geometries projected to the equal-area EPSG:6933 (metres)."""
    projected = shapely.transform(
        installation_geometries.to_numpy(),
        lambda xy: np.column_stack(_TO_EQUAL_AREA.transform(xy[:, 0], xy[:, 1])),
    )
    return pd.Series(projected, index=installation_geometries.index, dtype=object)


def local_geometries(installation_geometries: pd.Series) -> pd.Series:
    """The installation geometries in metres east/north of their own centroid (local tangent plane)."""
    geoms = installation_geometries.to_numpy()
    centroids = shapely.centroid(geoms)
    lon0, lat0 = shapely.get_x(centroids), shapely.get_y(centroids)
    _, owner = shapely.get_coordinates(geoms, return_index=True)  # same order shapely.transform uses
    phi = np.radians(lat0[owner])
    w = np.sqrt(1.0 - _WGS84_E2 * np.sin(phi) ** 2)
    metres_per_rad_north = _WGS84_A * (1.0 - _WGS84_E2) / w**3  # meridional radius of curvature
    metres_per_rad_east = _WGS84_A / w * np.cos(phi)  # prime-vertical radius times cos(lat)

    def _to_local(xy: np.ndarray) -> np.ndarray:
        east = np.radians(xy[:, 0] - lon0[owner]) * metres_per_rad_east
        north = np.radians(xy[:, 1] - lat0[owner]) * metres_per_rad_north
        return np.column_stack((east, north))

    return pd.Series(shapely.transform(geoms, _to_local), index=installation_geometries.index, dtype=object)


def area_m2(equal_area_geometries: pd.Series) -> pd.Series:
    """Area in square metres, measured in the equal-area projection."""
    return pd.Series(shapely.area(equal_area_geometries.to_numpy()), index=equal_area_geometries.index)


def perimeter_m(local_geometries: pd.Series) -> pd.Series:
    """Perimeter in metres (exterior and interior rings), measured in the local tangent plane."""
    return pd.Series(shapely.length(local_geometries.to_numpy()), index=local_geometries.index)


def compactness(area_m2: pd.Series, perimeter_m: pd.Series) -> pd.Series:
    """Polsby-Popper compactness 4*pi*area/perimeter^2: 1 for a disc, ~0.785 for a square, NaN without a perimeter."""
    perimeter = perimeter_m.where(perimeter_m > 0)
    return (4.0 * np.pi * area_m2 / perimeter**2).clip(upper=1.0)


def minimum_rotated_rectangles(local_geometries: pd.Series) -> pd.Series:
    """The minimum-area rotated rectangle around each installation, in the local tangent plane."""
    rectangles = shapely.minimum_rotated_rectangle(local_geometries.to_numpy())
    return pd.Series(rectangles, index=local_geometries.index, dtype=object)


def orientation(minimum_rotated_rectangles: pd.Series) -> pd.Series:
    """Azimuth of the minimum rotated rectangle's long side, degrees clockwise from north in [0, 180)."""
    rings = shapely.get_exterior_ring(minimum_rotated_rectangles.to_numpy())  # None for degenerate rectangles
    corners = [shapely.get_point(rings, i) for i in range(3)]
    x0, x1, x2 = (shapely.get_x(p) for p in corners)
    y0, y1, y2 = (shapely.get_y(p) for p in corners)
    first, second = np.hypot(x1 - x0, y1 - y0), np.hypot(x2 - x1, y2 - y1)
    first_is_long = first >= second
    d_east = np.where(first_is_long, x1 - x0, x2 - x1)
    d_north = np.where(first_is_long, y1 - y0, y2 - y1)
    azimuth = np.degrees(np.arctan2(d_east, d_north)) % 180.0
    azimuth = np.where(np.isclose(azimuth, 180.0), 0.0, azimuth)
    return pd.Series(azimuth, index=minimum_rotated_rectangles.index)


def rectangularity(local_geometries: pd.Series, minimum_rotated_rectangles: pd.Series) -> pd.Series:
    """Area over the area of the minimum rotated rectangle: 1 for a rectangle, NaN for degenerate shapes."""
    rectangle_area = shapely.area(minimum_rotated_rectangles.to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = shapely.area(local_geometries.to_numpy()) / np.where(rectangle_area > 0, rectangle_area, np.nan)
    return pd.Series(np.minimum(ratio, 1.0), index=local_geometries.index)


def shape_metrics(
    area_m2: pd.Series,
    perimeter_m: pd.Series,
    compactness: pd.Series,
    orientation: pd.Series,
    rectangularity: pd.Series,
) -> pd.DataFrame:
    """One row per polygonal installation with its shape metrics, keyed by installation_key."""
    frame = pd.DataFrame(
        {
            "area_m2": area_m2.astype("float64"),
            "perimeter_m": perimeter_m.astype("float64"),
            "compactness": compactness.astype("float64"),
            "orientation_deg": orientation.astype("float64"),
            "rectangularity": rectangularity.astype("float64"),
        },
        index=area_m2.index,
    )
    return frame.reset_index()[OUTPUT_COLUMNS]
