"""Stage 4: each selected vector file read into a GeoDataFrame through pyogrio's Arrow path."""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from pvdoi.errors import ReadError
from pvdoi.manifest import DatasetSpec
from pvdoi.records import SourceFile

log = logging.getLogger("pvdoi.read")

_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_TEXT_FORMATS = (".geojson", ".json")


@dataclass
class RawLayer:
    """One source file as read: its features, and how many text values had to be repaired to read it."""

    source: SourceFile
    frame: gpd.GeoDataFrame
    text_repairs: int = 0


def raw_layers(source_files: list[SourceFile], dataset_spec: DatasetSpec, data_dir: str) -> list[RawLayer]:
    """Every selected source file read as it is, with its own columns (files are not merged here)."""
    return [_read_one(src, dataset_spec, data_dir) for src in source_files]


def _read_one(src: SourceFile, spec: DatasetSpec, data_dir: str) -> RawLayer:
    try:
        return RawLayer(src, _read(src.path, spec))
    except Exception as exc:  # every reader failure becomes a ReadError naming the file
        if not (_is_text_error(exc) and src.path.lower().endswith(_TEXT_FORMATS)):
            raise _read_error(src, spec, exc) from None
    fixed, repairs = _repaired_copy(src, data_dir, spec.id)
    log.warning("%s: %d invalid UTF-8 sequences or lone surrogates replaced by U+FFFD", src.name, repairs)
    try:
        return RawLayer(src, _read(fixed, spec), repairs)
    except Exception as exc:
        raise _read_error(src, spec, exc) from None


def _read(path: str, spec: DatasetSpec) -> gpd.GeoDataFrame:
    opts = spec.read
    kwargs: dict = {"use_arrow": True}
    if opts.layer is not None:
        kwargs["layer"] = opts.layer
    if opts.encoding:
        kwargs["encoding"] = opts.encoding
    if path.lower().endswith(".csv") and opts.csv_lon and opts.csv_lat:
        kwargs.update(X_POSSIBLE_NAMES=opts.csv_lon, Y_POSSIBLE_NAMES=opts.csv_lat, KEEP_GEOM_COLUMNS="NO")
    elif path.lower().endswith(".json") and opts.csv_lon and opts.csv_lat:
        frame = pd.read_json(path)
        geometry = gpd.points_from_xy(frame[opts.csv_lon], frame[opts.csv_lat])
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=spec.expected_crs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Several features with id")
        return pyogrio.read_dataframe(path, **kwargs)


def _is_text_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return isinstance(exc, UnicodeDecodeError) or "Wrapping" in text or "utf-8" in text.lower() or "UTF8" in text


def _repaired_copy(src: SourceFile, data_dir: str, dataset_id: str) -> tuple[str, int]:
    """A UTF-8-clean copy of a text vector file (invalid bytes and lone surrogates become U+FFFD)."""
    with open(src.path, "rb") as fh:
        raw = fh.read()
    text = raw.decode("utf-8", errors="replace")
    repairs = text.count("\ufffd") - raw.count("\ufffd".encode())
    text, n = _LONE_SURROGATE.subn(r"\\ufffd", text)
    repaired_dir = os.path.join(data_dir, "work", dataset_id, "utf8-repaired", src.origin_checksum.split(":")[-1][:16])
    os.makedirs(repaired_dir, exist_ok=True)
    out = os.path.join(repaired_dir, os.path.basename(src.path))
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, out)
    return out, repairs + n


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
