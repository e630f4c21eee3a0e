"""Shared storage (pvdoi/objectstore.py): the download store and the GeoParquet outputs in a bucket of a local S3 API
(moto's server), shared by "machines" that have nothing else in common (their own data folder and Hamilton cache).

A second machine downloads nothing from the repository and writes no output; a torn upload is ignored and done
again; a corrupt object at a final key is replaced; the warehouse (a DuckDB file, a DuckLake) loads the same rows from
a bucket output as from the local file.
"""

from __future__ import annotations

import logging
import os
import uuid

import pyarrow.parquet as pq
import pytest

from flows.dataflow import run_dataset
from pvdoi.results import GeoParquetOutput
from pvdoi.settings import get_settings
from pvdoi.store import store_key
from tests.overture_release import moto_server, query_one, s3_client

INDIA, DUNNETT = "ind_pv_solar_farms_2022", "global_harmonized_large_solar_farms_2020"
SEVERAL = (DUNNETT, "uk_crowdsourced_pv_2020", "chn_med_res_pv_2024")  # figshare (a zip), Zenodo, GitHub (many files)
BUCKET, KEY_ID, SECRET = "pv-shared", "shared-key", "shared-secret"


@pytest.fixture()
def bucket(monkeypatch, workdir):
    """An empty bucket on a local S3 API; the store and the outputs point at it (``PVDOI_S3_*``)."""
    with moto_server() as endpoint:
        client = s3_client(endpoint, KEY_ID, SECRET, "us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for name, value in {"STORE_URL": f"s3://{BUCKET}/store", "OUTPUT_URL": f"s3://{BUCKET}/outputs/",
                            "S3_ENDPOINT": endpoint, "S3_KEY_ID": KEY_ID, "S3_SECRET": SECRET}.items():
            monkeypatch.setenv(f"PVDOI_{name}", value)
        yield client


def _machine(tmp_path, name: str, dataset: str = INDIA, **options):
    """``dataset`` ingested by a "machine" of its own: data folder and Hamilton cache under ``tmp_path/name``."""
    return run_dataset(dataset, data_dir=str(tmp_path / name / "data"), cache_path=str(tmp_path / name / "cache"),
                       **options)


def _objects(client, prefix: str) -> dict[str, tuple]:
    """Every object under ``prefix``: its size, ETag and time of writing."""
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: (o["Size"], o["ETag"], o["LastModified"]) for o in listed}


def _store_key(report, index: int = 0) -> str:
    f = report.files[index]
    return f"store/{store_key(f['checksum'], f['name'])}"


def test_a_second_machine_downloads_nothing_and_writes_no_output(repo, tmp_path, bucket):
    first = {d: _machine(tmp_path, "a", d) for d in SEVERAL}
    assert repo.downloads() == sum(len(r.files) for r in first.values()) > 2
    for report in first.values():
        assert report.geoparquet.path.startswith(f"s3://{BUCKET}/outputs/{report.dataset_id}/")
        for i, f in enumerate(report.files):  # each download published under its content address
            assert _objects(bucket, _store_key(report, i))[_store_key(report, i)][0] == f["size"]
    before = _objects(bucket, "")
    assert not [k for k in before if ".tmp-" in k]

    again = {d: _machine(tmp_path, "b", d) for d in SEVERAL}  # another data folder, another cache
    assert repo.downloads() == sum(len(r.files) for r in first.values())  # none more
    assert _objects(bucket, "") == before  # nothing written again
    for dataset, report in again.items():
        assert report.geoparquet == first[dataset].geoparquet and report.counts == first[dataset].counts
        assert report.downloaded_bytes == 0 and "geoparquet_file" in report.cache.misses
        assert set(report.reused_files) == set(report.per_file)  # every file's rows from the bucket
    assert (tmp_path / "b" / "data" / "downloads").is_dir()  # local copies to extract and read
    assert not (tmp_path / "b" / "data" / "geoparquet").exists()

    third = _machine(tmp_path, "a", DUNNETT)  # machine a again: its own cache hits, the output checked in the bucket
    assert "geoparquet_file" in third.cache.hits and third.geoparquet == first[DUNNETT].geoparquet
    assert _objects(bucket, "") == before


def test_different_inputs_get_their_own_output(repo, tmp_path, bucket, monkeypatch):
    first = _machine(tmp_path, "a")
    monkeypatch.setenv("PVDOI_MANIFEST_PATH", _manifest_with_count(tmp_path, INDIA, 1))
    second = _machine(tmp_path, "b")
    assert second.geoparquet.path != first.geoparquet.path  # another manifest entry: another key, both kept
    assert {first.geoparquet.path, second.geoparquet.path} <= {f"s3://{BUCKET}/{k}" for k in _objects(bucket, "")}


def _manifest_with_count(tmp_path, dataset: str, count: int) -> str:
    from tests.conftest import write_manifest

    def edit(raw):
        next(d for d in raw["datasets"] if d["id"] == dataset)["expected_count"] = count

    return write_manifest(tmp_path / "manifest.json", edit)


