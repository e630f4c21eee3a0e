"""The speed-ups changed no output: the code before them, batch sizes, the whole-file fallback."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import pvdoi.features.stream as standardise
from benchmarks.digest import digest, digests
from hamilton_nodes.read import raw_layers
from hamilton_nodes.standardise import standardised_features
from hamilton_nodes.write import geoparquet_file
from pvdoi.manifest import DatasetSpec
from pvdoi.records import SourceFile

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((ROOT / "benchmarks" / "reference_digests.json").read_text())


def test_outputs_equal_those_of_the_code_before_the_speedups(tmp_path, monkeypatch):
    """A cold run over the benchmark corpus at scale 0.05 gives, dataset by dataset, the content the code before
    the issue-7 speed-ups gave (its digests were recorded in benchmarks/reference_digests.json)."""
    from flows.fanout import run_doi_pipeline
    from pvdoi.testing.reposerver import RepoServer

    with RepoServer(tmp_path / "corpus", scale=0.05) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        results = run_doi_pipeline(data_dir=str(tmp_path / "data"), cache_path=str(tmp_path / "cache"))
    assert all(r.status == "completed" for r in results.values()), results
    assert digests(tmp_path / "data") == REFERENCE["scales"]["0.05"]


def _spec() -> DatasetSpec:
    return DatasetSpec.model_validate({
        "id": "toy", "title": "Toy", "doi": "10.1/x", "license": "CC0-1.0", "expected_crs": "EPSG:4326",
        "repository": {"type": "url", "urls": ["http://x/toy.geojson"]}, "columns": {"unified_id": {"from": ["n"]}}})


def _write(path: Path, out: Path) -> tuple[str, dict]:
    spec = _spec()
    layers = raw_layers([SourceFile(path.name, str(path), path.name, "md5:abc")], spec)
    result = geoparquet_file(standardised_features(layers, spec), str(out))
    return digest(result["path"]), result


def _record_stream_modes(monkeypatch) -> list[bool]:
    """The ``whole_layers`` argument of every FeatureStream made from now on."""
    calls: list[bool] = []
    real = standardise.FeatureStream.__init__

    def init(self, features, *, whole_layers, **kwargs):
        calls.append(whole_layers)
        real(self, features, whole_layers=whole_layers, **kwargs)

    monkeypatch.setattr(standardise.FeatureStream, "__init__", init)
    return calls


@pytest.fixture()
def toy_file(tmp_path) -> Path:
    """40 features: an integer column null only in the last ten, duplicates across the first and later rows."""
    boxes = [shapely.box(i * 1e-3, 50, i * 1e-3 + 5e-4, 50.0005) for i in range(30)]
    frame = gpd.GeoDataFrame({"n": pd.array([i % 25 for i in range(30)] + [None] * 10, dtype="Int64"), "s": ["x"] * 40},
                             geometry=boxes + boxes[:10], crs="EPSG:4326")
    frame.loc[25:29, "n"] = list(range(5))  # rows 25..29 repeat rows 0..4 exactly
    frame["geometry"] = [*boxes[:25], *boxes[:5], *boxes[:10]]
    path = tmp_path / "toy.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path


def test_batches_give_the_whole_file_answer(toy_file, tmp_path, monkeypatch):
    """Read in batches of 7 (an integer column with nulls in the last batch only, duplicates across batches), the
    output equals the one of the file read whole, in one streamed pass: every batch has the layer's column types
    (nullable integers), so none disagrees and the file is never read twice; the integers stay integers."""
    monkeypatch.setattr(standardise, "BATCH_SIZE", 10**9)
    whole, whole_result = _write(toy_file, tmp_path / "whole")
    calls = _record_stream_modes(monkeypatch)
    monkeypatch.setattr(standardise, "BATCH_SIZE", 7)
    batched, batched_result = _write(toy_file, tmp_path / "batched")
    assert calls == [False]  # streamed once: no batch disagreed, no second reading
    assert batched == whole
    assert batched_result["counts"] == whole_result["counts"]
    assert whole_result["counts"]["dropped_duplicate"] == 5 and whole_result["rows"] == 35
    attributes = gpd.read_parquet(batched_result["path"])["source_attributes"].map(json.loads)
    assert attributes.iloc[0]["n"] == 0 and all(isinstance(a["n"], int) for a in attributes if a["n"] is not None)


def test_batches_that_agree_stream_through(toy_file, tmp_path, monkeypatch):
    """Without nulls, batches agree and stream straight through: the same output as one batch."""
    frame = gpd.read_file(toy_file)
    frame["n"] = frame["n"].fillna(-1).astype("int64")
    path = tmp_path / "ints.geojson"
    frame.to_file(path, driver="GeoJSON")
    monkeypatch.setattr(standardise, "BATCH_SIZE", 10**9)
    whole, _ = _write(path, tmp_path / "whole")
    calls = _record_stream_modes(monkeypatch)
    monkeypatch.setattr(standardise, "BATCH_SIZE", 7)
    batched, result = _write(path, tmp_path / "batched")
    assert batched == whole and calls == [False]
    assert gpd.read_parquet(result["path"])["source_attributes"].map(json.loads).iloc[0]["n"] == 0
