"""The streaming standardisation engine: read a vector file in batches, standardise each batch, encode GeoParquet.

The dataflow's read, standardise and write nodes (``hamilton_nodes``) call it; it never imports them.

- ``reader``: pyogrio's Arrow stream of one file, batch by batch, text repaired to UTF-8; ``readahead``: its next
  batches parsed in a second thread, or in the caller's own within a one-thread budget (a one-thread Dask worker)
- ``gdal``: GDAL's warnings while a file is read, logged (naming dataset and file) and counted per dataset
- ``geometry``, ``attributes``: the rules for one batch (EPSG:4326, repairs, areas; columns, ids, JSON)
- ``stream``: a dataset's files through those rules as one lazy stream of standardised batches
- ``parts``, ``geoparquet``, ``writer``: the GeoParquet file written from the stream row group by row group,
  unchanged files' rows reused

``ENGINE_VERSION`` is the one code version of all of it: Hamilton fingerprints a node's own source, not the
helpers it calls, so the cache keys and the reuse records carry this hash of the engine's files instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_FILES = sorted(Path(__file__).parent.glob("*.py"))
ENGINE_VERSION = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in _FILES)).hexdigest()
