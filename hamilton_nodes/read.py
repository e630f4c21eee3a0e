"""Stage 4: each selected vector file read into a GeoDataFrame through pyogrio's Arrow path."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from pvdoi.caching import LazyFrameMixin
from pvdoi.errors import ReadError
from pvdoi.manifest import DatasetSpec
from pvdoi.records import SourceFile

log = logging.getLogger("pvdoi.read")



@dataclass
class RawLayer(LazyFrameMixin):
    """One source file as read: its features, and how many text values had to be repaired to read it."""

    source: SourceFile
    frame: gpd.GeoDataFrame
    text_repairs: int = 0


def raw_layers(source_files: list[SourceFile], dataset_spec: DatasetSpec) -> list[RawLayer]:
    """Every selected source file read as it is, with its own columns (files are not merged here)."""
    return [_read_one(src, dataset_spec) for src in source_files]


def _read_one(src: SourceFile, spec: DatasetSpec) -> RawLayer:
    try:
        frame, repairs = _read(src.path, spec)
    except Exception as exc:  # every reader failure becomes a ReadError naming the file
        raise _read_error(src, spec, exc) from None
    if repairs:
        log.warning("%s: %d text values were not valid UTF-8; invalid bytes replaced by U+FFFD", src.name, repairs)
    return RawLayer(src, frame, repairs)


def _read(path: str, spec: DatasetSpec) -> tuple[gpd.GeoDataFrame, int]:
    opts = spec.read
    kwargs: dict = {}
    if opts.layer is not None:
        kwargs["layer"] = opts.layer
    if opts.encoding:
        kwargs["encoding"] = opts.encoding
    if path.lower().endswith(".csv") and opts.csv_lon and opts.csv_lat:
        kwargs.update(X_POSSIBLE_NAMES=opts.csv_lon, Y_POSSIBLE_NAMES=opts.csv_lat, KEEP_GEOM_COLUMNS="YES",
                      AUTODETECT_TYPE="YES", EMPTY_STRING_AS_NULL="YES")
    elif path.lower().endswith(".json") and opts.csv_lon and opts.csv_lat:
        frame = pd.read_json(path)
        geometry = gpd.points_from_xy(frame[opts.csv_lon], frame[opts.csv_lat])
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=spec.expected_crs), 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Several features with id")
        meta, table = pyogrio.read_arrow(path, **kwargs)
    table, repairs = _valid_utf8(table)
    geometry_column = meta.get("geometry_name") or "wkb_geometry"
    wkb = table.column(geometry_column).to_numpy(zero_copy_only=False)
    frame = table.drop_columns([geometry_column]).to_pandas()
    return gpd.GeoDataFrame(frame, geometry=shapely.from_wkb(wkb), crs=meta.get("crs")), repairs


def _valid_utf8(table: pa.Table) -> tuple[pa.Table, int]:
    """The table with every string value valid UTF-8 (GDAL passes raw bytes through; Arrow trusts them).

    Invalid sequences (ISO-8859-1 bytes, CESU-8 lone surrogates) become U+FFFD; the count is returned.
    """
    repairs = 0
    for i, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = table.column(i)
        if all(_is_valid(chunk) for chunk in column.chunks):
            continue
        fixed = []
        binary = pa.large_binary() if pa.types.is_large_string(field.type) else pa.binary()
        for value in column.cast(binary).to_pylist():
            if value is None:
                fixed.append(None)
                continue
            try:
                fixed.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                fixed.append(value.decode("utf-8", errors="replace"))
                repairs += 1
        table = table.set_column(i, field, pa.array(fixed, type=field.type))
    return table, repairs


def _is_valid(chunk: pa.Array) -> bool:
    try:
        chunk.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _read_error(src: SourceFile, spec: DatasetSpec, exc: BaseException) -> ReadError:
    kind = "cannot open" if isinstance(exc, (DataSourceError, DataLayerError)) else "cannot read"
    layers = ""
    if isinstance(exc, DataLayerError):
        try:
            layers = f"; layers present: {[name for name, _ in pyogrio.list_layers(src.path)]}"
        except Exception:  # the listing is only a hint
            pass
    return ReadError(f"{kind} {src.name} (from {src.origin}): {type(exc).__name__}: {exc}{layers}",
                     dataset_id=spec.id, file=src.name)
