"""The flow: every dataset in parallel (one task each), then the warehouse load and ``dbt build``."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from prefect import flow, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.logging import get_run_logger
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows.artifacts import publish_run_table, publish_status, write_run_results
from flows.overture import overture_divisions
from flows.tasks import dbt_build, ingest_dataset, load_warehouse
from pvdoi.caching import prepare_cache
from pvdoi.manifest import load_manifest
from pvdoi.overture import ensure_division_areas_table
from pvdoi.pipeline import largest_first, record_last_run
from pvdoi.settings import get_settings

_SETTINGS = get_settings()
DATASET_IDS = tuple(load_manifest(_SETTINGS.manifest_path).ids)
DatasetId = Literal[DATASET_IDS]  # the UI form offers the manifest's datasets as a multi-select


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
):
    """Every selected dataset through its Hamilton dataflow, then one warehouse load and ``dbt build``.

    Ends Failed, naming the failed datasets (and a failed Overture fetch or dbt test) with their errors, when
    anything failed; the datasets that succeeded are still loaded and built.

    Args:
        datasets: The manifest's datasets to ingest; empty means all of them.
        max_mb: Largest file to download, in MB (declared size and streamed bytes).
        force_download: Download and verify every file again even if the store holds it.
        use_cache: Reuse Hamilton's cache (unchanged steps are not recomputed).
        cache_path: Hamilton cache folder (default: settings, ./data/hamilton_cache).
        database_path: DuckDB warehouse file (default: <data_dir>/eo_pv_data.duckdb).
        run_dbt: Run `dbt build` (staging, prepared, curated models and their tests) after the load.
        overture: Before dbt, fetch the Overture Maps country and region areas around the installations
            (PVDOI_OVERTURE_* settings); off, the country and region columns stay empty.
        data_dir: Output folder for GeoParquet, status and dbt target (default ./data).
    """
    logger = get_run_logger()
    settings = get_settings()
    manifest = load_manifest(settings.manifest_path)
    ids = manifest.select(list(datasets) if datasets else None)
    data_dir = os.path.abspath(data_dir or settings.data_dir)
    cache_path = os.path.abspath(cache_path or settings.cache_path)
    database_path = os.path.abspath(database_path or settings.database_path or
                                    os.path.join(data_dir, "eo_pv_data.duckdb"))

    if use_cache:
        prepare_cache(cache_path)  # before the dataset tasks open it side by side
    progress_id = create_progress_artifact(progress=0.0, key="pv-ingest-progress",
                                           description="Datasets finished in this run")
    kwargs = {"manifest_path": settings.manifest_path, "data_dir": data_dir, "cache_path": cache_path,
              "use_cache": use_cache, "force_download": force_download, "max_mb": max_mb}
    order = largest_first(ids, settings.manifest_path)  # the longest starts first, the others fill in
    futures = ingest_dataset.map(order, **{k: unmapped(v) for k, v in kwargs.items()})
    results: dict[str, dict] = {}

    def record(dataset_id: str, value: object) -> None:
        if isinstance(value, dict):
            results[dataset_id] = {"status": "completed", **value}
        else:
            results[dataset_id] = {"dataset_id": dataset_id, "status": "failed", "error": str(value),
                                   "error_type": type(value).__name__}
            logger.error("%s failed: %s", dataset_id, value)
        update_progress_artifact(progress_id, progress=100.0 * len(results) / len(ids))

    # Each dataset is loaded as soon as it is ingested, while the others still run (the warehouse has one writer:
    # this thread); the datasets that finished during a load are loaded together next.
    by_future = dict(zip(futures, order))
    load_failure: str | None = None
    for future in as_completed(futures):
        finished = [f for f in futures if by_future[f] not in results and (f is future or f.wrapped_future.done())]
        for f in finished:
            record(by_future[f], f.result(raise_on_failure=False))
        ingested = [results[by_future[f]] for f in finished if results[by_future[f]]["status"] == "completed"]
        if ingested and load_failure is None:
            try:
                load_warehouse(ingested, database_path)
            except Exception as exc:  # the per-dataset results are still published below
                load_failure = f"warehouse load ({type(exc).__name__}: {exc})"
    results = {d: results[d] for d in ids}
    if use_cache:
        record_last_run(cache_path, results)  # for `pvdoi cache`

    succeeded = [r for r in results.values() if r["status"] == "completed"]
    failures = [f"{d} ({r['error_type']}: {r['error']})" for d, r in results.items() if r["status"] != "completed"]
    if load_failure:
        failures.append(load_failure)
    elif succeeded and run_dbt:
        _enrich_and_build(database_path, data_dir, cache_path, use_cache, overture, failures)
    failed_datasets = sum(r["status"] != "completed" for r in results.values())
    message = None
    if failures:
        message = (f"{failed_datasets} of {len(ids)} datasets failed"
                   + (f" (and {len(failures) - failed_datasets} later steps)" if len(failures) > failed_datasets else "")
                   + ": " + "; ".join(failures))
    publish_run_table(results, message)
    publish_status(results, data_dir)
    write_run_results(results, data_dir)
    if failures:
        # No data on the Failed state: Prefect resolves a failed state's data into an exception (a dict is a
        # TypeError in workers); the per-dataset results are in the artifacts and data/flow_runs/<id>.json.
        return Failed(message=message)
    return results


def _enrich_and_build(database_path: str, data_dir: str, cache_path: str, use_cache: bool, overture: bool,
                      failures: list[str]) -> None:
    """Overture divisions (a failure is named, dbt still runs on the previous areas), then ``dbt build``."""
    if overture:
        try:
            overture_divisions(database_path, cache_path=cache_path, use_cache=use_cache)
        except Exception as exc:
            failures.append(f"overture divisions ({type(exc).__name__}: {exc})")
            ensure_division_areas_table(database_path)
    else:
        ensure_division_areas_table(database_path)
    try:
        dbt_build(database_path, os.path.join(data_dir, "dbt_target"))
    except Exception as exc:
        failures.append(f"dbt build ({type(exc).__name__}: {exc})")
