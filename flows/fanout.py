"""The one fan-out over datasets: which to run, in what order, each one's result or failure, the run recorded.

The Prefect flow (``flows.ingest_flow``) calls :func:`ingest_all` with its tasks' ``submit``;
:func:`run_doi_pipeline` (``pvdoi ingest``, Python callers) calls it with a thread pool's: the same ordering,
failure capture and record either way, without a Prefect API for the plain one.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow

from flows.dask_runner import within_worker_threads
from flows.dataflow import run_dataset
from flows.progress import PROGRESS
from pvdoi.atomic import write_json_atomic
from pvdoi.caching import prepare_cache
from pvdoi.errors import PVDOIError, StorageError
from pvdoi.manifest import load_manifest
from pvdoi.manifest_text import read_manifest_text, readable_manifest
from pvdoi.objectstore import is_url
from pvdoi.results import DatasetResult
from pvdoi.settings import Settings, get_settings

log = logging.getLogger("pvdoi.fanout")
LAST_RUN_FILE = "pvdoi_last_run.json"


@dataclass(frozen=True)
class IngestOptions:
    """How every dataset of a run is ingested. The folders are absolute paths, so threads and local workers agree, or
    None: the settings (``PVDOI_DATA_DIR``, ``PVDOI_CACHE_PATH``) of the process that runs the dataset, a Dask
    worker's own folders on its own machine (:meth:`on_own_folders`). The manifest's text comes along with its path,
    for a process that does not find that file (:func:`pvdoi.manifest_text.readable_manifest`)."""

    manifest_path: str
    data_dir: str | None
    cache_path: str | None  # None: without Hamilton's cache (use_cache off), or the running process's own
    force_download: bool = False
    max_mb: float | None = None
    use_cache: bool = True
    manifest_text: str | None = None  # None: read at the path by every process

    @classmethod
    def resolve(cls, settings: Settings, *, manifest_path: str | None = None, data_dir: str | None = None,
                cache_path: str | None = None, use_cache: bool = True, force_download: bool = False,
                max_mb: float | None = None) -> IngestOptions:
        """The options given, the settings' values for the rest."""
        manifest_path = os.path.abspath(manifest_path or settings.manifest_path)
        return cls(manifest_path, os.path.abspath(data_dir or settings.data_dir),
                   os.path.abspath(cache_path or settings.cache_path) if use_cache else None,
                   force_download, max_mb if max_mb is not None else settings.max_mb, use_cache,
                   read_manifest_text(manifest_path))

    def on_own_folders(self) -> IngestOptions:
        """These options without their folders: each process that runs a dataset (a Dask worker on another machine)
        takes its data folder and Hamilton cache from its own settings."""
        return dataclasses.replace(self, data_dir=None, cache_path=None)

    def run(self, dataset_id: str) -> DatasetResult:
        """Ingest one dataset with these options (the body of the flow's task and of the plain thread)."""
        options = self if self.data_dir is not None else self._in_own_folders(get_settings())
        manifest_path = self.manifest_path if self.manifest_text is None else readable_manifest(
            self.manifest_path, self.manifest_text, options.data_dir, dataset_id=dataset_id)
        with within_worker_threads():  # a one-thread Dask worker: no reading thread beside the task's
            return run_dataset(dataset_id, manifest_path=manifest_path, data_dir=options.data_dir,
                               cache_path=options.cache_path, enable_caching=options.use_cache,
                               force_download=options.force_download, max_mb=options.max_mb)

    def _in_own_folders(self, settings: Settings) -> IngestOptions:
        """These options with the folders of this process's settings, its Hamilton cache prepared."""
        options = dataclasses.replace(self, data_dir=os.path.abspath(settings.data_dir),
                                      cache_path=os.path.abspath(settings.cache_path) if self.use_cache else None)
        if options.cache_path:
            prepare_cache(options.cache_path)  # a worker may run datasets side by side on it
        return options


def plan(datasets: list[str] | None, manifest_path: str) -> list[str]:
    """The manifest's datasets to run, in manifest order (all when none are named; an unknown id is an error)."""
    return load_manifest(manifest_path).select(list(datasets) if datasets else None)


def largest_first(ids: list[str], manifest_path: str) -> list[str]:
    """Datasets ordered by expected size, so the longest starts first and the others fill the other workers."""
    manifest = load_manifest(manifest_path)
    return sorted(ids, key=lambda d: -(manifest.get(d).expected_count or 0))


