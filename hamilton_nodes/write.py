"""Stage 6: the dataset's GeoParquet 1.1 file, written atomically, and the dataset's report."""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile

from filelock import FileLock

from hamilton_nodes.standardise import StandardisedFeatures
from pvdoi.errors import StorageError
from pvdoi.manifest import DatasetSpec
from pvdoi.records import LocalFile, RecordInfo, RemoteFile


def geoparquet_file(standardised_features: StandardisedFeatures, dataset_spec: DatasetSpec, data_dir: str) -> dict:
    """Path, size and SHA-256 of the dataset's GeoParquet file (zstd, bbox covering column)."""
    out_dir = os.path.join(data_dir, "geoparquet")
    os.makedirs(out_dir, exist_ok=True)
    final = os.path.join(out_dir, f"{dataset_spec.id}.parquet")
    locks = os.path.join(data_dir, "locks")
    os.makedirs(locks, exist_ok=True)
    with FileLock(os.path.join(locks, f"geoparquet-{dataset_spec.id}.lock")):  # one writer per dataset
        return _write(standardised_features, final, dataset_spec.id)


def _write(standardised_features: StandardisedFeatures, final: str, dataset_id: str) -> dict:
    out_dir = os.path.dirname(final)
    for stale in glob.glob(os.path.join(out_dir, f".{dataset_id}.*.parquet.tmp")):
        os.unlink(stale)  # left by a process killed while writing (we hold the lock, so nobody else's)
    fd, tmp = tempfile.mkstemp(prefix=f".{dataset_id}.", suffix=".parquet.tmp", dir=out_dir)
    os.close(fd)
    try:
        standardised_features.frame.to_parquet(tmp, compression="zstd", index=False, write_covering_bbox=True,
                                               schema_version="1.1.0")
        digest = _sha256(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        raise StorageError(f"cannot write {final}: {exc}; the previous file (if any) is unchanged",
                           dataset_id=dataset_id, file=os.path.basename(final)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"path": os.path.abspath(final), "sha256": digest, "bytes": os.path.getsize(final),
            "rows": len(standardised_features.frame)}


def dataset_report(geoparquet_file: dict, standardised_features: StandardisedFeatures, dataset_spec: DatasetSpec,
                   published_record: tuple[RecordInfo, list[RemoteFile]], downloaded_files: list[LocalFile]) -> dict:
    """Everything a researcher needs to trust the output: provenance, checksums and every count."""
    info = published_record[0]
    counts = standardised_features.counts
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
        "counts": counts,
        "per_file": standardised_features.per_file,
        "expected_count": dataset_spec.expected_count,
        "notes": standardised_features.notes,
        "geoparquet": geoparquet_file,
    }


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
