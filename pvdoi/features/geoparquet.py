"""A dataset's GeoParquet 1.1 file written from its feature stream, atomically, with unchanged files' rows reused."""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock
from geopandas.io.arrow import _geopandas_to_arrow  # geopandas' GeoParquet encoder (what to_parquet uses)

from pvdoi.atomic import publish, sha256_file
from pvdoi.errors import StorageError
from pvdoi.features import parts as file_parts
from pvdoi.features import shared as shared_output
from pvdoi.features.stream import BatchesDisagree, FeatureStream, StandardisedFeatures
from pvdoi.features.writer import RowGroupWriter
from pvdoi.objectstore import Bucket

log = logging.getLogger("pvdoi.write")
METADATA_KEY = b"pvdoi"  # the dataset's reference (DOI, citation, licence, creators, year, ...) as JSON
ROW_GROUP_SIZE = 16_384  # rows: bounded write buffers, and row groups DuckDB can read in parallel and skip by bbox


def geoparquet_path(data_dir: str, dataset_id: str) -> str:
    """``<data_dir>/geoparquet/<dataset>.parquet``."""
    return os.path.join(data_dir, "geoparquet", f"{dataset_id}.parquet")


def write_geoparquet(features: StandardisedFeatures, data_dir: str, *, reuse: bool = True,
                     reference: dict | None = None, shared: Bucket | None = None) -> dict:
    """Stream ``features`` into the dataset's GeoParquet file (zstd, bbox covering column); its path, size, SHA-256,
    rows and counts. ``reference`` (:func:`pvdoi.citation.reference`: DOI, citation, licence, creators, ...) is
    written as JSON under the file's ``pvdoi`` metadata key (see :func:`file_reference`).

    With ``reuse``, the rows of source files unchanged since the previous file was written are taken from it
    instead of being read and standardised again (see :mod:`pvdoi.features.parts`).

    With ``shared`` (``PVDOI_OUTPUT_URL``), the output of the same inputs found there is taken as it is (with
    ``reuse``); otherwise the file written here is published there, and its path is the object's URL (see
    :mod:`pvdoi.features.shared`).
    """
    dataset_id = features.spec.id
    key = shared_output.inputs_key(features, reference) if shared is not None else None
    if shared is not None and reuse and (found := shared_output.find(shared, dataset_id, key)) is not None:
        return found
    final = geoparquet_path(data_dir, dataset_id)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    locks = os.path.join(data_dir, "locks")
    os.makedirs(locks, exist_ok=True)
    with FileLock(os.path.join(locks, f"geoparquet-{dataset_id}.lock")):  # one writer per dataset
        result = _write(features, final, dataset_id, reuse=reuse, reference=reference)
    return shared_output.publish(shared, dataset_id, key, result) if shared is not None else result


def file_reference(path: str) -> dict | None:
    """The reference a GeoParquet file of this product carries (its ``pvdoi`` metadata key), or None."""
    value = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    return json.loads(value) if value else None


