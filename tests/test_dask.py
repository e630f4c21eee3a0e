"""The flow's dataset tasks on a Dask cluster (prefect-dask): a real local cluster of two single-threaded worker
processes; the loads still happen in the flow's process, into the warehouse as usual. ``pvdoi ingest --dask`` sends
the same work through Dask's executor and writes the same files as its threads."""

from __future__ import annotations

import pytest

from pvdoi.duckdb_ext import connect

pytestmark = pytest.mark.usefixtures("prefect_api")
INDIA, CHINA = "ind_pv_solar_farms_2022", "chn_med_res_pv_2024"


def test_dataset_tasks_run_on_the_named_dask_scheduler_and_are_loaded_once(repo, workdir):
    from distributed import LocalCluster

    from flows.ingest_flow import pv_doi_ingest

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        state = pv_doi_ingest(datasets=[INDIA, CHINA], data_dir=str(workdir / "data"),
                              cache_path=str(workdir / "cache"), run_dbt=False, overture=False,
                              dask_address=cluster.scheduler_address, return_state=True)
        assert state.is_completed(), state.message
        assert "ingest_dataset" in cluster.scheduler.task_prefixes  # the tasks went through this scheduler
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"), read_only=True)
    try:
        rows = dict(con.execute("select dataset_id, count(*) from raw_data.doi_pv_features group by 1").fetchall())
        loads = dict(con.execute("select dataset_id, features_written from raw_data.datasets").fetchall())
    finally:
        con.close()
    assert rows == loads and rows[INDIA] == 1363 and set(rows) == {INDIA, CHINA}


