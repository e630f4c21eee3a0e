"""One Prefect API for a run from the command line, shared by the flow and its task worker processes."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def prefect_api(*, meanwhile: Callable[[], object] | None = None) -> Iterator[str | None]:
    """The configured Prefect API (``PREFECT_API_URL``), or else one temporary local server for this run.

    Without it, Prefect's ephemeral mode starts a temporary server in the flow's process *and* in every
    process of the ``ProcessPoolTaskRunner`` (they inherit no API URL): seconds and hundreds of MB each, and
    the task runs recorded on servers that the flow's API never sees. ``meanwhile`` (imports, say) runs while
    the server boots in its own process. Yields the API URL in use.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if meanwhile:
            meanwhile()
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    failure: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:  # re-raised in the caller's thread below
            failure.append(exc)

    starter = threading.Thread(target=start, name="prefect-temporary-server", daemon=True)
    starter.start()
    try:
        if meanwhile:
            meanwhile()
    finally:
        starter.join()
    if failure:
        server.stop()
        raise failure[0]
    print(f"Prefect API: a temporary local server at {server.address} for this run", file=sys.stderr)
    os.environ["PREFECT_API_URL"] = server.api_url  # what the spawned task workers read
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        _drain_to(server.api_url)
        server.stop()


def _drain_to(api_url: str) -> None:
    """Send the logs and events still queued while the server is up (else exit waits on their retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=10)
