"""Build and run a Hamilton dataflow of ``hamilton_nodes``: one dataset's ingestion, or the Overture divisions' fetch.

The Prefect tasks and ``run_doi_pipeline`` call these; nothing here fans out over datasets (see ``flows.fanout``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import time

from hamilton import driver

from flows.progress import StageHook
from hamilton_nodes import divisions, download, extract, read, source, standardise, write
from pvdoi.atomic import sha256_file, write_text_atomic
from pvdoi.caching import register_fingerprints, stores
from pvdoi.divisions import register_arrow_fingerprint, s3_access
from pvdoi.errors import StorageError
from pvdoi.features import gdal
from pvdoi.features.geoparquet import geoparquet_path
from pvdoi.objectstore import is_url, object_size
from pvdoi.results import CacheRun, DatasetResult
from pvdoi.settings import Settings, get_settings

log = logging.getLogger("pvdoi.dataflow")
MODULES = (source, download, extract, read, standardise, write)
FINAL_VARS = ["dataset_report", "downloaded_files"]
OUTPUT_NODE = "geoparquet_file"


def build_driver(*, cache_path: str | None, recompute: list[str] | None = None, modules: tuple = MODULES,
                 ignore: tuple[str, ...] = ("settings",), adapters: tuple = ()) -> driver.Driver:
    """A Hamilton driver over ``modules``, with the crash-safe cache when ``cache_path`` is set.

    Inputs named in ``ignore`` are not versioned (settings, credentials); cache events are kept per dataset
    by :func:`save_cache_events`. ``adapters`` are Hamilton lifecycle adapters (the benchmarks' timer, tests' faults).
    """
    builder = driver.Builder().with_modules(*modules)
    if adapters:
        builder = builder.with_adapters(*adapters)
    if cache_path:
        register_fingerprints()
        metadata_store, result_store = stores(cache_path)
        builder = builder.with_cache(path=cache_path, metadata_store=metadata_store, result_store=result_store,
                                     recompute=recompute or None, ignore=list(ignore))
    return builder.build()


def run_dataset(dataset_id: str, *, settings: Settings | None = None, manifest_path: str | None = None,
                data_dir: str | None = None, cache_path: str | None = None, enable_caching: bool = True,
                force_download: bool = False, max_mb: float | None = None) -> DatasetResult:
    """Ingest one dataset into GeoParquet: its result, with cache hits/misses, bytes downloaded and time."""
    settings = settings or get_settings()
    data_dir = data_dir or settings.data_dir
    cache_path = (cache_path or settings.cache_path) if enable_caching else None
    inputs = {
        "manifest_path": manifest_path or settings.manifest_path, "dataset_id": dataset_id, "data_dir": data_dir,
        "max_mb": float(max_mb if max_mb is not None else settings.max_mb), "force_download": force_download,
        "settings": settings, "reuse_unchanged_files": enable_caching,  # --no-cache: every file read again
        "output_url": settings.output_url,  # an input, not only a setting: another URL is another output
    }
    shared = settings.output_url is not None  # the output is checked where it is, after the run (_output_matches)
    recompute = [] if shared or os.path.exists(geoparquet_path(data_dir, dataset_id)) else [OUTPUT_NODE]
    started = time.perf_counter()
    with gdal.counting(dataset_id) as gdal_warnings:
        dr = _dataset_driver(dataset_id, cache_path, recompute)
        result = dr.execute(FINAL_VARS, inputs=inputs)
        if cache_path and not _output_matches(result["dataset_report"], settings):
            log.warning("%s: GeoParquet output changed since it was cached; rewriting it", dataset_id)
            dr = _dataset_driver(dataset_id, cache_path, [OUTPUT_NODE])
            result = dr.execute(FINAL_VARS, inputs=inputs)
    cache = CacheRun()
    if cache_path:
        cache = cache_summary(dr)
        save_cache_events(dr, cache_path, dataset_id)
    return result["dataset_report"].replace(
        downloaded_bytes=sum(f.downloaded_bytes for f in result["downloaded_files"]), cache=cache,
        duration_s=round(time.perf_counter() - started, 3), gdal_warnings=gdal_warnings.count)


def _dataset_driver(dataset_id: str, cache_path: str | None, recompute: list[str]) -> driver.Driver:
    """``build_driver`` (stages reported to the live display), with a cache that cannot be opened (full disk,
    permissions) as a StorageError."""
    try:
        return build_driver(cache_path=cache_path, recompute=recompute, adapters=(StageHook(dataset_id),))
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open the Hamilton cache at {cache_path!r} ({exc}); free some space, or run "
                           "without the cache (--no-cache)", dataset_id=dataset_id,
                           file="metadata_store.db") from exc


def save_cache_events(dr: driver.Driver, cache_path: str, name: str) -> None:
    """The cache events of the dataflow's last run as JSON lines in ``<cache>/run_logs/<name>.jsonl``.

    Instead of Hamilton's ``log_to_file``: its one ``cache_logs.jsonl`` grows without end, and a full disk there
    fails the run; here the file is replaced each run, and a failed write costs only the log.
    """
    run_id = dr.cache.last_run_id
    events = dr.cache.logs(level="debug").get(run_id, [])
    path = os.path.join(cache_path, "run_logs", f"{name}.jsonl")
    try:
        write_text_atomic(path, "".join(json.dumps(e.as_dict(), default=str) + "\n" for e in events))
    except OSError as exc:
        log.warning("%s: could not save the cache events of run %s (%s)", name, run_id, exc)


def cache_summary(dr: driver.Driver) -> CacheRun:
    """Which nodes of the driver's last run came from the cache, which executed, which always re-run."""
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
    return CacheRun(tuple(sorted(hits)), tuple(sorted(misses)), tuple(sorted(checked)), run_id)