def test_a_torn_upload_is_ignored_and_done_again(repo, tmp_path, bucket, monkeypatch):
    first = _machine(tmp_path, "a")
    key = _store_key(first)
    whole = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    torn = f"{key}.tmp-{uuid.uuid4().hex}"
    bucket.delete_object(Bucket=BUCKET, Key=key)
    bucket.put_object(Bucket=BUCKET, Key=torn, Body=whole[: len(whole) // 2])  # killed mid-upload: no final key
    monkeypatch.setattr("pvdoi.objectstore.STALE_S", 0.0)  # old enough to be swept by the next publish

    downloads = repo.downloads()
    second = _machine(tmp_path, "b")
    assert repo.downloads() == downloads + 1 and second.counts == first.counts
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == whole
    assert not [k for k in _objects(bucket, "") if ".tmp-" in k]  # the torn one swept


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_corrupt_object_is_downloaded_again_and_replaced(repo, tmp_path, bucket, damage, caplog):
    first = _machine(tmp_path, "a")
    key = _store_key(first)
    whole = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    bad = whole[:-10] if damage == "truncated" else whole[:100] + bytes([whole[100] ^ 0xFF]) + whole[101:]
    bucket.put_object(Bucket=BUCKET, Key=key, Body=bad)

    downloads = repo.downloads()
    with caplog.at_level(logging.WARNING, logger="pvdoi.store"):
        second = _machine(tmp_path, "b")
    assert repo.downloads() == downloads + 1 and second.geoparquet == first.geoparquet
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == whole
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"[dataset {INDIA!r}, file {first.files[0]['name']!r}]" in warning and "replacing it" in warning


def test_a_corrupt_output_is_written_again(repo, tmp_path, bucket):
    first = _machine(tmp_path, "a")
    key = first.geoparquet.path.removeprefix(f"s3://{BUCKET}/")
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"PAR1 not a whole file")
    second = _machine(tmp_path, "b")
    assert "geoparquet_file" in second.cache.misses and not second.reused_files
    assert bucket.head_object(Bucket=BUCKET, Key=second.geoparquet.path.split("/", 3)[3])["ContentLength"] == \
        second.geoparquet.bytes


@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_the_warehouse_loads_the_same_rows_from_a_bucket_output(repo, tmp_path, bucket, monkeypatch, backend):
    """Read from the bucket by DuckDB's httpfs with the AWS credential chain (no PVDOI_S3_* keys: AWS_* variables),
    into a DuckDB file, or into a lake whose data files are in the bucket too (its S3 settings: the shared ones)."""
    from pvdoi.warehouse import load_datasets, warehouse

    report = _machine(tmp_path, "a")
    local = str(tmp_path / "a" / "data" / "geoparquet" / f"{INDIA}.parquet")
    assert pq.read_metadata(local).num_rows == report.geoparquet.rows
    for name in ("KEY_ID", "SECRET"):
        monkeypatch.delenv(f"PVDOI_S3_{name}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    if backend == "ducklake":
        monkeypatch.setenv("PVDOI_LAKE_DATA_PATH", f"s3://{BUCKET}/lake/")
    rows = {}
    for where, path in (("bucket", report.geoparquet.path), ("local", local)):
        one = report.replace(geoparquet=GeoParquetOutput(path, report.geoparquet.sha256, report.geoparquet.bytes,
                                                         report.geoparquet.rows))
        database = str(tmp_path / f"{where}.duckdb")
        if backend == "ducklake":
            database = f"ducklake:sqlite:{tmp_path / where / 'catalog.sqlite'}"
        with warehouse(database) as con:
            assert load_datasets(con, [one])[0]["loaded"]
        rows[where] = query_one(database, "SELECT * EXCLUDE (loaded_at) FROM raw_data.doi_pv_features "
                                          "ORDER BY feature_uid")
    assert rows["bucket"] == rows["local"] and len(rows["local"]) == report.geoparquet.rows
    if backend == "ducklake":
        assert _objects(bucket, "lake/")  # the lake's data files in the bucket, through the shared settings
    assert get_settings().s3(lake=True).key_id is None  # the chain, not keys


def test_a_local_folder_stands_in_for_a_bucket(tmp_path, monkeypatch):
    """A shared mount as the URL: the same publish (temporary name, verified, renamed), sweep and look-ups."""
    from pvdoi.objectstore import open_bucket

    shared = open_bucket(f"file://{tmp_path / 'mount'}", get_settings().s3())
    (tmp_path / "mount" / "a").mkdir(parents=True)
    (tmp_path / "mount" / "a" / "f.bin.tmp-torn").write_bytes(b"part")
    (tmp_path / "f.bin").write_bytes(b"whole file")
    monkeypatch.setattr("pvdoi.objectstore.STALE_S", 0.0)
    assert shared.size("a/f.bin") is None
    assert shared.publish(str(tmp_path / "f.bin"), "a/f.bin") == str(tmp_path / "mount" / "a" / "f.bin")
    assert shared.size("a/f.bin") == 10 and os.listdir(tmp_path / "mount" / "a") == ["f.bin"]
    shared.publish_json("a/f.json", {"rows": 3})
    assert shared.read_json("a/f.json") == {"rows": 3} and shared.read_json("a/none.json") is None
    with pytest.raises(OSError, match="SHA-256"):
        shared.publish(str(tmp_path / "f.bin"), "a/g.bin", sha256="0" * 64)
    assert sorted(os.listdir(tmp_path / "mount" / "a")) == ["f.bin", "f.json"]  # nothing at g.bin, no temporary