def test_a_local_cluster_is_asked_for_with_local_and_its_worker_count():
    from flows.dask_runner import dask_task_runner

    runner = dask_task_runner("local:3")
    assert runner.cluster_kwargs["n_workers"] == 3 and runner.cluster_kwargs["threads_per_worker"] == 1
    assert dask_task_runner("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"


def _read_in_a_task(path: str) -> tuple[int | None, int, bool]:
    """On a Dask worker: its thread count, the features read by a dataset run's reader, and whether a reading thread
    ran beside the task's."""
    import threading

    from flows.dask_runner import within_worker_threads, worker_threads
    from pvdoi.features.reader import RawLayer, layer_batches
    from pvdoi import DEFAULT_MANIFEST
    from pvdoi.manifest import load_manifest
    from pvdoi.records import SourceFile

    spec = load_manifest(DEFAULT_MANIFEST).get(INDIA)
    layer = RawLayer(SourceFile(name="points.geojson", path=path, origin="points.geojson", origin_checksum="x"))
    seen, rows = False, 0
    with within_worker_threads():
        for frame, _ in layer_batches(layer, spec, batch_size=2):
            rows += len(frame)
            seen = seen or any(t.name.startswith("pvdoi-read") for t in threading.enumerate())
    return worker_threads(), rows, seen


@pytest.mark.parametrize("threads", [1, 2])
def test_a_one_thread_worker_reads_in_its_task_thread_alone(tmp_path, threads):
    """A Dask worker with one thread keeps a dataset to it (no read-ahead thread); with more, and outside Dask, the
    next batches are parsed in a second thread as always."""
    import json

    from distributed import Client, LocalCluster

    features = [{"type": "Feature", "properties": {"n": i}, "geometry": {"type": "Point", "coordinates": [i, 0]}}
                for i in range(7)]
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with LocalCluster(n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            assert client.submit(_read_in_a_task, str(path)).result() == (threads, 7, threads > 1)
    assert _read_in_a_task(str(path)) == (None, 7, True)  # not on a Dask worker


def test_on_a_schedulers_workers_a_task_takes_its_own_folders_and_a_file_out_of_reach_fails(repo, tmp_path,
                                                                                          monkeypatch, caplog):
    """A local cluster's workers get the flow's folders; a scheduler's workers none: each takes its own settings' (a
    worker on another machine). An output the flow's process cannot read fails its dataset, saying what to do."""
    import concurrent.futures
    import logging

    from flows.fanout import IngestOptions, ingest_all
    from flows.ingest_flow import _task_options
    from pvdoi.settings import get_settings

    settings = get_settings()
    flow = IngestOptions.resolve(settings, data_dir=str(tmp_path / "flow"), cache_path=str(tmp_path / "flow-cache"))
    assert _task_options(None, flow, settings) == _task_options("local:2", flow, settings) == flow
    # Prefect's logging set-up (at the flow's import) replaced the root handler that caplog listens on
    monkeypatch.setattr(logging.getLogger("pvdoi.flow"), "handlers", [caplog.handler])
    with caplog.at_level(logging.WARNING, logger="pvdoi.flow"):
        assert _task_options("tcp://127.0.0.1:8786", flow, settings) == flow.on_own_folders()
        assert not caplog.records  # a scheduler on loopback: its workers are on this machine
        remote = _task_options("tcp://10.0.0.5:8786", flow, settings)
    assert "PVDOI_OUTPUT_URL is not set" in caplog.text and remote.data_dir is remote.cache_path is None
    monkeypatch.setenv("PVDOI_DATA_DIR", str(tmp_path / "worker"))  # the worker's own settings
    monkeypatch.setenv("PVDOI_CACHE_PATH", str(tmp_path / "worker-cache"))
    result = remote.run(INDIA)
    assert result.geoparquet.path == str(tmp_path / "worker" / "geoparquet" / f"{INDIA}.parquet")
    assert (tmp_path / "worker-cache" / "run_logs" / f"{INDIA}.jsonl").exists()
    assert not (tmp_path / "flow").exists() and not (tmp_path / "flow-cache" / "run_logs").exists()

    (tmp_path / "worker").rename(tmp_path / "elsewhere")  # the flow's process on another machine: not there
    done = concurrent.futures.Future()
    done.set_result(result)
    [failed] = ingest_all([INDIA], flow, lambda dataset_id: done).values()
    assert failed.error_type == "StorageError" and f"[dataset {INDIA!r}, file '{INDIA}.parquet']" in failed.error
    assert "set PVDOI_OUTPUT_URL" in failed.error


def test_pvdoi_ingest_on_a_dask_scheduler_writes_the_same_files_as_with_threads(repo, workdir):
    import json

    from distributed import LocalCluster
    from typer.testing import CliRunner

    from benchmarks.digest import digests
    from flows.cli import app

    def ingest(name: str, *extra: str) -> dict:
        done = CliRunner().invoke(app, ["ingest", INDIA, CHINA, "--json", "--data-dir", str(workdir / name),
                                        "--cache-path", str(workdir / name / "cache"), *extra])
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = ingest("dask", "--dask", cluster.scheduler_address)
        assert "run" in cluster.scheduler.task_prefixes  # IngestOptions.run went through this scheduler
    in_threads = ingest("threads")
    assert {d: r["counts"] for d, r in on_dask.items()} == {d: r["counts"] for d, r in in_threads.items()}
    assert digests(workdir / "dask") == digests(workdir / "threads") and len(digests(workdir / "dask")) == 2


def test_workers_that_cannot_read_the_manifests_file_run_from_the_text_the_options_carry(repo, workdir):
    """A manifest kept only where the run is started (here: removed once the tasks are queued, before any worker
    exists): the workers, separate processes, write the text the options carry to ``<data_dir>/manifests/`` and
    ingest from it the files a run in threads with the manifest in place writes."""
    import concurrent.futures
    import hashlib
    import dataclasses
    import shutil
    import time

    from distributed import LocalCluster

    from benchmarks.digest import digests
    from flows.fanout import run_doi_pipeline
    from pvdoi import DEFAULT_MANIFEST

    manifest = workdir / "submitted" / "manifest.json"
    manifest.parent.mkdir()
    shutil.copy(DEFAULT_MANIFEST, manifest)

    def ingest(name: str, **dask) -> dict:
        return run_doi_pipeline([INDIA, CHINA], manifest_path=str(manifest), data_dir=str(workdir / name),
                                cache_path=str(workdir / name / "cache"), **dask)

    in_threads = ingest("threads")
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            concurrent.futures.ThreadPoolExecutor(1) as flow:
        running = flow.submit(ingest, "dask", dask_address=cluster.scheduler_address)
        deadline = time.monotonic() + 120
        while len(cluster.scheduler.tasks) < 2 and not running.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(cluster.scheduler.tasks) == 2 and not cluster.scheduler.workers  # queued, nothing ran yet
        manifest.unlink()
        cluster.scale(2)
        on_dask = running.result(timeout=600)
    assert all(r.ok for r in on_dask.values()), {d: r.error for d, r in on_dask.items()}
    assert {d: r.counts for d, r in on_dask.items()} == {d: r.counts for d, r in in_threads.items()}
    assert digests(workdir / "dask") == digests(workdir / "threads") and len(digests(workdir / "dask")) == 2
    copy = workdir / "dask" / "manifests" / f"{hashlib.sha256(DEFAULT_MANIFEST.read_bytes()).hexdigest()}.json"
    assert copy.read_bytes() == DEFAULT_MANIFEST.read_bytes() and not (workdir / "threads" / "manifests").exists()


def test_a_dataset_run_from_the_manifests_copy_hits_the_cache_of_a_run_from_its_file(repo, workdir):
    """The manifest's path is no part of a cache key below the manifest node (always re-run; the entry's content is
    its data version): a worker reading the copy at another path recomputes nothing a run from the file cached."""
    import dataclasses
    import shutil

    from flows.fanout import IngestOptions
    from pvdoi import DEFAULT_MANIFEST
    from pvdoi.settings import get_settings

    manifest = workdir / "manifest.json"
    shutil.copy(DEFAULT_MANIFEST, manifest)
    options = IngestOptions.resolve(get_settings(), manifest_path=str(manifest))
    options.run(CHINA)  # cold
    from_file = options.run(CHINA)
    manifest.unlink()
    from_copy = options.run(CHINA)
    assert from_copy.ok and list((workdir / "data" / "manifests").glob("*.json"))
    assert dataclasses.replace(from_copy.cache, run_id=None) == dataclasses.replace(from_file.cache, run_id=None)
    assert from_file.cache.hits and not from_file.cache.misses
