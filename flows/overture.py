"""Prefect task: the Overture divisions dataflow (country and region areas) between the warehouse load and dbt."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger
from prefect.tasks import exponential_backoff

from flows.tasks import is_transient
from pvdoi.overture import run_overture


@task(
    name="overture-divisions",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=is_transient,  # an unreachable source is retried; a wrong release or empty answer is not
)
def overture_divisions(database_path: str, *, cache_path: str | None = None, use_cache: bool = True,
                       release: str | None = None) -> dict:
    """Load ``raw_data.overture_division_areas`` for the installations' bbox and return the load's summary."""
    logger = get_run_logger()
    summary = run_overture(database_path, release=release, cache_path=cache_path, enable_caching=use_cache)
    logger.info("Overture %s (%s): %s, %d division areas %s for bbox %s; cache hits %s, executed %s",
                summary["release"], summary["url"], summary["status"], summary["rows"], summary["by_subtype"],
                summary["bbox"], summary["cache"]["hits"], summary["cache"]["misses"])
    return summary
