"""Progress of the library's long steps (bytes downloaded, features read), for whoever shows it.

The library does not draw anything: it calls :func:`emit`, and a face (the command line's live display) that
wants the numbers registers a listener with :func:`listening`. Nothing is listening by default, so a run
without a display pays one empty-list check per batch or chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, str, int], None]  # (dataset id, "bytes" or "features", amount; negative to take back)
_listeners: list[Listener] = []
_lock = threading.Lock()


def emit(dataset_id: str, kind: str, amount: int) -> None:
    """Tell every listener that ``dataset_id`` moved on by ``amount`` of ``kind``."""
    for listener in _listeners:
        listener(dataset_id, kind, amount)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """``listener`` gets every event while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
