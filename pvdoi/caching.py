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
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
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

    def initialize(self, run_id) -> None:
        try:
            super().initialize(run_id)
        except (sqlite3.Error, OSError) as exc:  # a full disk: the run goes on, its outputs say what failed
            self._rollback()
            log.warning("could not record the cache run id (%s); this run's cache entries may be lost", exc)

    def set(self, *args, cache_key: str, **kwargs) -> None:
        try:
            # Hamilton's INSERT OR IGNORE keeps a key's first data version: a node recomputed under the same key (a
            # rewritten output) would come back as the old result on every later run; the latest one is kept instead
            self.connection.execute("DELETE FROM cache_metadata WHERE cache_key = ?", (cache_key,))
            super().set(*args, cache_key=cache_key, **kwargs)  # commits the delete with the insert
        except (sqlite3.Error, OSError) as exc:  # a full disk costs the cache entry, not the run
            self._rollback()
            log.warning("could not record cache metadata (%s); the node will recompute next time", exc)

    def _rollback(self) -> None:
        try:
            self.connection.rollback()
        except sqlite3.Error:
            pass

    def _get_connection(self):
        fresh = not hasattr(self._thread_local, "connection")
        conn = super()._get_connection()
        if fresh:
            conn.execute("PRAGMA busy_timeout=120000")
            _use_wal(conn)
            # no fsync per commit (only at checkpoints): still never corrupt in WAL mode, and a power cut costs at
            # most the last entries (recomputed); the datasets' threads take turns at ~30 commits per run
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn


def _use_wal(conn: sqlite3.Connection, *, wait_s: float = 60.0) -> None:
    """Put the database in WAL mode (persistent: done once per file).

    Switching modes needs the database to itself and SQLite answers SQLITE_BUSY at once, without its busy
    handler, while another process (a parallel dataset) creates the tables; so the switch is tried again.
    """
    deadline = time.monotonic() + wait_s
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _HashSink:
    """A write-only file object that hashes what is written (Arrow IPC streams into it)."""

    def __init__(self, h) -> None:
        self.h, self.closed = h, False

    def write(self, data) -> int:
        self.h.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _fingerprint_frame(obj: pd.DataFrame, *args, **kwargs) -> str:
    """Hash of values, index, column names, dtypes and every geometry column's CRS.

    The frame is streamed as Arrow IPC (geometries as vectorised WKB) into the hash: C speed, and
    column names and types are part of the stream's schema.
    """
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((type(obj).__name__, list(map(str, obj.columns)), [str(t) for t in obj.dtypes])).encode())
    plain = {}
    for name in obj.columns:
        col = obj[name]
        crs = getattr(col, "crs", None)
        if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and col.dtype.name == "geometry":
            h.update((crs.to_wkt() if crs is not None else "no crs").encode())
            plain[str(name)] = shapely.to_wkb(np.asarray(col.array))
        else:
            plain[str(name)] = col
    frame = pd.DataFrame(plain, index=obj.index)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # mixed Python objects: hash their text
        table = pa.Table.from_pandas(frame.astype(str), preserve_index=True)
    sink = _HashSink(h)
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema) as writer:
        writer.write_table(table)
    return fingerprinting._compact_hash(h.digest())


def _fingerprint_model(obj: BaseModel, *args, **kwargs) -> str:
    # a manifest entry by what ingestion reads of it: declared attributes are dbt's (they change no file)
    ingest_json = getattr(obj, "ingest_json", None)
    return fingerprinting.hash_value(ingest_json() if ingest_json else obj.model_dump_json(by_alias=True))


def _fingerprint_local_file(obj, *args, **kwargs) -> str:
    # how the file got here (downloaded now or found in the store) is not part of its data
    return fingerprinting.hash_value([obj.name, obj.path, obj.size, obj.checksum])


def _fingerprint_features(obj, *args, **kwargs) -> str:
    """Standardised features by their lineage and run time, or by their content when they come from memory."""
    content = obj.lineage if obj.lineage is not None else _fingerprint_frame(obj.frame)
    return fingerprinting.hash_value([content, str(obj.ingested_at)])


def register_fingerprints() -> None:
    """Register the fast frame fingerprint and a pydantic one with Hamilton (idempotent)."""
    import geopandas as gpd

    from pvdoi.features.reader import RawLayer
    from pvdoi.features.stream import StandardisedFeatures
    from pvdoi.records import LocalFile

    fingerprinting.hash_value.register(pd.DataFrame)(_fingerprint_frame)
    fingerprinting.hash_value.register(gpd.GeoDataFrame)(_fingerprint_frame)
    fingerprinting.hash_value.register(pd.Series)(lambda s, *a, **k: _fingerprint_frame(s.to_frame()))
    fingerprinting.hash_value.register(BaseModel)(_fingerprint_model)
    fingerprinting.hash_value.register(LocalFile)(_fingerprint_local_file)
    fingerprinting.hash_value.register(RawLayer)(_fingerprint_lazy)
    fingerprinting.hash_value.register(StandardisedFeatures)(_fingerprint_features)


def prepare_cache(cache_path: str) -> None:
    """Create the cache's metadata database in WAL mode before parallel runs open it (their errors are theirs)."""
    try:
        WalSQLiteMetadataStore(cache_path).connection.close()
    except (sqlite3.Error, OSError) as exc:
        log.warning("could not prepare the cache at %s (%s)", cache_path, exc)


def stores(cache_path: str) -> tuple[WalSQLiteMetadataStore, AtomicFileResultStore]:
    """The metadata and result stores for a cache directory."""
    return WalSQLiteMetadataStore(cache_path), AtomicFileResultStore(os.path.join(cache_path, "results"))


def _fingerprint_lazy(obj, *args, **kwargs) -> str:
    """The record's other fields plus its lineage (what produced the frame) when it has one, else the frame itself.

    A lineage (source checksums, manifest entry, code) versions a frame without hashing millions of rows.
    """
    rest = {k: v for k, v in obj.__dict__.items() if k not in ("frame", "_frame_blob")}
    lineage = getattr(obj, "lineage", None)
    frame = lineage if lineage is not None else _fingerprint_frame(obj.frame)
    return fingerprinting.hash_value([fingerprinting.hash_value(rest), frame])
