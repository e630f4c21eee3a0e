"""Prefect tasks: one per dataset (the Hamilton dataflow), the warehouse load and ``dbt build``."""

from __future__ import annotations

import logging
import os

from prefect import task
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.logging import get_run_logger
from prefect.tasks import exponential_backoff

from pvdoi import DBT_PROJECT_DIR
from pvdoi.errors import DbtBuildError, PVDOIError
from pvdoi.pipeline import run_dataset
from pvdoi.warehouse import load_datasets, warehouse

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
def ingest_dataset(dataset_id: str, *, manifest_path: str, data_dir: str, cache_path: str | None, use_cache: bool,
                   force_download: bool, max_mb: float) -> dict:
    """Run the dataset's Hamilton dataflow and return its small report (paths, counts, checksums, cache)."""
    logger = get_run_logger()
    report = run_dataset(dataset_id, manifest_path=manifest_path, data_dir=data_dir, cache_path=cache_path,
                         enable_caching=use_cache, force_download=force_download, max_mb=max_mb)
    cache = report["cache"]
    logger.info("%s: %d features written (read %d); cache hits %s; executed %s; %.1f MB downloaded",
                dataset_id, report["counts"]["written"], report["counts"]["read"], cache["hits"], cache["misses"],
                report["downloaded_bytes"] / 2**20)
    for note in report["notes"]:
        logger.warning("%s: %s", dataset_id, note)
    return report


@task(name="load-warehouse")
def load_warehouse(reports: list[dict], database_path: str) -> list[dict]:
    """Load each ingested dataset's GeoParquet into ``raw_data`` (one transaction per dataset)."""
    logger = get_run_logger()
    with warehouse(database_path, spatial=False) as con:  # spatial loaded only if rows change
        loaded = load_datasets(con, reports)
    for result in loaded:
        logger.info("%s: %s (%d rows)", result["dataset_id"], "loaded" if result["loaded"] else "unchanged",
                    result["rows"])
    return loaded


def _release_dbt_duckdb() -> None:
    """Close the database dbt-duckdb keeps open in this process after an in-process invoke."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()
    DuckDBConnectionManager.close_all_connections()


@task(name="dbt-build")
def dbt_build(database_path: str, target_dir: str) -> dict:
    """``dbt build`` on the warehouse through prefect-dbt (one Prefect task per dbt node)."""
    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    from pvdoi.duckdb_ext import install_extensions
    from pvdoi.warehouse import warehouse_lock

    install_extensions(("spatial",))
    os.environ["PVDOI_DATABASE_PATH"] = os.path.abspath(database_path)
    os.environ.setdefault("DBT_USE_COLORS", "false")
    settings = PrefectDbtSettings(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR,
                                  target_path=os.path.abspath(target_dir))
    runner = PrefectDbtRunner(settings=settings, raise_on_failure=True)
    with warehouse_lock(database_path):
        try:
            result = runner.invoke(["build", "--log-path", os.path.abspath(os.path.join(target_dir, "logs"))])
        except ValueError as exc:
            raise DbtBuildError(f"dbt build failed: {exc}") from None
        finally:
            _release_dbt_duckdb()
    nodes = getattr(result.result, "results", []) or []
    statuses: dict[str, int] = {}
    for node in nodes:
        statuses[str(node.status)] = statuses.get(str(node.status), 0) + 1
    logging.getLogger("pvdoi.dbt").info("dbt build: %s", statuses)
    return {"success": bool(result.success), "nodes": len(nodes), "statuses": statuses}
