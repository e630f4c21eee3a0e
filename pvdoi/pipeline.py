"""Build and run the per-dataset Hamilton dataflow: the one builder the CLI, the tests and Prefect share."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from hamilton import driver

from hamilton_nodes import download, extract, read, source, standardise, write
from pvdoi.atomic import write_json_atomic, write_text_atomic
from pvdoi.caching import prepare_cache, register_fingerprints, stores
from pvdoi.errors import PVDOIError, StorageError
from pvdoi.manifest import load_manifest
from pvdoi.settings import Settings, get_settings

log = logging.getLogger("pvdoi.pipeline")
MODULES = (source, download, extract, read, standardise, write)
FINAL_VARS = ["dataset_report", "downloaded_files"]
OUTPUT_NODE = "geoparquet_file"


def build_driver(*, cache_path: str | None, recompute: list[str] | None = None,
                 adapters: tuple = ()) -> driver.Driver:
    """A Hamilton driver over the ingestion modules, with the crash-safe cache when ``cache_path`` is set."""
    builder = driver.Builder().with_modules(*MODULES)
    if adapters:
        builder = builder.with_adapters(*adapters)
    if cache_path:
        register_fingerprints()
        metadata_store, result_store = stores(cache_path)
        builder = builder.with_cache(
            path=cache_path, metadata_store=metadata_store, result_store=result_store,
            recompute=recompute or None, ignore=["settings"],  # events kept per dataset: save_cache_events
        )
    return builder.build()


def run_dataset(dataset_id: str, *, settings: Settings | None = None, manifest_path: str | None = None,
                data_dir: str | None = None, cache_path: str | None = None, enable_caching: bool = True,
                force_download: bool = False, max_mb: float | None = None) -> dict:
    """Ingest one dataset into GeoParquet and return its report plus cache hits/misses and timings."""
    settings = settings or get_settings()
    data_dir = data_dir or settings.data_dir
    cache_path = (cache_path or settings.cache_path) if enable_caching else None
    inputs = {
        "manifest_path": manifest_path or settings.manifest_path, "dataset_id": dataset_id, "data_dir": data_dir,
        "max_mb": float(max_mb if max_mb is not None else settings.max_mb), "force_download": force_download,
        "settings": settings, "reuse_unchanged_files": enable_caching,  # --no-cache: every file read again
    }
    output = os.path.join(data_dir, "geoparquet", f"{dataset_id}.parquet")
    recompute = [] if os.path.exists(output) else [OUTPUT_NODE]
    started = time.perf_counter()
    dr = _dataset_driver(dataset_id, cache_path, recompute)
    result = dr.execute(FINAL_VARS, inputs=inputs)
    if cache_path and not _output_matches(result["dataset_report"]["geoparquet"]):
        log.warning("%s: GeoParquet output changed on disk since it was cached; rewriting it", dataset_id)
        dr = _dataset_driver(dataset_id, cache_path, [OUTPUT_NODE])
        result = dr.execute(FINAL_VARS, inputs=inputs)
    report = dict(result["dataset_report"])
    report["downloaded_bytes"] = sum(f.downloaded_bytes for f in result["downloaded_files"])
    report["cache"] = cache_summary(dr) if cache_path else {"hits": [], "misses": [], "run_id": None}
    if cache_path:
        save_cache_events(dr, cache_path, dataset_id)
    report["duration_s"] = round(time.perf_counter() - started, 3)
    return report


def _dataset_driver(dataset_id: str, cache_path: str | None, recompute: list[str]) -> driver.Driver:
    """``build_driver``, with a cache that cannot be opened (full disk, permissions) as a StorageError."""
    try:
        return build_driver(cache_path=cache_path, recompute=recompute)
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open the Hamilton cache at {cache_path!r} ({exc}); free some space, or run "
                           "without the cache (--no-cache)", dataset_id=dataset_id,
                           file="metadata_store.db") from exc


def save_cache_events(dr: driver.Driver, cache_path: str, dataset_id: str) -> None:
    """The cache events of the dataset's last run as JSON lines in ``<cache>/run_logs/<dataset>.jsonl``.

    Instead of Hamilton's ``log_to_file``: its one ``cache_logs.jsonl`` grows without end, and a full disk there
    fails the run; here the file is replaced each run, and a failed write costs only the log.
    """
    run_id = dr.cache.last_run_id
    events = dr.cache.logs(level="debug").get(run_id, [])
    path = os.path.join(cache_path, "run_logs", f"{dataset_id}.jsonl")
    try:
        write_text_atomic(path, "".join(json.dumps(e.as_dict(), default=str) + "\n" for e in events))
    except OSError as exc:
        log.warning("%s: could not save the cache events of run %s (%s)", dataset_id, run_id, exc)


def cache_summary(dr: driver.Driver) -> dict:
    """Which nodes of the driver's last run came from the cache and which executed."""
    run_id = dr.cache.last_run_id
    logs = dr.cache.logs(run_id=run_id, level="debug")
    behaviors = dr.cache.behaviors.get(run_id, {})
    hits, misses, checked = [], [], []
    for node_name, events in logs.items():
        kinds = {str(getattr(e, "event_type", "")) for e in events}
        if "RECOMPUTE" in str(behaviors.get(node_name, "")).upper():
            checked.append(node_name)  # always re-run by design (manifest, repository, store look-ups)
        elif any("EXECUTE_NODE" in k for k in kinds):
            misses.append(node_name)
        elif any("GET_RESULT" in k for k in kinds):
            hits.append(node_name)
    return {"hits": sorted(hits), "misses": sorted(misses), "checked": sorted(checked), "run_id": run_id}


