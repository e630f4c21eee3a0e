"""The dataset tasks on a Dask cluster (prefect-dask's ``DaskTaskRunner``), when a flow run names one.

Only the dataset tasks (``ingest``: source → download → extract → read → standardise → write) go to the
cluster, each worker running whole datasets; the flow's own process still loads each dataset as it finishes and runs
Overture and dbt once. ``PVDOI_DASK_ADDRESS`` (or the flow parameter ``dask_address``) is a scheduler's address
(``tcp://host:8786``), or ``local`` / ``local:N`` for a temporary local cluster of N (default 2) single-threaded
worker processes started for the run and closed after it. ``pvdoi ingest --dask`` (no Prefect) sends the same work
to the same kind of cluster through Dask's own ``concurrent.futures`` executor (:func:`dask_executor`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from pvdoi.features.readahead import read_ahead


def local_cluster_kwargs(address: str) -> dict | None:
    """``LocalCluster`` arguments for ``local`` / ``local:N`` (N single-threaded worker processes, default 2); None
    for a scheduler's address."""
    name, _, workers = address.partition(":")
    if name != "local" or (workers and not workers.isdigit()):
        return None
    return {"n_workers": int(workers or 2), "threads_per_worker": 1, "processes": True, "dashboard_address": None}


def local_workers(address: str) -> int | None:
    """The worker count of ``local`` / ``local:N`` (a temporary local cluster), None for a scheduler's address."""
    local = local_cluster_kwargs(address)
    return None if local is None else local["n_workers"]


def worker_threads() -> int | None:
    """The thread count of the Dask worker whose task is calling, None outside a Dask worker's task."""
    if "distributed" not in sys.modules:  # not imported: no Dask worker in this process (and no import for threads)
        return None
    from distributed import get_worker

    try:
        return get_worker().state.nthreads
    except ValueError:  # "No worker found": the flow's or the CLI's own process
        return None


@contextmanager
def within_worker_threads() -> Iterator[None]:
    """A dataset run kept to its Dask worker's threads: on a one-thread worker (``--nthreads 1``, ``local:N``) the
    files are parsed in the task's own thread (no read-ahead thread, which would take part of the core meant for
    another worker on the machine); elsewhere, threads included, as always. (Arrow's CPU pool already has one thread
    on a Dask worker: its nanny sets ``OMP_NUM_THREADS=1``; DuckDB's JSON encoding runs in one thread anyway.)"""
    with read_ahead(0) if worker_threads() == 1 else nullcontext():
        yield


def dask_task_runner(address: str):
    """prefect-dask's task runner for ``address`` (a scheduler, or ``local[:N]`` for a temporary local cluster)."""
    from prefect_dask import DaskTaskRunner

    local = local_cluster_kwargs(address)
    if local is not None:
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=local)
    return DaskTaskRunner(address=address)


@contextmanager
def dask_executor(address: str):
    """A ``concurrent.futures`` executor on the Dask cluster ``address`` (a scheduler, or ``local[:N]`` started for
    the block and closed after it); each call submitted is a task of its own (``pure=False``)."""
    from distributed import Client, LocalCluster

    local = local_cluster_kwargs(address)
    with LocalCluster(**local) if local is not None else nullcontext(address) as cluster:
        with Client(cluster) as client:
            yield client.get_executor(pure=False)


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
