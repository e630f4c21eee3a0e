"""A file's next batches parsed ahead in a second thread, or in the caller's own when the process is kept to one.

GDAL parses while the caller turns the previous batch into a frame and standardises it, so a dataset read alone uses
more than one core. That is what a process running one dataset at a time wants, but not a Dask worker started with one
thread so that each worker holds one core: there the read-ahead thread takes part of the core a second worker on the
machine was meant to have. Inside :func:`read_ahead` with 0 (the dataset task on such a worker) the batches are
parsed in the caller's thread, one at a time.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from pvdoi.features import gdal

PREFETCH = 2  # batches parsed ahead of the one standardised: GDAL goes on while the caller waits for the GIL
_AHEAD: contextvars.ContextVar[int] = contextvars.ContextVar("pvdoi_read_ahead", default=PREFETCH)


@contextmanager
def read_ahead(batches: int) -> Iterator[None]:
    """Within the block (this thread's context), files are parsed ``batches`` ahead in a second thread; with 0, in
    the thread that asks for them, one batch at a time (no thread of the reader's own)."""
    token = _AHEAD.set(batches)
    try:
        yield
    finally:
        _AHEAD.reset(token)


def ahead(batches: Iterator, dataset_id: str, file_name: str) -> Iterator:
    """``batches`` of ``file_name``, parsed ahead as :func:`read_ahead` says (by default ``PREFETCH``); GDAL's
    messages while they are parsed are logged and counted as the file's (:mod:`pvdoi.features.gdal`)."""
    count = _AHEAD.get()
    return _prefetched(batches, dataset_id, file_name, count) if count else _inline(batches, dataset_id, file_name)


def _inline(batches: Iterator, dataset_id: str, file_name: str) -> Iterator:
    """``batches`` parsed in the caller's thread, GDAL's messages handled as the file's while each is parsed."""
    try:
        while True:
            with gdal.reading_here(dataset_id, file_name):
                item = next(batches, None)
            if item is None:
                return
            yield item
    finally:  # the caller stopped early (an error downstream): the file is closed here
        batches.close()


def _prefetched(batches: Iterator, dataset_id: str, file_name: str, count: int) -> Iterator:
    """``batches``, the next ``count`` items produced in a worker thread while the caller uses the current one.

    The worker thread reads the file and nothing else: GDAL's messages in it are logged and counted as the file's.
    It runs the ``next`` calls one after another in the order they were asked for.
    """
    pending: deque = deque()
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pvdoi-read", initializer=gdal.reading,
                                initargs=(dataset_id, file_name)) as pool:
            context = contextvars.copy_context()  # the caller's (e.g. a Prefect task run's): its logs stay the run's
            pending.extend(pool.submit(context.run, next, batches, None) for _ in range(count))
            while (item := pending.popleft().result()) is not None:
                pending.append(pool.submit(context.run, next, batches, None))
                yield item
    finally:  # the caller stopped early (an error downstream): nothing more is read, the file is closed here
        for future in pending:
            future.cancel()
        batches.close()
