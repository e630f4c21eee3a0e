"""A new version of one file of a dataset: the other files' rows come from the previous GeoParquet, unchanged."""

from __future__ import annotations

import functools
import json
import logging
import os
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import pvdoi.features.stream as standardise
from benchmarks.digest import digest
from flows.dataflow import run_dataset
from pvdoi.atomic import sha256_file

DATASET = "global_pv_inventory_sent2_spot_2021"  # four polygon files in one record
CHANGED = "cv_polygons.geojson"
OTHERS = ["predicted_polygons.geojson", "test_polygons.geojson", "trn_polygons.geojson"]
REPORTED = ("counts", "per_file", "notes")


@pytest.fixture()
def files_read(monkeypatch) -> list[str]:
    """The source files read and standardised from now on."""
    read: list[str] = []
    real = standardise.layer_batches

    def recording(layer, *args, **kwargs):
        read.append(layer.source.name)
        return real(layer, *args, **kwargs)

    monkeypatch.setattr(standardise, "layer_batches", recording)
    return read


@pytest.fixture()
def pages_as_at_scale(monkeypatch) -> None:
    """Small batches, row groups, pages and dictionaries: a few hundred rows laid out in Parquet as 100k rows are
    (batches across row groups, pages split and dictionaries given up as a column fills up)."""
    monkeypatch.setattr("pvdoi.features.stream.BATCH_SIZE", 30)
    monkeypatch.setattr("pvdoi.features.geoparquet.ROW_GROUP_SIZE", 50)
    monkeypatch.setattr(pq, "ParquetWriter", functools.partial(pq.ParquetWriter, data_page_size=512,
                                                               write_batch_size=4, dictionary_pagesize_limit=512))


def _change_one_file(repo) -> bytes:
    """Two features fewer in CHANGED; its bytes before."""
    path = repo.files_dir / DATASET / CHANGED
    before = path.read_bytes()
    doc = json.loads(before)
    doc["features"] = doc["features"][:-2]
    repo.replace_file(DATASET, CHANGED, json.dumps(doc).encode())
    return before


