"""GDAL's warnings while a file is read: into logging (logger ``pvdoi.gdal``, naming dataset and file), counted.

pyogrio turns GDAL's warnings into Python ``RuntimeWarning``s only in the thread that imported it (its error
handler is pushed on GDAL's thread-local handler stack there) and while it opens a file; in any other thread GDAL's
default handler writes ``Warning 1: ...`` straight to stderr, through a live display. The reader's threads push
:func:`_handle` (GDAL's own ``CPLPushErrorHandler``, through ctypes on pyogrio's libgdal) when they start, and
:class:`PythonWarnings` takes the open-time ``RuntimeWarning``s from the ``py.warnings`` logger
(``logging.captureWarnings``). Each is logged once and counted for the dataset whose file it came from while a
:func:`counting` block for that dataset is open.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("pvdoi.gdal")
_LEVELS = {1: logging.DEBUG, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}  # CE_Debug .. CE_Fatal
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)
_thread = threading.local()  # .source: (dataset id, file name) in a reader's thread
_lock = threading.Lock()
_counters: dict[str, GdalWarnings] = {}


@dataclass
class GdalWarnings:
    """How many GDAL warnings a dataset's files gave in one run."""

    count: int = 0


@contextmanager
def counting(dataset_id: str) -> Iterator[GdalWarnings]:
    """Count the GDAL warnings of ``dataset_id``'s files read while the block runs (in any thread)."""
    counter = GdalWarnings()
    with _lock:
        _counters[dataset_id] = counter
    try:
        yield counter
    finally:
        with _lock:
            if _counters.get(dataset_id) is counter:
                del _counters[dataset_id]


def reading(dataset_id: str, file_name: str) -> None:
    """Mark the calling thread as reading ``file_name`` of ``dataset_id``, GDAL's messages in it logged and counted.

    For a thread that reads one file and ends (a reader's ``ThreadPoolExecutor`` initializer): the handler stays
    pushed for the thread's life.
    """
    _thread.source = (dataset_id, file_name)
    gdal = _libgdal()
    if gdal is not None:
        gdal.CPLPushErrorHandler(_HANDLER)


@contextmanager
def reading_here(dataset_id: str, file_name: str) -> Iterator[None]:
    """Within the block, the calling thread reads ``file_name`` of ``dataset_id`` (as in :func:`reading`); after it,
    the thread's handler and file are what they were. For a file read in the caller's own thread, a batch at a time."""
    before = getattr(_thread, "source", None)
    reading(dataset_id, file_name)
    try:
        yield
    finally:
        gdal = _libgdal()  # the handler reading() pushed, if it could
        if gdal is not None:
            gdal.CPLPopErrorHandler()
        _thread.source = before


def record(level: int, text: str) -> None:
    """Log one GDAL message of the calling thread's file, and count it when it is a warning."""
    dataset_id, file_name = getattr(_thread, "source", None) or (None, None)
    if level >= logging.WARNING and dataset_id is not None:
        with _lock:
            counter = _counters.get(dataset_id)
            if counter is not None:
                counter.count += 1
    where = f"{dataset_id}: {file_name}: " if dataset_id else ""
    log.log(level, "%sGDAL: %s", where, text)


class PythonWarnings(logging.Filter):
    """On the ``py.warnings`` logger: a ``RuntimeWarning`` in a reader's thread (pyogrio's, for GDAL's warning while
    it opens the file) is recorded as a GDAL message (:func:`record`) instead of passing on as a Python warning."""

    def filter(self, record_: logging.LogRecord) -> bool:
        text = record_.getMessage()
        if getattr(_thread, "source", None) is None or "RuntimeWarning: " not in text:
            return True
        record(logging.WARNING, text.split("RuntimeWarning: ", 1)[1].splitlines()[0])
        return False


def _handle(err_class: int, err_no: int, message: bytes | None) -> None:
    try:
        text = (message or b"").decode("utf-8", errors="replace").replace("\n", " ")
        record(_LEVELS.get(err_class, logging.WARNING), f"{'Warning' if err_class == 2 else 'Error'} {err_no}: {text}")
    except Exception:  # noqa: BLE001 - an exception must never cross back into GDAL's C code
        pass


_HANDLER = _HANDLER_TYPE(_handle)  # kept alive for the process: GDAL holds the pointer


@functools.cache
def _libgdal() -> ctypes.CDLL | None:
    """pyogrio's libgdal (the copy already loaded: dlopen hands back the same library), or None if not found."""
    import pyogrio

    here = os.path.dirname(pyogrio.__file__)
    paths = sorted(glob.glob(os.path.join(here, os.pardir, "pyogrio.libs", "*gdal*")) +
                   glob.glob(os.path.join(here, ".dylibs", "*gdal*")))
    path = paths[0] if paths else ctypes.util.find_library("gdal")
    if not path:
        log.warning("GDAL's library not found next to pyogrio: its warnings while reading go to stderr")
        return None
    try:
        lib = ctypes.CDLL(path)
        lib.CPLPushErrorHandler.argtypes, lib.CPLPushErrorHandler.restype = [_HANDLER_TYPE], None
        lib.CPLPopErrorHandler.argtypes, lib.CPLPopErrorHandler.restype = [], None
    except (OSError, AttributeError) as exc:  # never fail a read for its warnings' sake
        log.warning("GDAL's library %s cannot take an error handler (%s): its warnings go to stderr", path, exc)
        return None
    return lib