def _output_matches(report: DatasetResult, settings: Settings) -> bool:
    """The cached output is still there: the local file with its SHA-256, or the shared object with its size."""
    out = report.geoparquet
    if is_url(out.path):
        return object_size(out.path, settings.s3()) == out.bytes
    return os.path.exists(out.path) and os.path.getsize(out.path) == out.bytes and sha256_file(out.path) == out.sha256


def run_divisions(database_path: str, *, data_dir: str, release: str | None = None, base_url: str | None = None,
                  cache_path: str | None = None, s3_endpoint: str | None = None, settings: Settings | None = None,
                  enable_caching: bool = True) -> dict:
    """Fetch the Overture country and region areas around the warehouse's installations into a file under
    ``<data_dir>/overture/``; the summary of ``division_areas_file`` with cache use and time.

    ``release``, ``base_url`` and ``s3_endpoint`` default to the settings (``PVDOI_OVERTURE_*``). The warehouse
    is only read; :func:`pvdoi.warehouse.load_division_areas` loads the file. Raises
    :class:`~pvdoi.errors.OvertureSourceError` (naming the URL and release) when the source is unreachable,
    has no files for the release, or returns nothing for a non-empty bounding box.
    """
    settings = settings or get_settings()
    cache_path = (cache_path or settings.cache_path) if enable_caching else None
    inputs = {
        "database_path": database_path, "data_dir": data_dir,
        "overture_release": release or settings.overture_release,
        "overture_base_url": base_url or settings.overture_base_url,
        "overture_s3": s3_access(settings, endpoint=s3_endpoint),
        "fallback_km": float(settings.overture_fallback_km),
    }
    started = time.perf_counter()
    if cache_path:
        register_arrow_fingerprint()
    dr = build_driver(cache_path=cache_path, modules=(divisions,), ignore=("overture_s3",))
    summary = dict(dr.execute(["division_areas_file"], inputs=inputs)["division_areas_file"])
    cache = CacheRun()
    if cache_path:
        cache = cache_summary(dr)
        save_cache_events(dr, cache_path, "overture")
    summary["cache"] = dataclasses.asdict(cache)
    summary["duration_s"] = round(time.perf_counter() - started, 3)
    log.info("Overture %s: %s, %d division areas (%s) in %s; cache hits %s", summary["release"], summary["status"],
             summary["rows"], summary["by_subtype"], summary["path"], list(cache.hits))
    return summary