def _run_logged(caplog, **kwargs):
    """run_dataset, and whether it rewrote an output that no longer matched its cache entry."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, "pvdoi.dataflow"):
        result = run_dataset(DATASET, **kwargs)
    return result, any("changed since it was cached" in m for m in caplog.messages)


def _stamp(path: str) -> tuple[int, str]:
    return os.stat(path).st_mtime_ns, sha256_file(path)


def _ingested_at(path: str) -> dict[str, set]:
    table = pq.read_table(path, columns=["source_file", "ingested_at"])
    return {name: set(table.filter(pc.equal(table["source_file"], name))["ingested_at"].to_pylist())
            for name in [CHANGED, *OTHERS]}


def test_only_the_changed_file_is_read_again_and_the_output_is_what_a_full_pass_gives(repo, workdir, files_read):
    first = run_dataset(DATASET)
    assert sorted(files_read) == sorted([CHANGED, *OTHERS]) and first.reused_files == ()
    before = _ingested_at(first.geoparquet.path)

    _change_one_file(repo)
    time.sleep(1.1)  # ingested_at is in whole seconds
    files_read.clear()
    second = run_dataset(DATASET)
    assert files_read == [CHANGED]
    assert list(second.reused_files) == OTHERS
    assert second.counts["read"] == first.counts["read"] - 2
    after = _ingested_at(second.geoparquet.path)
    assert all(after[name] == before[name] for name in OTHERS)  # the rows kept are those of the first run
    assert after[CHANGED] != before[CHANGED]

    files_read.clear()
    full = run_dataset(DATASET, data_dir=str(workdir / "full"), enable_caching=False)
    assert sorted(files_read) == sorted([CHANGED, *OTHERS]) and full.reused_files == ()
    assert digest(second.geoparquet.path) == digest(full.geoparquet.path)
    assert {k: getattr(second, k) for k in REPORTED} == {k: getattr(full, k) for k in REPORTED}
    assert pq.read_schema(second.geoparquet.path).metadata[b"geo"] == \
        pq.read_schema(full.geoparquet.path).metadata[b"geo"]

    files_read.clear()
    again = run_dataset(DATASET, enable_caching=False)  # --no-cache reads every file again
    assert sorted(files_read) == sorted([CHANGED, *OTHERS]) and again.reused_files == ()


def test_an_output_changed_on_disk_is_not_reused(repo, workdir, files_read):
    first = run_dataset(DATASET)
    path = first.geoparquet.path
    table = pq.read_table(path)
    areas = table["area_m2"].to_pylist()
    areas[-1] = 0.0  # someone else's edit, same rows and files: only the recorded SHA-256 tells
    pq.write_table(table.set_column(table.schema.get_field_index("area_m2"), "area_m2",
                                    pa.array(areas, pa.float64())), path)
    _change_one_file(repo)
    files_read.clear()
    second = run_dataset(DATASET)
    assert sorted(files_read) == sorted([CHANGED, *OTHERS]) and second.reused_files == ()
    assert second.geoparquet.rows == first.geoparquet.rows - 2
    assert 0.0 not in pq.read_table(second.geoparquet.path)["area_m2"].to_pylist()


def test_a_record_that_does_not_match_the_rows_is_not_reused(repo, workdir, files_read):
    first = run_dataset(DATASET)
    record_path = workdir / "data" / "geoparquet_files" / f"{DATASET}.json"
    record = json.loads(record_path.read_text())
    record["files"][0]["counts"]["written"] += 1  # the rows of every later file would be shifted by one
    record_path.write_text(json.dumps(record))
    _change_one_file(repo)
    files_read.clear()
    second = run_dataset(DATASET)
    assert sorted(files_read) == sorted([CHANGED, *OTHERS]) and second.reused_files == ()
    assert second.geoparquet.rows == first.geoparquet.rows - 2


def test_a_file_changed_back_rewrites_the_first_output_once_then_the_cache_holds(repo, workdir, pages_as_at_scale,
                                                                                   caplog):
    first, _ = _run_logged(caplog)
    time.sleep(1.1)  # ingested_at is in whole seconds
    original = _change_one_file(repo)
    changed, rewritten = _run_logged(caplog)
    assert changed.geoparquet.sha256 != first.geoparquet.sha256 and not rewritten

    repo.replace_file(DATASET, CHANGED, original)  # the same published bytes as the first run's
    back, rewritten = _run_logged(caplog)
    assert rewritten  # the cache's output for these inputs is the first run's, and the disk holds the changed one
    assert back.geoparquet.sha256 == first.geoparquet.sha256 == sha256_file(back.geoparquet.path)
    assert digest(back.geoparquet.path) == digest(first.geoparquet.path)  # the same rows: the load sees nothing new

    before = _stamp(back.geoparquet.path)
    again, rewritten = _run_logged(caplog)
    assert not rewritten and "geoparquet_file" in again.cache.hits and not again.cache.misses
    assert _stamp(again.geoparquet.path) == before


def test_an_output_rewritten_under_the_same_inputs_is_the_one_the_cache_gives_next(repo, workdir, caplog):
    first, _ = _run_logged(caplog)
    time.sleep(1.1)
    uncached, _ = _run_logged(caplog, enable_caching=False)  # --no-cache: every row stamped again, cache untouched
    assert uncached.geoparquet.sha256 != first.geoparquet.sha256

    taken_up, rewritten = _run_logged(caplog)
    assert rewritten and taken_up.geoparquet.sha256 == sha256_file(taken_up.geoparquet.path)
    before = _stamp(taken_up.geoparquet.path)
    again, rewritten = _run_logged(caplog)
    assert not rewritten and "geoparquet_file" in again.cache.hits and not again.cache.misses
    assert again.geoparquet == taken_up.geoparquet and _stamp(again.geoparquet.path) == before
