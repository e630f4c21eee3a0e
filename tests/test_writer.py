"""The row-group writer: batches appended as they come make the file one ``write_table`` of them all makes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pvdoi.atomic import sha256_file
from pvdoi.features.writer import RowGroupWriter


def _batch(start: int, rows: int, *, kind=pa.int64()) -> pa.Table:
    table = pa.table({"n": pa.array(range(start, start + rows), kind),
                      "s": pa.array([f"row {i}" for i in range(rows)], pa.string())})
    return table.replace_schema_metadata({"geo": f"batch at {start}"})  # each batch's own, replaced at close


def test_batches_make_the_file_write_table_makes_with_the_metadata_given_at_close(tmp_path):
    batches = [_batch(0, 5), _batch(5, 0), _batch(5, 7), _batch(12, 3)]
    writer = RowGroupWriter(str(tmp_path / "streamed.parquet"), row_group_size=4)
    for batch in batches:
        writer.append(batch)
    writer.close({b"geo": b"all rows", b"pvdoi": b"{}"})
    whole = pa.concat_tables(batches).replace_schema_metadata({b"geo": b"all rows", b"pvdoi": b"{}"})
    pq.write_table(whole, tmp_path / "whole.parquet", compression="zstd", row_group_size=4)

    streamed, reference = pq.ParquetFile(tmp_path / "streamed.parquet"), pq.ParquetFile(tmp_path / "whole.parquet")
    assert writer.rows == 15
    assert [streamed.metadata.row_group(i).num_rows for i in range(streamed.num_row_groups)] == [4, 4, 4, 3]
    assert [reference.metadata.row_group(i).num_rows for i in range(reference.num_row_groups)] == [4, 4, 4, 3]
    assert streamed.schema_arrow.metadata == {b"geo": b"all rows", b"pvdoi": b"{}"}
    assert streamed.metadata.metadata == reference.metadata.metadata  # the Arrow schema stored beside it too
    assert streamed.read().equals(reference.read())


def test_a_later_batch_is_cast_to_the_first_ones_column_types(tmp_path):
    writer = RowGroupWriter(str(tmp_path / "cast.parquet"), row_group_size=100)
    writer.append(_batch(0, 2))
    writer.append(_batch(2, 2, kind=pa.int32()))
    writer.close({b"geo": b"x"})
    assert len(writer.schemas) == 2
    table = pq.read_table(tmp_path / "cast.parquet")
    assert table.schema.field("n").type == pa.int64() and table["n"].to_pylist() == [0, 1, 2, 3]


def test_without_rows_the_file_has_the_empty_tables_columns(tmp_path):
    writer = RowGroupWriter(str(tmp_path / "empty.parquet"), row_group_size=4)
    writer.append(_batch(0, 0))
    writer.close({b"geo": b"none"}, empty=_batch(0, 0))
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and table.column_names == ["n", "s"] and table.schema.metadata == {b"geo": b"none"}
    with pytest.raises(ValueError, match="no rows and no empty table"):
        RowGroupWriter(str(tmp_path / "nothing.parquet"), row_group_size=4).close({b"geo": b"none"})


def test_the_same_rows_make_the_same_bytes_however_they_came_in_batches(tmp_path):
    # ~2 MB of distinct text per row group: past a page (1 MB) and the dictionary's limit, as GeoParquet columns are
    rows = _batch(0, 3000).set_column(1, "s", pa.array([f"row {i} " + "x" * (i % 2000) for i in range(3000)]))
    digests = set()
    for cuts in ([], [700], [1000, 1703], [5, 2990]):
        writer = RowGroupWriter(str(tmp_path / f"{len(digests)}.parquet"), row_group_size=2048)
        for start, end in zip([0, *cuts], [*cuts, rows.num_rows]):
            writer.append(rows.slice(start, end - start))
        writer.close({b"geo": b"all rows"})
        digests.add(sha256_file(writer.path))
    assert len(digests) == 1