def _output_matches(geoparquet: dict) -> bool:
    path = geoparquet["path"]
    if not os.path.exists(path) or os.path.getsize(path) != geoparquet["bytes"]:
        return False
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest() == geoparquet["sha256"]


def run_doi_pipeline(datasets: list[str] | None = None, *, enable_caching: bool = True, cache_path: str | None = None,
                     force_download: bool = False, max_mb: float | None = None, manifest_path: str | None = None,
                     data_dir: str | None = None, max_workers: int | None = None) -> dict[str, dict]:
    """Ingest several datasets side by side; a failure is recorded for its dataset and never stops the others.

    Returns ``{dataset_id: report}``; a failed dataset's entry is ``{"dataset_id", "status": "failed", "error",
    "error_type"}``.
    """
    settings = get_settings()
    manifest_path = manifest_path or settings.manifest_path
    ids = load_manifest(manifest_path).select(datasets)

    kwargs = {"manifest_path": manifest_path, "data_dir": data_dir, "cache_path": cache_path,
              "enable_caching": enable_caching, "force_download": force_download, "max_mb": max_mb}
    cache_dir = (cache_path or settings.cache_path) if enable_caching else None
    if cache_dir:
        prepare_cache(cache_dir)
    # Threads, not processes: GDAL, GEOS, Arrow and DuckDB release the GIL while they work, and one process
    # holds one copy of the libraries (no start-up to pay, a third of the memory of one process per dataset).
    with ThreadPoolExecutor(max_workers=max(1, max_workers or settings.max_workers),
                            thread_name_prefix="pvdoi-dataset") as pool:
        futures = {d: pool.submit(_run_safely, d, kwargs) for d in largest_first(ids, manifest_path)}
        results = {d: futures[d].result() for d in ids}
    if enable_caching:
        record_last_run(cache_path or settings.cache_path, results)
    return results


def _run_safely(dataset_id: str, kwargs: dict) -> dict:
    """``run_dataset`` whose failure becomes a result naming the error (one dataset never stops the others)."""
    try:
        return {"status": "completed", **run_dataset(dataset_id, **kwargs)}
    except Exception as exc:  # recorded per dataset; the others go on
        if not isinstance(exc, PVDOIError):
            log.exception("%s failed with an unexpected error", dataset_id)
        log.error("%s failed: %s", dataset_id, exc)
        return {"dataset_id": dataset_id, "status": "failed", "error": str(exc), "error_type": type(exc).__name__}


def largest_first(ids: list[str], manifest_path: str) -> list[str]:
    """Datasets ordered by expected size, so the longest starts first and the others fill the other cores."""
    manifest = load_manifest(manifest_path)
    return sorted(ids, key=lambda d: -(manifest.get(d).expected_count or 0))


LAST_RUN_FILE = "pvdoi_last_run.json"


def record_last_run(cache_path: str, results: dict[str, dict]) -> None:
    """Remember each dataset's last cache run (ids, hits, misses) for ``pvdoi cache``."""
    path = os.path.join(cache_path, LAST_RUN_FILE)
    previous = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            previous = json.load(fh)
    for dataset_id, result in results.items():
        previous[dataset_id] = {"status": result.get("status"), "cache": result.get("cache"),
                                "error": result.get("error"), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json_atomic(path, previous)
