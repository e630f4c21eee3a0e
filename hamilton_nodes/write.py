"""Stage 6: the dataset's GeoParquet 1.1 file, written atomically, and the dataset's report."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock
from geopandas.io.arrow import _geopandas_to_arrow  # geopandas' GeoParquet encoder (what to_parquet uses)

from hamilton_nodes.standardise import FeatureStream, StandardisedFeatures
from pvdoi.errors import StorageError
from pvdoi.manifest import DatasetSpec
from pvdoi.records import LocalFile, RecordInfo, RemoteFile

ROW_GROUP_SIZE = 65_536  # rows: bounded write buffers, and row groups DuckDB can read in parallel and skip by bbox


def geoparquet_file(standardised_features: StandardisedFeatures, dataset_spec: DatasetSpec, data_dir: str) -> dict:
    """Path, size, SHA-256, rows and counts of the dataset's GeoParquet file (zstd, bbox covering column)."""
    out_dir = os.path.join(data_dir, "geoparquet")
    os.makedirs(out_dir, exist_ok=True)
    final = os.path.join(out_dir, f"{dataset_spec.id}.parquet")
    locks = os.path.join(data_dir, "locks")
    os.makedirs(locks, exist_ok=True)
    with FileLock(os.path.join(locks, f"geoparquet-{dataset_spec.id}.lock")):  # one writer per dataset
        return _write(standardised_features, final, dataset_spec.id)


def _write(features: StandardisedFeatures, final: str, dataset_id: str) -> dict:
    out_dir = os.path.dirname(final)
    for stale in glob.glob(os.path.join(out_dir, f".{dataset_id}.*.parquet.tmp")):
        os.unlink(stale)  # left by a process killed while writing (we hold the lock, so nobody else's)
    stream, table = _encoded(features)
    fd, tmp = tempfile.mkstemp(prefix=f".{dataset_id}.", suffix=".parquet.tmp", dir=out_dir)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_SIZE)
        digest = _sha256(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        raise StorageError(f"cannot write {final}: {exc}; the previous file (if any) is unchanged",
                           dataset_id=dataset_id, file=os.path.basename(final)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"path": os.path.abspath(final), "sha256": digest, "bytes": os.path.getsize(final),
            "rows": table.num_rows, "counts": stream.counts, "per_file": stream.per_file, "notes": stream.notes}


def _encoded(features: StandardisedFeatures) -> tuple[FeatureStream, pa.Table]:
    """The features as one GeoParquet 1.1 Arrow table, each batch encoded by geopandas where it is made.

    The same table ``GeoDataFrame.to_parquet`` would write for the whole frame: geopandas' own encoder per batch
    (WKB, covering bbox, ``geo`` metadata), the batches' bounding boxes and geometry types merged.
    """
    stream, tables = features.drained(each=_geoparquet_table)
    metadata = dict(tables[0].schema.metadata)
    geo = [json.loads(t.schema.metadata[b"geo"]) for t in tables]
    merged = geo[0]
    for column, meta in merged["columns"].items():
        boxes = [g["columns"][column]["bbox"] for g in geo if g["columns"][column].get("bbox")]
        if boxes:
            meta["bbox"] = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                            max(b[3] for b in boxes)]
        meta["geometry_types"] = sorted({t for g in geo for t in g["columns"][column]["geometry_types"]})
    metadata[b"geo"] = json.dumps(merged).encode()
    schema = tables[0].schema.with_metadata(metadata)
    return stream, pa.concat_tables([t.cast(schema) if t.schema != tables[0].schema else t for t in tables]
                                    ).replace_schema_metadata(metadata)


def _geoparquet_table(frame) -> pa.Table:
    return _geopandas_to_arrow(frame, index=False, schema_version="1.1.0", write_covering_bbox=True)


def dataset_report(geoparquet_file: dict, dataset_spec: DatasetSpec, published_record: tuple[RecordInfo, list[RemoteFile]],
                   downloaded_files: list[LocalFile]) -> dict:
    """Everything a researcher needs to trust the output: provenance, checksums and every count."""
    info = published_record[0]
    return {
        "dataset_id": dataset_spec.id,
        "doi": dataset_spec.doi,
        "title": dataset_spec.title,
        "license": dataset_spec.license,
        "repository": info.repository,
        "record_id": info.record_id,
        "record_version": info.version,
        "record_license": info.license,
        "files": [{"name": f.name, "checksum": f.checksum, "size": f.size} for f in downloaded_files],
        "counts": geoparquet_file["counts"],
        "per_file": geoparquet_file["per_file"],
        "expected_count": dataset_spec.expected_count,
        "notes": geoparquet_file["notes"],
        "geoparquet": {k: geoparquet_file[k] for k in ("path", "sha256", "bytes", "rows")},
    }


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
