"""The rows of a dataset's previous GeoParquet file that came from source files that have not changed.

A dataset whose record publishes a new version of one file (say 5 MB of 150 MB) need not parse and standardise the
other files again: their rows are in the previous output, in file order. Each write records, in
``<data>/geoparquet_files/<dataset>.json``, the SHA-256 of the file and for every source file its key (name, origin
checksum, the manifest entry and the code that reads, standardises and encodes it), counts, notes and bounding box;
the next write takes those rows back when the key is the same and the file on disk is the one recorded. Not
Hamilton's cache: Hamilton caches whole nodes, and this node (the dataset's GeoParquet) did change; these are
pieces of its previous result. Reused rows keep the ``ingested_at`` of the run that standardised them.

Part of the engine that ``pvdoi.features.geoparquet`` writes with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pvdoi.features import ENGINE_VERSION
from pvdoi.features.reader import RawLayer
from pvdoi.features.stream import StandardisedFeatures
from pvdoi.atomic import write_json_atomic

log = logging.getLogger("pvdoi.write")

@dataclass
class FilePart:
    """One source file's rows of a GeoParquet file, with what its report needs."""

    name: str
    key: str | None
    tables: list[pa.Table]  # its rows of the previous file when reused (rows read now are written as they come)
    counts: dict[str, int]
    notes: list[str]
    geo: dict  # per geometry column: bbox and geometry_types of these rows

    @property
    def rows(self) -> int:
        return self.counts["written"]

    def record(self) -> dict:
        return {"name": self.name, "key": self.key, "counts": self.counts, "notes": self.notes, "geo": self.geo}


def part_key(layer: RawLayer, features: StandardisedFeatures) -> str | None:
    """What a file's rows are a function of; None when they come from memory (never reused)."""
    if layer.lineage is None:
        return None
    src = layer.source  # not its path: the folder a dataset's files are extracted to is named after all of them
    return hashlib.sha256(repr((src.name, src.origin, src.origin_checksum, ENGINE_VERSION,
                                features.spec.ingest_json())).encode()).hexdigest()


def record_path(final: str) -> str:
    """``<data>/geoparquet_files/<dataset>.json`` for ``<data>/geoparquet/<dataset>.parquet``."""
    return os.path.join(os.path.dirname(os.path.dirname(final)), "geoparquet_files", f"{Path(final).stem}.json")


def previous_parts(final: str, keys: list[str | None], sha256) -> dict[str, FilePart]:
    """The previous file's parts whose key is in ``keys``, when the file on disk is the one recorded; else none."""
    try:
        with open(record_path(final), encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return {}
    wanted = {k for k in keys if k is not None} & {p["key"] for p in record.get("files", []) if p.get("key")}
    if not wanted or not os.path.exists(final) or sha256(final) != record.get("sha256"):
        return {}
    table = pq.read_table(final)
    parts, start, matches = {}, 0, True
    for p in record["files"]:
        rows = table.slice(start, p["counts"]["written"])
        start += rows.num_rows
        if p["key"] in wanted:
            matches &= rows.num_rows == p["counts"]["written"] and (
                not rows.num_rows or pc.all(pc.equal(rows["source_file"], p["name"])).as_py())
            parts[p["key"]] = FilePart(p["name"], p["key"], [rows], p["counts"], p["notes"], p["geo"])
    if not matches or start != table.num_rows:
        log.warning("%s: its record of source files does not match its rows; not reusing them", final)
        return {}
    return parts


def save_record(final: str, digest: str, parts: list[FilePart]) -> None:
    """Record what the file just written holds (a failure costs only the reuse next time)."""
    try:
        write_json_atomic(record_path(final), {"sha256": digest, "files": [p.record() for p in parts]})
    except OSError as exc:
        log.warning("%s: could not record its source files (%s); the next change re-reads all of them", final, exc)


def merged_geo(geos: list[dict]) -> dict:
    """Bounding boxes and geometry types of several parts' ``geo`` column entries, merged."""
    merged: dict = {}
    for column in geos[0] if geos else ():
        boxes = [g[column]["bbox"] for g in geos if g[column].get("bbox")]
        merged[column] = {"geometry_types": sorted({t for g in geos for t in g[column]["geometry_types"]})}
        if boxes:
            merged[column]["bbox"] = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                                      max(b[3] for b in boxes)]
    return merged


def table_geo(table: pa.Table) -> dict:
    """The ``geo`` column entries (bbox, geometry types) of one encoded batch."""
    columns = json.loads(table.schema.metadata[b"geo"])["columns"]
    return {c: {k: m[k] for k in ("bbox", "geometry_types") if k in m} for c, m in columns.items()}