def _write(features: StandardisedFeatures, final: str, dataset_id: str, *, reuse: bool,
           reference: dict | None) -> dict:
    out_dir = os.path.dirname(final)
    for stale in glob.glob(os.path.join(out_dir, f".{dataset_id}.*.parquet.tmp")):
        os.unlink(stale)  # left by a process killed while writing (we hold the lock, so nobody else's)
    keys = [file_parts.part_key(layer, features) for layer in features.layers]
    previous = file_parts.previous_parts(final, keys, sha256_file) if reuse else {}
    fd, tmp = tempfile.mkstemp(prefix=f".{dataset_id}.", suffix=".parquet.tmp", dir=out_dir)
    os.close(fd)
    try:
        parts, rows = _written(features, keys, previous, tmp, reference)
        if parts is None:  # rare: let the casts of a full pass decide the column types
            parts, rows = _written(features, keys, {}, tmp, reference)
        digest = sha256_file(tmp)
        publish(tmp, final)
    except OSError as exc:
        raise StorageError(f"cannot write {final}: {exc}; the previous file (if any) is unchanged",
                           dataset_id=dataset_id, file=os.path.basename(final)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    file_parts.save_record(final, digest, parts)
    per_file = {p.name: p.counts for p in parts}
    counts, notes = FeatureStream.totals(features.spec, per_file, [p.notes for p in parts])
    return {"path": os.path.abspath(final), "sha256": digest, "bytes": os.path.getsize(final),
            "rows": rows, "counts": counts, "per_file": per_file, "notes": notes,
            "reused_files": [p.name for p in parts if p.key in previous]}


def _written(features: StandardisedFeatures, keys: list[str | None], previous: dict, path: str,
             reference: dict | None) -> tuple[list[file_parts.FilePart] | None, int]:
    """Every source file's rows written to ``path`` in file order, and their parts; ``(None, 0)`` when reused parts
    and new rows disagree on column types, or every file was reused and none has a row (a full pass decides).

    A file whose batches disagree on column types is read again whole (see :class:`BatchesDisagree`).
    """
    for whole_layers in (False, True):
        writer = RowGroupWriter(path, row_group_size=ROW_GROUP_SIZE)
        try:
            parts, empty = _parts(features, keys, previous, writer, whole_layers=whole_layers)
            if previous and (len(writer.schemas) > 1 or not writer.rows and all(k in previous for k in keys)):
                writer.abort()
                return None, 0
            writer.close(_metadata(writer.schema or empty.schema, parts, reference), empty=empty)
            return parts, writer.rows
        except BatchesDisagree as exc:  # rare: read each file whole, as one batch
            log.info("%s: %s; reading each file whole", features.spec.id, exc)
            writer.abort()
        except BaseException:
            writer.abort()
            raise
    raise AssertionError("a file read whole cannot disagree with itself")


def _parts(features: StandardisedFeatures, keys: list[str | None], previous: dict, writer: RowGroupWriter, *,
           whole_layers: bool) -> tuple[list[file_parts.FilePart], pa.Table | None]:
    """Every source file's rows appended to ``writer`` in file order, from ``previous`` when its key is there, else
    read now; the files' parts and the stream's empty batch (None when it yielded none).

    The files read now are one pass of the stream over them, each batch encoded by geopandas' GeoParquet encoder
    (WKB, covering bbox, ``geo`` metadata) in the thread that made it.
    """
    todo = [layer for layer, key in zip(features.layers, keys) if key not in previous]
    names = [layer.source.name for layer in features.layers]
    geos: dict[str, list[dict]] = {}
    stream, empty, done = None, None, 0

    def reused_before(index: int) -> int:  # the reused files' rows up to ``index``, appended in their place
        for i in range(done, index):
            if keys[i] in previous:
                for table in previous[keys[i]].tables:
                    writer.append(table)
        return max(done, index)

    if todo:
        stream = dataclasses.replace(features, layers=todo).stream(whole_layers=whole_layers, each=_named_table)
        for name, table in stream:
            if name is None:  # the empty frame of a dataset with no rows: its columns
                empty = table
                continue
            done = reused_before(names.index(name))
            writer.append(table)
            geos.setdefault(name, []).append(file_parts.table_geo(table))
    reused_before(len(names))
    parts = [previous[key] if key in previous else file_parts.FilePart(
        name, key, [], stream.per_file[name], stream.layer_notes[name], file_parts.merged_geo(geos.get(name, [])))
        for name, key in zip(names, keys)]
    return parts, empty


def _named_table(frame) -> tuple[str | None, pa.Table]:
    name = frame["source_file"].iat[0] if len(frame) else None  # the empty frame of a dataset with no rows
    return name, _geopandas_to_arrow(frame, index=False, schema_version="1.1.0", write_covering_bbox=True)


def _metadata(schema: pa.Schema, parts: list[file_parts.FilePart], reference: dict | None) -> dict[bytes, bytes]:
    """The file's schema metadata: the first batch's, the ``geo`` bounding boxes and geometry types merged over all
    parts (what ``GeoDataFrame.to_parquet`` would write), and the dataset's reference (never the one a reused part
    brings from the previous file)."""
    metadata = dict(schema.metadata)
    metadata.pop(METADATA_KEY, None)
    if reference is not None:
        metadata[METADATA_KEY] = json.dumps(reference, sort_keys=True, ensure_ascii=False).encode()
    geo = json.loads(metadata[b"geo"])
    for column, meta in file_parts.merged_geo([p.geo for p in parts if p.rows]).items():
        geo["columns"][column].update(meta)
    metadata[b"geo"] = json.dumps(geo).encode()
    return metadata
