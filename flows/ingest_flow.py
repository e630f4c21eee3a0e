"""The flow: every dataset in parallel (one task each, each loaded as it finishes), then Overture and ``dbt build``."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
import threading
from typing import Annotated, Literal

from prefect import flow
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows.artifacts import Progress, publish_results
from flows.dask_runner import dataset_submitter, local_workers
from flows.fanout import IngestOptions, ingest_all, plan
from flows.tasks import dbt_build, fetch_divisions, ingest_dataset, load_dataset, load_divisions
from pvdoi.manifest import load_manifest
from pvdoi.results import DatasetResult
from pvdoi.settings import Settings, get_settings
from pvdoi.upstream import UpstreamCheck
from pvdoi.warehouse import ensure_division_areas_table
from pvdoi.warehouse.lake import is_lake

log = logging.getLogger("pvdoi.flow")
_SETTINGS = get_settings()
# The deployment's Run form offers the manifest's datasets as a multi-select: its parameter schema is made when the
# flow is defined, so the manifest named by PVDOI_MANIFEST_PATH is read once, here.
DatasetId = Literal[tuple(load_manifest(_SETTINGS.manifest_path).ids)]


@flow(
    name="pv-doi-ingest",
    description="Ingest DOI-published solar PV datasets into GeoParquet, load the DuckDB warehouse, run dbt build.",
    # threads: GDAL, GEOS, Arrow and DuckDB release the GIL, and one process holds one copy of the libraries
    task_runner=ThreadPoolTaskRunner(max_workers=_SETTINGS.max_workers),
    validate_parameters=True,
    log_prints=True,
)
def pv_doi_ingest(
    datasets: list[DatasetId] | None = None,
    max_mb: Annotated[float, Field(gt=0, le=100_000)] = _SETTINGS.max_mb,
    force_download: bool = False,
    use_cache: bool = True,
    cache_path: str | None = None,
    database_path: str | None = None,
    run_dbt: bool = True,
    overture: bool = True,
    data_dir: str | None = None,
    force_dbt: bool = False,
    dbt_task_per_node: bool = False,
    dask_address: str | None = None,
):
    """Every selected dataset through its Hamilton dataflow and into the warehouse, then Overture and ``dbt build``.

    Ends Failed, naming the failed datasets (and a failed load, Overture fetch or dbt test) with their errors, when
    anything failed; the datasets that succeeded are still loaded and built.

    Args:
        datasets: The manifest's datasets to ingest; empty means all of them.
        max_mb: Largest file to download, in MB (declared size and streamed bytes).
        force_download: Download and verify every file again even if the store holds it.
        use_cache: Reuse Hamilton's cache (unchanged steps are not recomputed).
        cache_path: Hamilton cache folder (default: the settings' PVDOI_CACHE_PATH, ./.hamilton_cache).
        database_path: DuckDB file or DuckLake URI (default: PVDOI_DATABASE_PATH, else Settings.warehouse_path).
        run_dbt: Run `dbt build` (staging, prepared, curated models and their tests) after the load.
        overture: Before dbt, fetch the Overture Maps country and region areas around the installations
            (PVDOI_OVERTURE_* settings); off, the country and region columns stay empty.
        data_dir: Output folder for GeoParquet, status and dbt target (default ./data).
        force_dbt: Build every dbt model and test even when nothing changed since the last build.
        dbt_task_per_node: Show each dbt model and test as its own Prefect task (prefect-dbt; slower).
        dask_address: Dataset tasks on this Dask scheduler or `local[:N]` (PVDOI_DASK_ADDRESS; flows/dask_runner.py).
    """
    settings = get_settings()
    options = IngestOptions.resolve(settings, data_dir=data_dir, cache_path=cache_path, use_cache=use_cache,
                                    force_download=force_download, max_mb=max_mb)
    database_path = database_path or settings.warehouse_path(options.data_dir)
    database_path = database_path if is_lake(database_path) else os.path.abspath(database_path)
    ids = plan(datasets, options.manifest_path)
    upstream = UpstreamCheck(ids, options.manifest_path)  # the repositories' newest versions, asked meanwhile
    progress = Progress(len(ids))
    failures: list[str] = []

    def load(result: DatasetResult) -> None:  # in this thread, while the other datasets still run
        progress.finished()
        if result.ok and not failures:  # after a failed load, no more: the warehouse is kept as it was
            if run_dbt and "geoparquet_file" in result.cache.misses:  # a new file: its load changes rows
                _import_dbt_meanwhile()
            state = load_dataset(result, database_path, return_state=True)
            if not state.is_completed():
                failures.append(f"warehouse load of {result.dataset_id} ({_error(state)})")

    address = dask_address or settings.dask_address
    with dataset_submitter(address, ingest_dataset, _task_options(address, options, settings)) as submit:
        results = ingest_all(ids, options, submit, load)
    dbt = (_divisions_and_dbt(database_path, options, failures, overture=overture, force_dbt=force_dbt,
                              dbt_task_per_node=dbt_task_per_node)
           if run_dbt and not failures and any(r.ok for r in results.values()) else None)
    return _final_state(results, failures, options.data_dir, dbt, upstream)


@functools.cache
def _import_dbt_meanwhile() -> None:
    """Import dbt in a thread once a dataset has a new GeoParquet file (its load changes rows: dbt will build): its
    modules take about 1.2 s, which then pass while that file loads, not after. Not when nothing changed (dbt is
    skipped, and the import would slow the run's other threads)."""
    threading.Thread(target=importlib.import_module, args=("dbt.cli.main",), name="import-dbt", daemon=True).start()


def _task_options(address: str | None, options: IngestOptions, settings: Settings) -> IngestOptions:
    """The options the dataset tasks get: the flow's folders in its threads or on a temporary local cluster (this
    machine's processes), none on a scheduler's workers, which take their own (``PVDOI_DATA_DIR``,
    ``PVDOI_CACHE_PATH``): then the flow loads their outputs from the bucket (``PVDOI_OUTPUT_URL``), or from their
    paths, which only a machine that shares the workers' folders can read."""
    if not address or local_workers(address) is not None:
        return options
    host = address.rpartition("://")[2].rpartition(":")[0].strip("[]")
    if not settings.output_url and host not in ("localhost", "127.0.0.1", "::1"):
        log.warning(
            "PVDOI_OUTPUT_URL is not set: the Dask workers of %s write their GeoParquet files in their own data "
            "folders, which this process can load only if it shares them (a shared mount); a dataset whose file it "
            "cannot read fails", address)
    return options.on_own_folders()


def _divisions_and_dbt(database_path: str, options: IngestOptions, failures: list[str], *, overture: bool,
                       force_dbt: bool, dbt_task_per_node: bool) -> dict | None:
    """Overture divisions (a failure is named, dbt still runs on the previous areas), then ``dbt build``; what dbt
    did (see :class:`pvdoi.transform.DbtBuild`), None when it could not run."""
    if overture:
        state = fetch_divisions(database_path, data_dir=options.data_dir, cache_path=options.cache_path,
                                use_cache=options.cache_path is not None, return_state=True)
        if state.is_completed():
            state = load_divisions(state.result(), database_path, return_state=True)
        if not state.is_completed():
            failures.append(f"overture divisions ({_error(state)})")
    ensure_division_areas_table(database_path)  # dbt reads it: empty until a first fetch succeeds
    state = dbt_build(database_path, os.path.join(options.data_dir, "dbt_target"), options.manifest_path,
                      force=force_dbt, task_per_node=dbt_task_per_node, return_state=True)
    if not state.is_completed():
        failures.append(f"dbt build ({_error(state)})")
        return getattr(state.result(raise_on_failure=False), "build", None)
    return dataclasses.asdict(state.result())


def _error(state) -> str:
    """``Type: message`` of the exception a failed task state holds."""
    exc = state.result(raise_on_failure=False)
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(state.message)


def _final_state(results: dict[str, DatasetResult], failures: list[str], data_dir: str, dbt: dict | None,
                 upstream: UpstreamCheck | None = None):
    """The run's artifacts (with each dataset's upstream check) and results file; Failed naming every failure, else
    the results."""
    failed = [f"{d} ({r.error_type}: {r.error})" for d, r in results.items() if not r.ok]
    message = None
    if failed or failures:
        message = (f"{len(failed)} of {len(results)} datasets failed"
                   + (f" (and {len(failures)} later steps)" if failures else "") + ": " + "; ".join(failed + failures))
    publish_results(results, message, data_dir, dbt, upstream=upstream)
    if message:
        # No data on the Failed state: Prefect resolves a failed state's data into an exception (a dict is a
        # TypeError in workers); the per-dataset results are in the artifacts and data/flow_runs/<id>.json.
        return Failed(message=message)
    return results
