"""The dataset tasks on a Dask cluster (prefect-dask's ``DaskTaskRunner``), when a flow run names one.

Only the dataset tasks (``ingest``: source → download → extract → read → standardise → write) go to the
cluster, each worker running whole datasets; the flow's own process still loads each dataset as it finishes and runs
Overture and dbt once. ``PVDOI_DASK_ADDRESS`` (or the flow parameter ``dask_address``) is a scheduler's address
(``tcp://host:8786``), or ``local`` / ``local:N`` for a temporary local cluster of N (default 2) single-threaded
worker processes started for the run and closed after it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager


def dask_task_runner(address: str):
    """prefect-dask's task runner for ``address`` (a scheduler, or ``local[:N]`` for a temporary local cluster)."""
    from prefect_dask import DaskTaskRunner

    name, _, workers = address.partition(":")
    if name == "local" and (not workers or workers.isdigit()):
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": int(workers or 2), "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return DaskTaskRunner(address=address)


@contextmanager
def dataset_submitter(address: str | None, task, options) -> Callable[[str], object]:
    """A function submitting ``task(dataset_id, options)`` on the Dask cluster named by ``address`` (started for the
    block, and closed after it), or with the flow's own task runner (threads) when ``address`` is None."""
    if not address:
        yield lambda dataset_id: task.submit(dataset_id, options)
        return
    from prefect.logging import get_run_logger

    with dask_task_runner(address) as runner:
        client = runner.client  # the cluster started, or the scheduler connected to, now
        get_run_logger().info("dataset tasks on the Dask cluster at %s (%s; %d workers now)",
                              client.scheduler.address, address, len(client.scheduler_info()["workers"]))
        yield lambda dataset_id: runner.submit(task, {"dataset_id": dataset_id, "options": options})
