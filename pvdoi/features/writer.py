"""A Parquet file written row group by row group as encoded batches arrive, its schema metadata settled at the end.

The GeoParquet writer (:mod:`pvdoi.features.geoparquet`) appends each batch as it is standardised instead of holding
the dataset's rows until the end: memory holds one row group, and compressing and writing overlap reading. The
``geo`` metadata (the bounding box and geometry types of all rows) is known only when the last row is in, so it is
set at :meth:`RowGroupWriter.close`, in the file's key-value metadata and in the Arrow schema stored beside it
(``ARROW:schema``, the base64 of the schema's IPC serialisation, which is what pyarrow reads the metadata from): the
file is the one ``pyarrow.parquet.write_table`` writes from the whole table with that metadata, row groups included,
byte for byte however its rows came in batches (each row group is written from one chunk).
"""

from __future__ import annotations

import base64

import pyarrow as pa
import pyarrow.parquet as pq


class RowGroupWriter:
    """Tables appended in order to one Parquet file, written in row groups of ``row_group_size`` rows.

    Every table is cast to the first non-empty one's column types; ``schemas`` lists the distinct column types
    (without metadata) of the tables appended with rows.
    """

    def __init__(self, path: str, *, row_group_size: int, compression: str = "zstd") -> None:
        self.path, self.row_group_size, self.compression = path, row_group_size, compression
        self.schema: pa.Schema | None = None  # of the first table with rows, with its metadata
        self.schemas: list[pa.Schema] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def append(self, table: pa.Table) -> None:
        """Add ``table``'s rows after those appended before; full row groups are written now."""
        if not table.num_rows:
            return
        bare = table.schema.remove_metadata()
        if not any(bare.equals(s) for s in self.schemas):
            self.schemas.append(bare)
        if self._writer is None:
            self.schema = table.schema
            self._writer = pq.ParquetWriter(self.path, bare, compression=self.compression)
        elif table.schema != self.schema:  # column types differ (metadata is not compared)
            table = table.cast(self.schema)
        self._pending.append(table.replace_schema_metadata(None))  # each batch's own ``geo``: settled at close
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= self.row_group_size:
            self._flush(self.row_group_size)

    def _flush(self, rows: int) -> None:
        pending = pa.concat_tables(self._pending)
        # one chunk per row group: Parquet splits pages (and gives up dictionaries) at batch boundaries counted from
        # each chunk's start, so the same rows in other batches (reused from the previous file) made other bytes
        self._writer.write_table(pending.slice(0, rows).combine_chunks(), row_group_size=self.row_group_size)
        rest = pending.slice(rows)
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self, metadata: dict[bytes, bytes], *, empty: pa.Table | None = None) -> None:
        """Write the last rows and the footer with ``metadata`` as the schema's metadata. Without any row appended,
        the file holds ``empty``'s columns and no row."""
        if self._writer is None:
            if empty is None:
                raise ValueError(f"{self.path}: no rows and no empty table for the columns")
            self.schema = empty.schema
            self._writer = pq.ParquetWriter(self.path, empty.schema.remove_metadata(), compression=self.compression)
            self._writer.write_table(empty.replace_schema_metadata(None), row_group_size=self.row_group_size)
        elif self._pending_rows:
            self._flush(self._pending_rows)
        final = self.schema.with_metadata(metadata)
        self._writer.add_key_value_metadata(
            {**metadata, b"ARROW:schema": base64.b64encode(final.serialize().to_pybytes())})
        self.abort()

    def abort(self) -> None:
        """Close the file as it is (a caller that failed, or gives up this pass, deletes it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._pending, self._pending_rows = [], 0
