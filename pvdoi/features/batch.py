"""The rules for one batch: its kept rows' geometries, areas and mapped columns, then the harmonised output columns."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from pvdoi.features.attributes import mapped, uids
from pvdoi.features.geometry import GEOMETRY_TYPES, WGS84, geodesic_area_m2, repair, to_wgs84
from pvdoi.manifest import DatasetSpec

OUTPUT_COLUMNS = [
    "feature_uid", "dataset_id", "doi", "source_file", "source_file_checksum", "source_feature_index", "unified_id",
    "geometry", "geometry_type", "area_m2", "centroid_lon", "centroid_lat", "source_area_m2", "capacity_mw",
    "install_date", "source_attributes", "ingested_at",
]


def harmonised(kept: dict, attributes: np.ndarray, spec: DatasetSpec, src, prefix: str,
                ingested_at: pd.Timestamp) -> gpd.GeoDataFrame:
    """The output columns of one batch's kept rows."""
    geoms = kept["geometry"]
    out = pd.DataFrame({
        "feature_uid": uids(prefix, kept["index"]),
        "dataset_id": spec.id,
        "doi": spec.doi,
        "source_file": src.name,
        "source_file_checksum": src.origin_checksum,
        "source_feature_index": kept["index"],
        "unified_id": pd.array(kept["unified_id"], dtype="string"),
        "geometry": geoms,
        "geometry_type": pd.Categorical.from_codes(shapely.get_type_id(geoms), list(GEOMETRY_TYPES.values())).astype(str),
        "area_m2": kept["area_m2"],
        "centroid_lon": kept["centroid_lon"],
        "centroid_lat": kept["centroid_lat"],
        "source_area_m2": kept["source_area_m2"],
        "capacity_mw": kept["capacity_mw"],
        "install_date": pd.array(kept["install_date"], dtype="string"),
        "source_attributes": attributes,
        "ingested_at": ingested_at,
    })
    return gpd.GeoDataFrame(out[OUTPUT_COLUMNS], geometry="geometry", crs=WGS84)


def standardise_batch(gdf: gpd.GeoDataFrame, crs: CRS, spec: DatasetSpec, offset: int, counts: dict[str, int],
                       name: str) -> dict:
    """The kept rows of one batch: 2D valid WGS84 geometries, their WKB, area, centroid and mapped columns.

    Adds the batch's empties and repairs to ``counts``; duplicates are left to the caller (they span batches).
    """
    geoms = to_wgs84(gdf, crs, spec, name)
    index = np.arange(offset, offset + len(gdf), dtype="int64")
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).set_axis(index)

    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    counts["dropped_empty"] += int(empty.sum())
    keep = ~empty
    invalid = keep & ~shapely.is_valid(geoms)
    counts["repaired_invalid"] += int(invalid.sum())
    if invalid.any():
        geoms[invalid] = [repair(g) for g in geoms[invalid]]
        unrepairable = invalid & (shapely.is_missing(geoms) | shapely.is_empty(geoms))
        counts["dropped_unrepairable"] += int(unrepairable.sum())
        keep &= ~unrepairable
    geoms, attrs, index = geoms[keep], attrs.loc[keep], index[keep]
    centroids = shapely.centroid(geoms)
    return {
        "index": index, "geometry": geoms, "wkb": shapely.to_wkb(geoms), "attrs": attrs,
        "dtypes": tuple(map(str, attrs.dtypes)),
        "area_m2": geodesic_area_m2(geoms), "centroid_lon": shapely.get_x(centroids),
        "centroid_lat": shapely.get_y(centroids),
        "unified_id": mapped(attrs, spec.columns.unified_id, text=True).to_numpy(dtype=object),
        "source_area_m2": mapped(attrs, spec.columns.source_area_m2).to_numpy(),
        "capacity_mw": mapped(attrs, spec.columns.capacity_mw).to_numpy(),
        "install_date": mapped(attrs, spec.columns.install_date, text=True).to_numpy(dtype=object),
    }
