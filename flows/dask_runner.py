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


def local_workers(address: str) -> int | None:
    """The worker count of ``local`` / ``local:N`` (a temporary local cluster), None for a scheduler's address."""
    name, _, workers = address.partition(":")
    return int(workers or 2) if name == "local" and (not workers or workers.isdigit()) else None


def dask_task_runner(address: str):
    """prefect-dask's task runner for ``address`` (a scheduler, or ``local[:N]`` for a temporary local cluster)."""
    from prefect_dask import DaskTaskRunner

    workers = local_workers(address)
    if workers is not None:
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return DaskTaskRunner(address=address)


@contextmanager
def dataset_submitter(address: str | None, task, options) -> Callable[[str], object]:
    """A function submitting ``task(dataset_id, options)`` on the Dask cluster named by ``address`` (started for the
    block, and closed after it), or with the flow's own task runner (threads) when ``address`` is None."""
    if not address:
        yield lambda dataset_id: task.submit(dataset_id, options)
        return
    with dask_task_runner(address) as runner:
        yield lambda dataset_id: runner.submit(task, {"dataset_id": dataset_id, "options": options})
