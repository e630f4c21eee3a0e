"""Reading a source file through pyogrio's Arrow path, in batches of GeoDataFrames (the read node's engine)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from pvdoi.errors import PVDOIError, ReadError
from pvdoi.manifest import DatasetSpec
from pvdoi.features import ENGINE_VERSION, readahead
from pvdoi.records import SourceFile

log = logging.getLogger("pvdoi.read")
BATCH_SIZE = 8_192  # features per Arrow batch: few in memory at once, parsing overlapping standardising

# pyogrio's warnings (GDAL's while it opens a file, raised where contextlib enters its reader) shown every time, not
# once per process, so that each is logged and counted (see pvdoi.features.gdal)
warnings.filterwarnings("always", category=RuntimeWarning, module=r"contextlib|pyogrio\.")


class LazyFrameMixin:
    """For records that hold a GeoDataFrame in ``frame``: pickled compactly, decoded only when used.

    A cache hit on a large frame then costs reading its bytes, not rebuilding millions of
    geometries, and nodes downstream that also hit never decode it at all.
    """

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if state.get("frame") is not None:
            state["_frame_blob"] = pickle.dumps(frame_state(state.pop("frame")), protocol=5)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __getattr__(self, name: str):
        blob = self.__dict__.get("_frame_blob")
        if name != "frame" or blob is None:
            raise AttributeError(name)
        frame = frame_from_state(pickle.loads(blob))
        self.__dict__["frame"] = frame
        del self.__dict__["_frame_blob"]
        return frame


def frame_state(frame) -> tuple:
    """A GeoDataFrame as plain pickle-fast parts: attributes, vectorised WKB and the CRS as WKT."""
    name = frame.geometry.name
    crs = frame.crs.to_wkt() if frame.crs is not None else None
    return pd.DataFrame(frame.drop(columns=name)), name, shapely.to_wkb(np.asarray(frame.geometry.array)), crs


def frame_from_state(state: tuple):
    """The GeoDataFrame that :func:`frame_state` took apart."""
    attrs, name, wkb, crs = state
    geometry = gpd.GeoSeries(shapely.from_wkb(wkb), index=attrs.index, crs=crs, name=name)
    return gpd.GeoDataFrame(attrs, geometry=geometry, crs=crs)


@dataclass
class RawLayer(LazyFrameMixin):
    """One selected source file, ready to be read: its features come from :func:`layer_batches`.

    ``frame`` holds the features when they are already in memory (a caller's frame); otherwise the file is
    read batch by batch while its earlier batches are standardised, so it is never held whole.
    """

    source: SourceFile
    frame: gpd.GeoDataFrame | None = None
    text_repairs: int = 0

    @property
    def lineage(self) -> str | None:
        """What the features are a function of (the file's checksum and this reader's code), when read from disk.

        The cache's data version of a layer read from disk: no need to hash the features themselves.
        """
        if self.frame is not None:
            return None
        return hashlib.sha256(repr((dataclasses.astuple(self.source), ENGINE_VERSION)).encode()).hexdigest()


def layer_batches(layer: RawLayer, spec: DatasetSpec, *, batch_size: int | None = BATCH_SIZE
                  ) -> Iterator[tuple[gpd.GeoDataFrame, int]]:
    """The layer's features in file order as ``(frame, text values repaired)`` batches (None: one batch).

    GDAL parses the next batches in a second thread (it releases the GIL) while the caller works on this one; the
    caller's thread turns each into a frame, so that the reading thread, the longer of the two, only parses (in a
    process kept to one thread, all in the caller's: :mod:`pvdoi.features.readahead`).
    Every reader failure is a ReadError naming the file.
    """
    if layer.frame is not None:
        yield layer.frame, layer.text_repairs
        return
    src, repairs = layer.source, 0
    try:
        for make in readahead.ahead(_read_batches(src.path, spec, batch_size), spec.id, src.name):
            frame, fixed = make()
            repairs += fixed
            yield frame, fixed
    except PVDOIError:
        raise
    except Exception as exc:  # every reader failure becomes a ReadError naming the file
        raise _read_error(src, spec, exc) from None
    if repairs:
        log.warning("%s: %d text values were not valid UTF-8; invalid bytes replaced by U+FFFD", src.name, repairs)


def _read_batches(path: str, spec: DatasetSpec, batch_size: int | None) -> Iterator[Callable[[], tuple]]:
    """The file's batches as they are parsed, each as a function that makes its ``(frame, text repairs)``."""
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
        yield partial(_json_points, path, spec)
        return
    if batch_size is None:  # the whole file in one batch
        meta, table = pyogrio.read_arrow(path, **kwargs)
        yield partial(_frame, table, meta.get("geometry_name") or "wkb_geometry", meta.get("crs"))
        return
    with pyogrio.open_arrow(path, batch_size=batch_size, use_pyarrow=True, **kwargs) as (meta, reader):
        geometry_column = meta.get("geometry_name") or "wkb_geometry"
        crs, empty = meta.get("crs"), True
        for batch in reader:
            empty = False
            yield partial(_frame, pa.Table.from_batches([batch]), geometry_column, crs)
        if empty:  # a layer without features still has its columns
            yield partial(_frame, reader.schema.empty_table(), geometry_column, crs)


def _json_points(path: str, spec: DatasetSpec) -> tuple[gpd.GeoDataFrame, int]:
    """A JSON table of records with coordinate columns (``csv_lon``, ``csv_lat``) as points."""
    frame = pd.read_json(path)
    geometry = gpd.points_from_xy(frame[spec.read.csv_lon], frame[spec.read.csv_lat])
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=spec.expected_crs), 0


# The layer's integer and boolean columns as pandas' nullable types: plain ``to_pandas`` makes an integer column
# float64 in a batch where it has a null and int64 where it has none, so batches of one file disagreed (and an integer
# read 1.0 in the JSON attributes); with the layer's own types every batch agrees and integers stay integers.
_NULLABLE = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
             pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
             pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype()}


def _frame(table: pa.Table, geometry_column: str, crs) -> tuple[gpd.GeoDataFrame, int]:
    table, repairs = _valid_utf8(table)
    wkb = table.column(geometry_column).to_numpy(zero_copy_only=False)
    frame = table.drop_columns([geometry_column]).to_pandas(types_mapper=_NULLABLE.get)
    return gpd.GeoDataFrame(frame, geometry=shapely.from_wkb(wkb), crs=crs), repairs


def read_layer(layer: RawLayer, spec: DatasetSpec) -> gpd.GeoDataFrame:
    """The whole layer in one frame (for callers that want it whole; the dataflow reads in batches)."""
    frames = [frame for frame, _ in layer_batches(layer, spec)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


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
