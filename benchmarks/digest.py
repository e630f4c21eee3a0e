"""Content digests of the product's GeoParquet outputs, to show a speed-up changed no output.

``python -m benchmarks.digest DATA_DIR`` prints ``{dataset_id: sha256}`` for every
``DATA_DIR/geoparquet/*.parquet``. A digest covers every row and column (geometry as its WKB bytes)
in ``feature_uid`` order, the column names and types, and the GeoParquet ``geo`` metadata (CRS,
bbox, geometry types, covering); it leaves out ``ingested_at``, the wall-clock time of the run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SKIPPED = ("ingested_at",)


def digest(path: str | Path) -> str:
    """The sha256 of one GeoParquet file's content, independent of row order and run time."""
    table = pq.read_table(path)
    geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    table = table.drop_columns([c for c in SKIPPED if c in table.column_names])
    table = table.sort_by("feature_uid").replace_schema_metadata(None).combine_chunks()
    h = hashlib.sha256(json.dumps(geo, sort_keys=True).encode())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    h.update(sink.getvalue())
    return h.hexdigest()


def digests(data_dir: str | Path) -> dict[str, str]:
    """``{dataset_id: digest}`` for every GeoParquet output under ``data_dir``."""
    return {p.stem: digest(p) for p in sorted(Path(data_dir, "geoparquet").glob("*.parquet"))}


def against_reference(data_dir: str | Path, scale: float) -> dict[str, str]:
    """Per dataset, ``same`` or ``DIFFERENT``: the output under ``data_dir`` against the digest the code before the
    speed-ups wrote at this scale (``benchmarks/reference_digests.json``; empty when it has none for the scale)."""
    reference = json.loads((Path(__file__).with_name("reference_digests.json")).read_text())["scales"]
    expected = reference.get(f"{scale:.1f}") or reference.get(f"{scale:g}")
    if not expected:
        return {}
    return {d: ("same" if digest == expected.get(d) else "DIFFERENT") for d, digest in digests(data_dir).items()}


if __name__ == "__main__":
    print(json.dumps(digests(sys.argv[1]), indent=1, sort_keys=True))
