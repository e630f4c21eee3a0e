"""The attribute rules of standardisation: mapped columns, attribute JSON, row ids and exact duplicates.

Part of the engine (:mod:`pvdoi.features`): rules for one batch, called by :mod:`pvdoi.features.batch`.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from pvdoi.manifest import ColumnMap


def duplicated(wkb: np.ndarray, attributes: np.ndarray, seen: set) -> np.ndarray:
    """Exact duplicates of an earlier row: the same geometry (WKB bytes) and the same attributes (JSON text).

    ``seen`` holds a 128-bit BLAKE2b digest of each earlier row's (WKB, JSON) pair, of earlier batches too, and
    gets this batch's; the first copy stays. Digests instead of the pairs themselves keep the set ~10x smaller
    (a few MB per 100,000 rows rather than the rows' bytes); two different rows sharing a digest is a
    cryptographic collision, not a practical concern.
    """
    add, blake2b, dup = seen.add, hashlib.blake2b, np.zeros(len(wkb), dtype=bool)
    for i, (geometry, text) in enumerate(zip(wkb.tolist(), attributes.tolist())):
        h = blake2b(geometry, digest_size=16)
        h.update(text.encode())  # WKB is self-delimiting: the pair is unambiguous
        key = h.digest()
        if key in seen:
            dup[i] = True
        else:
            add(key)
    return dup


def uids(prefix: str, index: np.ndarray) -> list[str]:
    """Each row's stable id: a hash of ``dataset_id \\x1f source_file \\x1f`` (the prefix) and its index in the file."""
    blake2b = hashlib.blake2b
    return [blake2b(f"{prefix}{i}".encode(), digest_size=10).hexdigest() for i in index.tolist()]


def mapped(attrs: pd.DataFrame, mapping: ColumnMap | None, *, text: bool = False) -> pd.Series:
    """The first non-null value among the mapped source columns present in this file."""
    result = pd.Series(pd.NA if text else np.nan, index=attrs.index, dtype="string" if text else "float64")
    if mapping is None:
        return result
    for column in mapping.from_:
        if column not in attrs.columns:
            continue
        values = attrs[column]
        if text:
            values = _texts(values)
        else:
            values = pd.to_numeric(values, errors="coerce").astype("float64") * mapping.scale
        result = result.fillna(values)
    return result.astype("string" if text else "float64")


def _texts(values: pd.Series) -> pd.Series:
    """``_as_text`` of every non-null value, vectorised where the column's type allows it."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("string")
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy()
        whole = np.isfinite(v) & (np.floor(v) == v) & (np.abs(v) < 2**53)
        if whole.all() or not (~whole & ~np.isnan(v)).any():
            out = pd.Series(pd.NA, index=values.index, dtype="string")
            out[whole] = v[whole].astype(np.int64).astype(str)
            return out
    elif values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string":
        return values.astype("string")
    return values.map(_as_text, na_action="ignore").astype("string")


def _as_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return str(value)


def json_rows(attrs: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Every original attribute of every row as a JSON object text (NaN as null), one per row, and its writer.

    DuckDB's ``to_json`` over the Arrow table does this in C++; frames Arrow cannot take (mixed
    Python objects) go through pandas' slower JSON writer.
    """
    if not len(attrs.columns):
        return np.full(len(attrs), "{}", dtype=object), "none"
    try:
        table = pa.Table.from_pandas(attrs.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        text = attrs.reset_index(drop=True).to_json(orient="records", lines=True, date_format="iso",
                                                     force_ascii=False, default_handler=str)
        return np.array(text.rstrip("\n").split("\n") if len(attrs) else [], dtype=object), "pandas"
    cursor = _json_database().cursor()  # a cursor per call: threads write JSON side by side
    try:
        cursor.register("attrs", table)
        rows = cursor.execute("SELECT to_json(attrs)::VARCHAR FROM attrs").fetch_arrow_table().column(0)
    finally:
        cursor.close()
    return rows.to_numpy(zero_copy_only=False).astype(object), "duckdb"


@functools.cache
def _json_database() -> duckdb.DuckDBPyConnection:
    """The in-memory DuckDB that writes attribute JSON, one per process (opening one per batch cost more CPU than the
    JSON of its rows), with one thread: DuckDB's own threads only took the cores from the reading and standardising
    threads beside it."""
    return duckdb.connect(config={"threads": 1, "allocator_flush_threshold": "1MB",
                                   "allocator_bulk_deallocation_flush_threshold": "1MB"})
