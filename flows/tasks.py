"""Prefect tasks: one per dataset (its Hamilton dataflow), its warehouse load, the Overture divisions, ``dbt build``."""

from __future__ import annotations

import dataclasses
import os

from prefect import task
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.logging import get_run_logger
from prefect.tasks import exponential_backoff

from flows.artifacts import publish_dbt_build
from flows.dataflow import run_divisions
from flows.fanout import IngestOptions
from flows.progress import PROGRESS
from pvdoi import DBT_PROJECT_DIR
from pvdoi.errors import DbtBuildError, PVDOIError
from pvdoi.results import DatasetResult
from pvdoi.transform import DbtBuild, build_inputs, dbt_vars, plan_build, record_build, run_build
from pvdoi.warehouse import load_datasets, load_division_areas, warehouse, warehouse_lock
from pvdoi.warehouse.lake import retry_conflicted_build, retry_on_conflict

TRANSIENT_BUILTINS = (ConnectionError, TimeoutError)


def is_transient(task, task_run, state) -> bool:
    """Retry condition: only errors a later attempt can fix (network, 5xx after retries), never permanent ones."""
    try:
        state.result(raise_on_failure=True)
    except PVDOIError as exc:
        return exc.transient
    except TRANSIENT_BUILTINS:
        return True
    except BaseException:
        return False
    return False


@task(
    name="ingest-dataset",
    task_run_name="ingest-{dataset_id}",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
    persist_result=True,
    cache_policy=RUN_ID + INPUTS,  # a Retry of the same flow run returns the datasets that succeeded as Cached
)
def ingest_dataset(dataset_id: str, options: IngestOptions) -> DatasetResult:
    """Run the dataset's Hamilton dataflow; its result (paths, counts, checksums, cache)."""
    logger = get_run_logger()
    result = options.run(dataset_id)
    logger.info("%s: %d features written (read %d); cache hits %s; executed %s; %.1f MB downloaded",
                dataset_id, result.counts["written"], result.counts["read"], list(result.cache.hits),
                list(result.cache.misses), result.downloaded_bytes / 2**20)
    for note in result.notes:
        logger.warning("%s: %s", dataset_id, note)
    return result


@task(name="load-dataset", task_run_name="load-{result.dataset_id}")
def load_dataset(result: DatasetResult, database_path: str) -> dict:
    """Replace the dataset's rows in ``raw_data`` with its GeoParquet file's, in one transaction."""
    PROGRESS.stage(result.dataset_id, "load")
    with warehouse(database_path, spatial=False) as con:  # spatial loaded only if rows change
        [loaded] = load_datasets(con, [result])
    PROGRESS.done(result.dataset_id, "loaded" if loaded["loaded"] else "unchanged", f"{loaded['rows']:,} rows")
    get_run_logger().info("%s: %s (%d rows)", result.dataset_id, "loaded" if loaded["loaded"] else "unchanged",
                          loaded["rows"])
    return loaded


@task(name="fetch-divisions", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5),
      retry_condition_fn=is_transient)  # an unreachable source is retried; a wrong release or empty answer is not
def fetch_divisions(database_path: str, *, data_dir: str, cache_path: str | None = None, use_cache: bool = True,
                    release: str | None = None) -> dict:
    """The Overture country and region areas around the warehouse's installations, fetched into a file."""
    fetched = run_divisions(database_path, data_dir=data_dir, release=release, cache_path=cache_path,
                            enable_caching=use_cache)
    get_run_logger().info("Overture %s (%s): %s, %d division areas for bbox %s; cache hits %s, executed %s",
                          fetched["release"], fetched["url"], fetched["status"], fetched["rows"], fetched["bbox"],
                          fetched["cache"]["hits"], fetched["cache"]["misses"])
    return fetched


@task(name="load-divisions")
def load_divisions(fetched: dict, database_path: str) -> dict:
    """Replace ``raw_data.overture_division_areas`` with the fetched areas, in one transaction."""
    with warehouse(database_path) as con:
        return retry_on_conflict(load_division_areas, con, fetched)  # a lake's other writers: loaded again


@task(name="dbt-build")
def dbt_build(database_path: str, target_dir: str, manifest_path: str, *, force: bool = False,
              task_per_node: bool = False) -> DbtBuild:
    """``dbt build`` of the manifest's datasets in one step with dbt's own threads, only what changed since the last
    build (nothing when nothing did, unless ``force``); its node results published as an artifact. Raises
    DbtBuildError naming failed nodes."""
    from pvdoi.duckdb_ext import install_extensions

    manifest_vars = dbt_vars(manifest_path)  # the datasets and their attributes: a changed entry rebuilds
    with warehouse_lock(database_path):
        inputs = build_inputs(database_path, manifest_vars)
        reason, select, changed = plan_build(database_path, inputs, force=force)
        if reason == "skip":
            build = DbtBuild("skipped", "nothing changed since the last build", inputs=inputs)
        else:
            install_extensions(("spatial",))
            PROGRESS.stage("dbt build", "build", reason if select else "all")
            runner = _prefect_dbt_runner(target_dir) if task_per_node else None
            built = retry_conflicted_build(database_path, lambda: run_build(  # a lake's other writers: again
                database_path, os.path.abspath(target_dir), dbt_vars=manifest_vars, select=select, changed=changed,
                runner=runner, on_node=lambda n: PROGRESS.stage("dbt build", "build", f"{n} nodes done")))
            build = dataclasses.replace(built, reason=reason, inputs=inputs)
            if build.status == "built":
                retry_on_conflict(record_build, database_path, build)
    PROGRESS.done("dbt build", build.status, ", ".join(f"{n} {k}" for k, n in build.counts().items()
                                                       if k.startswith(("model", "test"))))
    publish_dbt_build(build)
    get_run_logger().info("dbt build %s (%s) in %.1f s: %s", build.status, build.reason, build.seconds, build.counts())
    if build.status == "failed":
        named = "; ".join(f"{n.kind} {n.name}: {n.message}" for n in build.failures) or build.reason
        error = DbtBuildError(f"dbt build failed: {named}")
        error.build = dataclasses.asdict(build)  # for the run's summary
        raise error
    return build


def _prefect_dbt_runner(target_dir: str):
    """prefect-dbt's runner: a Prefect task per dbt node (slower: see BENCHMARKS.md)."""
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    settings = PrefectDbtSettings(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
                                  target_path=os.path.abspath(target_dir))
    return PrefectDbtRunner(settings=settings, raise_on_failure=False)
