"""Stage 5: one harmonised GeoDataFrame in EPSG:4326 with valid 2D geometries, areas and provenance."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS, Transformer

from hamilton_nodes.read import RawLayer
from pvdoi.caching import LazyFrameMixin
from pvdoi.errors import SchemaError
from pvdoi.manifest import ColumnMap, DatasetSpec

WGS84 = CRS.from_epsg(4326)
EQUAL_AREA = CRS.from_epsg(6933)  # WGS 84 / NSIDC EASE-Grid 2.0 Global: equal-area on the WGS84 ellipsoid
_TO_EQUAL_AREA = Transformer.from_crs(WGS84, EQUAL_AREA, always_xy=True)
GEOMETRY_TYPES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
                  5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
OUTPUT_COLUMNS = [
    "feature_uid", "dataset_id", "doi", "source_file", "source_file_checksum", "source_feature_index", "unified_id",
    "geometry", "geometry_type", "area_m2", "centroid_lon", "centroid_lat", "source_area_m2", "capacity_mw",
    "install_date", "source_attributes", "ingested_at",
]
COUNTS = ("read", "repaired_invalid", "repaired_text", "dropped_empty", "dropped_unrepairable", "dropped_duplicate",
          "written")


@dataclass
class StandardisedFeatures(LazyFrameMixin):
    """The harmonised features of a dataset and the counts of everything that changed on the way."""

    frame: gpd.GeoDataFrame
    counts: dict[str, int]
    per_file: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def standardised_features(raw_layers: list[RawLayer], dataset_spec: DatasetSpec) -> StandardisedFeatures:
    """The dataset's features standardised file by file, then stacked on the harmonised columns."""
    ingested_at = pd.Timestamp(datetime.now(timezone.utc)).floor("s")
    frames, per_file, notes = [], {}, []
    for layer in raw_layers:
        frame, counts, note = _standardise_layer(layer, dataset_spec, ingested_at)
        frames.append(frame)
        per_file[layer.source.name] = counts
        notes.extend(note)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)
    totals = {k: sum(c[k] for c in per_file.values()) for k in COUNTS}
    if dataset_spec.expected_count is not None and totals["read"] != dataset_spec.expected_count:
        notes.append(f"manifest expects {dataset_spec.expected_count} features, the files hold {totals['read']}")
    return StandardisedFeatures(frame=frame, counts=totals, per_file=per_file, notes=notes)


def _standardise_layer(layer: RawLayer, spec: DatasetSpec, ingested_at: pd.Timestamp):
    src, gdf = layer.source, layer.frame
    counts = dict.fromkeys(COUNTS, 0)
    counts["read"] = len(gdf)
    counts["repaired_text"] = layer.text_repairs
    notes: list[str] = []
    geoms = _to_wgs84(gdf, spec, src.name, notes)
    index = np.arange(len(gdf), dtype="int64")
    attrs = gdf.drop(columns=gdf.geometry.name)

    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    counts["dropped_empty"] = int(empty.sum())
    keep = ~empty
    invalid = keep & ~shapely.is_valid(geoms)
    counts["repaired_invalid"] = int(invalid.sum())
    if invalid.any():
        geoms[invalid] = [_repair(g) for g in geoms[invalid]]
        unrepairable = invalid & (shapely.is_missing(geoms) | shapely.is_empty(geoms))
        counts["dropped_unrepairable"] = int(unrepairable.sum())
        keep &= ~unrepairable
    geoms, attrs, index = geoms[keep], attrs.loc[keep], index[keep]
    attributes = _json_rows(attrs)

    dup = _duplicated(geoms, attributes)
    counts["dropped_duplicate"] = int(dup.sum())
    geoms, attrs, index, attributes = geoms[~dup], attrs.loc[~dup], index[~dup], attributes[~dup]
    counts["written"] = len(geoms)
    assert counts["read"] == counts["written"] + counts["dropped_empty"] + counts["dropped_unrepairable"] + \
        counts["dropped_duplicate"], counts

    centroids = shapely.centroid(geoms)
    out = pd.DataFrame({
        "feature_uid": [_uid(spec.id, src.name, i) for i in index],
        "dataset_id": spec.id,
        "doi": spec.doi,
        "source_file": src.name,
        "source_file_checksum": src.origin_checksum,
        "source_feature_index": index,
        "unified_id": _mapped(attrs, spec.columns.unified_id, text=True),
        "geometry": geoms,
        "geometry_type": pd.Categorical.from_codes(shapely.get_type_id(geoms), list(GEOMETRY_TYPES.values())).astype(str),
        "area_m2": geodesic_area_m2(geoms),
        "centroid_lon": shapely.get_x(centroids),
        "centroid_lat": shapely.get_y(centroids),
        "source_area_m2": _mapped(attrs, spec.columns.source_area_m2),
        "capacity_mw": _mapped(attrs, spec.columns.capacity_mw),
        "install_date": _mapped(attrs, spec.columns.install_date, text=True),
        "source_attributes": attributes,
        "ingested_at": ingested_at,
    })
    return out[OUTPUT_COLUMNS], counts, notes