def ingest_all(ids: list[str], options: IngestOptions, submit: Callable[[str], object],
               on_result: Callable[[DatasetResult], None] | None = None) -> dict[str, DatasetResult]:
    """Submit every dataset (largest first), turn each outcome into its result as it finishes (a failure never stops the others),
    hand it to ``on_result``, and record the run for ``pvdoi cache``. Results in the order of ``ids``."""
    if options.cache_path:
        prepare_cache(options.cache_path)  # before the datasets open it side by side
    _prepare_process()
    futures = {submit(d): d for d in largest_first(ids, options.manifest_path)}
    results: dict[str, DatasetResult] = {}
    for dataset_id, value in _finished(futures):
        results[dataset_id] = result = _result(dataset_id, value)
        PROGRESS.done(dataset_id, "ingested" if result.ok else "failed",
                      f"{result.counts['written']:,} rows" if result.ok else result.error_type or "")
        if on_result:
            on_result(result)
    results = {d: results[d] for d in ids}
    if options.cache_path:
        record_last_run(options.cache_path, results)
    return results


def _result(dataset_id: str, value: object) -> DatasetResult:
    """A finished dataset's result, or its failure: an exception, or an output this process cannot read."""
    if isinstance(value, DatasetResult):
        out = value.geoparquet
        if not out or is_url(out.path) or os.path.exists(out.path):
            return value
        value = StorageError(
            f"the GeoParquet output {out.path} was written on another machine (a Dask worker's own data folder), "
            "which this process cannot read; set PVDOI_OUTPUT_URL (and PVDOI_S3_*) on the workers and the flow's "
            "process so the outputs are shared in a bucket, or give the workers a data folder this machine mounts",
            dataset_id=dataset_id, file=os.path.basename(out.path))
    log.error("%s failed: %s", dataset_id, value, exc_info=None if isinstance(value, PVDOIError) else value)
    return DatasetResult.failed(dataset_id, value)


def _prepare_process() -> None:
    """Process-wide settings for datasets read side by side in this process (the CLI's or the flow's).

    The libraries' objects, imported by now, go out of the cyclic collector's sight: the datasets' batches allocate
    millions of containers, and every full collection walked all of those objects again with the GIL held (6 % of
    a cold ingest's CPU at scale 1). Arrow allocates from jemalloc rather than mimalloc (pyarrow's default here),
    which hands freed batches back sooner: 40-50 MB less at the peak of a cold ingest at scale 1.
    """
    gc.freeze()
    try:
        pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
        pass


def _finished(futures: dict) -> Iterator[tuple[str, object]]:
    """(dataset, its result or exception) of each future as it finishes: Prefect futures or a thread pool's."""
    if not futures or isinstance(next(iter(futures)), concurrent.futures.Future):  # no Prefect import (0.6 s)
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.exception() or future.result()
        return
    from prefect.futures import as_completed

    for future in as_completed(list(futures)):
        yield futures[future], future.result(raise_on_failure=False)


def run_doi_pipeline(datasets: list[str] | None = None, *, enable_caching: bool = True,
                     cache_path: str | None = None, force_download: bool = False, max_mb: float | None = None,
                     manifest_path: str | None = None, data_dir: str | None = None,
                     max_workers: int | None = None,
                     dask_address: str | None = None) -> dict[str, DatasetResult]:
    """Ingest datasets into GeoParquet side by side in threads (no Prefect API, no warehouse): ``{id: result}``; on
    the Dask cluster ``dask_address`` (default ``PVDOI_DASK_ADDRESS``; a scheduler, or ``local[:N]``:
    ``flows.dask_runner``) when one is named.

    Threads, not processes: GDAL, GEOS, Arrow and DuckDB release the GIL while they work, and one process holds one
    copy of the libraries.
    """
    settings = get_settings()
    options = IngestOptions.resolve(settings, manifest_path=manifest_path, data_dir=data_dir, cache_path=cache_path,
                                    use_cache=enable_caching, force_download=force_download, max_mb=max_mb)
    ids = plan(datasets, options.manifest_path)
    if dask_address or settings.dask_address:
        from flows.dask_runner import dask_executor

        pool = dask_executor(dask_address or settings.dask_address)
    else:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_workers or settings.max_workers),
                                                     thread_name_prefix="pvdoi-dataset")
    with pool as submitter:
        return ingest_all(ids, options, lambda d: submitter.submit(options.run, d))


def record_last_run(cache_path: str, results: dict[str, DatasetResult]) -> None:
    """Remember each dataset's last cache run (ids, hits, misses) for ``pvdoi cache``."""
    path = os.path.join(cache_path, LAST_RUN_FILE)
    previous = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            previous = json.load(fh)
    for dataset_id, result in results.items():
        previous[dataset_id] = {"status": result.status, "cache": dataclasses.asdict(result.cache),
                                "error": result.error, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json_atomic(path, previous)
