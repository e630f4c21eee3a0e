"""Hamilton cache plumbing: crash-safe stores and a fast fingerprint that sees names, dtypes and CRS.

Hamilton's stock file result store writes in place (a crash or two writers leave truncated pickles)
and raises on a corrupted entry; the SQLite store uses the rollback journal (``database is locked``
under contention). These subclasses write atomically, turn an unreadable entry into a cache miss,
and use WAL with a long busy timeout. The stock pandas fingerprint hashes row by row in Python and
ignores column names and the CRS; ``_fingerprint_frame`` hashes whole columns in C.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from hamilton.caching import fingerprinting
from hamilton.caching.stores.base import ResultRetrievalError, StoredResult
from hamilton.caching.stores.file import FileResultStore
from hamilton.caching.stores.sqlite import SQLiteMetadataStore
from pydantic import BaseModel

log = logging.getLogger("pvdoi.cache")


class AtomicFileResultStore(FileResultStore):
    """A file result store whose writes are atomic and whose unreadable entries count as misses."""

    @staticmethod
    def _write_result(file_path: Path, stored_result: StoredResult) -> None:
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=file_path.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(stored_result.save())
            os.replace(tmp, file_path)
        except OSError as exc:  # a full disk costs the cache entry, not the run; a later run recomputes it
            log.warning("could not store cache entry %s (%s); the node will recompute next time", file_path.name, exc)
        finally:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)

    def get(self, data_version: str):
        try:
            return super().get(data_version)
        except Exception as exc:  # a corrupted or truncated entry: recompute the node
            log.warning("cache entry %s is unreadable (%s: %s); recomputing", data_version, type(exc).__name__, exc)
            raise ResultRetrievalError(str(exc)) from exc


class WalSQLiteMetadataStore(SQLiteMetadataStore):
    """Hamilton's SQLite metadata store in WAL mode with a long busy timeout (several writers)."""

    def __init__(self, path: str, connection_kwargs: dict | None = None) -> None:
        super().__init__(path, connection_kwargs=connection_kwargs or {"timeout": 120.0})

    def _get_connection(self):
        fresh = not hasattr(self._thread_local, "connection")
        conn = super()._get_connection()
        if fresh:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=120000")
        return conn


def _column_digest(series: pd.Series) -> bytes:
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) and series.dtype.name == "geometry":
        wkb = shapely.to_wkb(np.asarray(series.array), hex=False)
        return pd.util.hash_array(wkb.astype(object)).tobytes()
    try:
        return pd.util.hash_pandas_object(series, index=False).to_numpy().tobytes()
    except TypeError:  # unhashable cells (lists, dicts): hash their text
        return pd.util.hash_pandas_object(series.astype(str), index=False).to_numpy().tobytes()


def _fingerprint_frame(obj: pd.DataFrame, *args, **kwargs) -> str:
    """Hash of values, index, column names, dtypes and (for GeoDataFrames) every geometry column's CRS."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((type(obj).__name__, list(map(str, obj.columns)), [str(t) for t in obj.dtypes])).encode())
    h.update(pd.util.hash_pandas_object(obj.index).to_numpy().tobytes())
    for name in obj.columns:
        col = obj[name]
        crs = getattr(col, "crs", None)
        if crs is not None:
            h.update(crs.to_wkt().encode())
        h.update(_column_digest(col))
    return fingerprinting._compact_hash(h.digest())


def _fingerprint_model(obj: BaseModel, *args, **kwargs) -> str:
    return fingerprinting.hash_value(obj.model_dump_json(by_alias=True))


def _fingerprint_local_file(obj, *args, **kwargs) -> str:
    # how the file got here (downloaded now or found in the store) is not part of its data
    return fingerprinting.hash_value([obj.name, obj.path, obj.size, obj.checksum])


def register_fingerprints() -> None:
    """Register the fast frame fingerprint and a pydantic one with Hamilton (idempotent)."""
    import geopandas as gpd

    from pvdoi.records import LocalFile

    fingerprinting.hash_value.register(pd.DataFrame)(_fingerprint_frame)
    fingerprinting.hash_value.register(gpd.GeoDataFrame)(_fingerprint_frame)
    fingerprinting.hash_value.register(pd.Series)(lambda s, *a, **k: _fingerprint_frame(s.to_frame()))
    fingerprinting.hash_value.register(BaseModel)(_fingerprint_model)
    fingerprinting.hash_value.register(LocalFile)(_fingerprint_local_file)


def stores(cache_path: str) -> tuple[WalSQLiteMetadataStore, AtomicFileResultStore]:
    """The metadata and result stores for a cache directory."""
    return WalSQLiteMetadataStore(cache_path), AtomicFileResultStore(os.path.join(cache_path, "results"))