def _to_wgs84(gdf: gpd.GeoDataFrame, spec: DatasetSpec, name: str, notes: list[str]) -> np.ndarray:
    crs = gdf.crs
    if crs is None:
        if spec.expected_crs is None:
            raise SchemaError("the file has no CRS and the manifest declares none (set expected_crs)",
                              dataset_id=spec.id, file=name)
        crs = CRS.from_user_input(spec.expected_crs)
        notes.append(f"{name}: no CRS in the file; used the declared {spec.expected_crs}")
    crs = CRS.from_user_input(crs)
    if len(crs.axis_info) > 2:
        crs = crs.to_2d()
    geoms = shapely.force_2d(np.asarray(gdf.geometry.array, dtype=object))
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


def _repair(geom):
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
    """Area on the WGS84 ellipsoid via the EASE-Grid 2.0 equal-area projection (0 for points and lines)."""
    projected = shapely.transform(geoms, lambda xy: np.column_stack(_TO_EQUAL_AREA.transform(xy[:, 0], xy[:, 1])))
    return shapely.area(projected)


def _duplicated(geoms: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """Exact duplicates of an earlier row: the same geometry (WKB) and the same attributes (their JSON text).

    Compared byte for byte by DuckDB (a window over both columns, in C++), not through hashes.
    """
    table = pa.table({"i": pa.array(np.arange(len(geoms), dtype="int64")),
                      "g": pa.array(shapely.to_wkb(geoms), type=pa.binary()),
                      "a": pa.array(attributes, type=pa.string())})
    con = duckdb.connect()
    try:
        con.register("rows", table)
        later = con.execute("SELECT i FROM (SELECT i, row_number() OVER (PARTITION BY g, a ORDER BY i) AS n "
                            "FROM rows) WHERE n > 1").fetch_arrow_table().column(0).to_numpy()
    finally:
        con.close()
    dup = np.zeros(len(geoms), dtype=bool)
    dup[later] = True
    return dup


def _uid(dataset_id: str, source_file: str, index: int) -> str:
    return hashlib.blake2b(f"{dataset_id}\x1f{source_file}\x1f{index}".encode(), digest_size=10).hexdigest()


def _mapped(attrs: pd.DataFrame, mapping: ColumnMap | None, *, text: bool = False) -> pd.Series:
    """The first non-null value among the mapped source columns present in this file."""
    result = pd.Series(pd.NA if text else np.nan, index=attrs.index, dtype="string" if text else "float64")
    if mapping is None:
        return result
    for column in mapping.from_:
        if column not in attrs.columns:
            continue
        values = attrs[column]
        if text:
            values = values.map(_as_text, na_action="ignore").astype("string")
        else:
            values = pd.to_numeric(values, errors="coerce") * mapping.scale
        result = result.fillna(values)
    return result.astype("string" if text else "float64")


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return str(value)


def _json_rows(attrs: pd.DataFrame) -> np.ndarray:
    """Every original attribute of every row as a JSON object text (NaN as null), one per row.

    DuckDB's ``to_json`` over the Arrow table does this in C++; frames Arrow cannot take (mixed
    Python objects) go through pandas' slower JSON writer.
    """
    if not len(attrs.columns):
        return np.full(len(attrs), "{}", dtype=object)
    try:
        table = pa.Table.from_pandas(attrs.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        text = attrs.reset_index(drop=True).to_json(orient="records", lines=True, date_format="iso",
                                                     force_ascii=False, default_handler=str)
        return np.array(text.rstrip("\n").split("\n") if len(attrs) else [], dtype=object)
    con = duckdb.connect()
    try:
        con.register("attrs", table)
        rows = con.execute("SELECT to_json(attrs)::VARCHAR FROM attrs").fetch_arrow_table().column(0)
    finally:
        con.close()
    return rows.to_numpy(zero_copy_only=False).astype(object)
