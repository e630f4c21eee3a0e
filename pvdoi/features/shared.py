"""A dataset's GeoParquet file under a URL that several machines share (``PVDOI_OUTPUT_URL``), keyed on its inputs.

The same inputs make the same rows (only ``ingested_at`` tells when), so a machine that finds the output of its
inputs there takes it instead of writing its own. The inputs key hashes what the file is a function of: each source
file's part key (its name, origin and checksum, the engine's version and the manifest entry:
:func:`pvdoi.features.parts.part_key`) and the dataset's reference (in the file's metadata). Different inputs never
share a key, so two machines on different manifests or record versions never overwrite each other.

Under the URL::

    <dataset>/<inputs>-<sha256 of the file, 16 hex>.parquet   the file, published first (temporary key, verified)
    <dataset>/<inputs>.json                                  its record (path, SHA-256, bytes, rows, counts), last

A record names its file by content: two machines publishing the same inputs at once leave two files and a record
that names one of them, never a record describing another file than the one it names. The file is written locally
first, as without a URL (``<data_dir>/geoparquet/``, atomically, with its reused parts), then published.
"""

from __future__ import annotations

import hashlib
import json
import logging

from pvdoi.errors import StorageError
from pvdoi.features.parts import part_key
from pvdoi.features.stream import StandardisedFeatures
from pvdoi.objectstore import Bucket

log = logging.getLogger("pvdoi.write")
RECORDED = ("sha256", "bytes", "rows", "counts", "per_file", "notes")


def inputs_key(features: StandardisedFeatures, reference: dict | None) -> str | None:
    """What the dataset's file is a function of, hashed (32 hex); None when a layer has no lineage (from memory)."""
    keys = [part_key(layer, features) for layer in features.layers]
    if None in keys:
        return None
    text = json.dumps({"parts": keys, "reference": reference}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def find(shared: Bucket, dataset_id: str, key: str | None) -> dict | None:
    """The published output of these inputs (as :func:`pvdoi.features.geoparquet.write_geoparquet` returns it, its
    path the object's URL, every file counted as reused), or None when there is none or its file is not whole."""
    if key is None:
        return None
    try:
        record = shared.read_json(f"{dataset_id}/{key}.json")
        if record is None or record.get("inputs") != key or not all(k in record for k in (*RECORDED, "key")):
            return None
        size = shared.size(record["key"])
    except OSError as exc:
        raise _error(dataset_id, shared.url_of(f"{dataset_id}/{key}.json"), "read", exc) from None
    if size != record["bytes"]:
        log.warning("[dataset %r, file %r] the shared output has %s bytes, its record says %d; writing it again",
                    dataset_id, shared.url_of(record["key"]), size, record["bytes"])
        return None
    log.info("%s: the output of these inputs is in the shared store: %s", dataset_id, shared.url_of(record["key"]))
    return {**{k: record[k] for k in RECORDED}, "path": shared.url_of(record["key"]),
            "reused_files": list(record["per_file"])}


def publish(shared: Bucket, dataset_id: str, key: str | None, result: dict) -> dict:
    """The local file of ``result`` published under the URL (then its record, when it has an inputs key); ``result``
    with the object's URL as its path."""
    name = f"{dataset_id}/{key or 'unkeyed'}-{result['sha256'][:16]}.parquet"
    try:
        url = shared.publish(result["path"], name, sha256=result["sha256"])
        if key is not None:
            shared.publish_json(f"{dataset_id}/{key}.json", {k: result[k] for k in RECORDED} | {
                "key": name, "inputs": key})
    except OSError as exc:
        raise _error(dataset_id, shared.url_of(name), "publish", exc) from None
    log.info("%s: published %s", dataset_id, url)
    return {**result, "path": url}


def _error(dataset_id: str, url: str, what: str, exc: OSError) -> StorageError:
    return StorageError(f"cannot {what} the shared output {url}: {exc}", dataset_id=dataset_id,
                        file=url.rpartition("/")[2])
