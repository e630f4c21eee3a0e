"""One Prefect API for a run from the command line: the configured one, or a temporary local server."""

from __future__ import annotations

import atexit
import gc
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.prefect_db import DefaultDatabase


@contextmanager
def prefect_api(*, meanwhile: Callable[[], object] | None = None) -> Iterator[str | None]:
    """The configured Prefect API (``PREFECT_API_URL``), or else one temporary local server for this run.

    The temporary server is the one Prefect's ephemeral mode starts (``uvicorn`` on
    ``prefect.server.api.server:create_app``, UI off), launched the way ``SubprocessASGIServer`` launches it but
    without importing Prefect's server stack here (seconds of imports this process does not need): the
    server boots on one core while ``meanwhile`` (the flow's imports) runs on the other. Both import without the
    garbage collector's full passes (see :func:`_imports_done`). Yields the API URL.
    """
    # Launched before Prefect is even imported here (its settings alone take a second or two to import), or earlier
    # still by launch_early; stopped again if a Prefect profile turns out to configure an API.
    thresholds = gc.get_threshold()
    gc.set_threshold(*BOOT_GC_THRESHOLDS)  # until the imports are done (_imports_done)
    server = None
    try:
        port, database, migrate, server = _EARLY.pop() if _EARLY else _launch()
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        configured = PREFECT_API_URL.value()
        if configured:
            if server is not None:
                _stop(server)
                server = None
            _imports_done(meanwhile, thresholds)
            yield configured
            return
        ours = database.is_the_configured_one()
        if not migrate and not ours:  # Prefect's settings name another database
            _stop(server)
            server, migrate = _start_server(port, migrate=True), True
        _imports_done(meanwhile, thresholds)
        api_url = f"http://127.0.0.1:{port}/api"
        timeout_s = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        with _serving(api_url, lambda: server.terminate()):  # the settings made while the server boots
            recovered = _healthy_or_recovered(server, database, ours, port, api_url, timeout_s)
            if recovered is not None:
                server, migrate = recovered, True
            if migrate and ours:
                database.record_current()
            print(f"Prefect API: a temporary local server at http://127.0.0.1:{port} for this run", file=sys.stderr)
            yield api_url
    finally:
        gc.set_threshold(*thresholds)
        if server is not None:
            _stop(server)


_EARLY: list[tuple[int, DefaultDatabase, bool, subprocess.Popen]] = []  # launch_early's server, not yet in use


def launch_early() -> None:
    """Launch the temporary server now, at the start of a command that runs a flow: it boots while the command's
    own modules import (a quarter of a second), and :func:`prefect_api` takes it. Stopped at exit if nothing did
    (a wrong option)."""
    if not _EARLY and not os.environ.get("PREFECT_API_URL"):
        _EARLY.append(_launch())
        atexit.register(lambda: _EARLY and _stop(_EARLY.pop()[3]))


def _launch() -> tuple[int, DefaultDatabase, bool, subprocess.Popen | None]:
    """A free port, Prefect's default database, whether it needs migrating, and the server launched on them (None
    when ``PREFECT_API_URL`` names an API)."""
    port, database = _free_port(), DefaultDatabase()
    migrate = not database.is_current()
    return port, database, migrate, None if os.environ.get("PREFECT_API_URL") else _start_server(port, migrate=migrate)


@contextmanager
def _serving(api_url: str, stop: Callable[[], None]) -> Iterator[None]:
    """This process's Prefect settings on the temporary server at ``api_url``; what is still queued for it (logs,
    events) is sent (else exit waits on their retries), then ``stop`` asks it to stop while the settings are
    restored."""
    from prefect.context import refresh_global_settings_context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # Also in the process-wide settings, which threads started without a copy of the context fall back to
    # (prefect-dbt's callback worker): imported before the URL was known, they would have Prefect start a
    # second temporary server of its own there (0.25 GB and seconds of CPU, its logs in neither).
    os.environ["PREFECT_API_URL"] = api_url
    refresh_global_settings_context()
    try:
        # No flow-run heartbeats: they let a server that outlives a run mark it crashed, and this one stops with
        # the run; their thread sleeps in whole seconds, which the end of every flow run waited for (0-1 s).
        with temporary_settings({PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            try:
                yield
            finally:
                for worker in (APILogWorker, EventsWorker):
                    worker.drain_all(timeout=10)
                stop()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        refresh_global_settings_context()


def _imports_done(meanwhile: Callable[[], object] | None, thresholds: tuple[int, ...]) -> None:
    """``meanwhile``, then every object so far (the imported modules: hundreds of thousands, alive until the process
    ends) frozen out of the garbage collector's sight (``gc.freeze``) and its ``thresholds`` back.

    While importing, the collector rarely makes a full pass (``BOOT_GC_THRESHOLDS``): its passes over the growing
    heap took a fifth of the imports' CPU time, and the last one, as the process ends, up to a second (both measured
    in a run with nothing to do). Turning it off instead saves as much but keeps the imports' garbage (11 MB).
    """
    try:
        if meanwhile:
            meanwhile()
    finally:
        gc.freeze()
        gc.set_threshold(*thresholds)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BOOT_GC_THRESHOLDS = (10_000, 10, 10)  # young collections every 10,000 allocations (not 700): full passes become rare
# ``python -m uvicorn``, its app's imports collected and then frozen as here (_imports_done): a fifth of the
# server's CPU time to its first answer.
_SERVER_BOOT = (f"import gc; t = gc.get_threshold(); gc.set_threshold{BOOT_GC_THRESHOLDS}; "
                "import prefect.server.api.server; gc.freeze(); gc.set_threshold(*t); "
                "from uvicorn.main import main; main()")


def _start_server(port: int, *, migrate: bool) -> subprocess.Popen:
    prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
    # Block types are registered by the servers users keep (where their Secret blocks live); a temporary server
    # registering them imports every installed Prefect collection first (dbt included): seconds for nothing.
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_API_BLOCKS_REGISTER_ON_START": "false", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
    if not migrate:
        env["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "false"
    return subprocess.Popen(
        [sys.executable, "-c", _SERVER_BOOT, "--app-dir", str(prefect_dir.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
         "--lifespan", "on"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _healthy_or_recovered(server: subprocess.Popen, database: DefaultDatabase, ours: bool, port: int, api_url: str,
                          timeout_s: float) -> subprocess.Popen | None:
    """Wait for the server; when it died on its own database (half-migrated by a run killed while migrating, or
    corrupt), move that aside (kept, not lost), say so, and start a new server on a new one (returned)."""
    try:
        _wait_until_healthy(server, api_url, timeout_s=timeout_s)
        return None
    except ServerExited as exc:
        if not (ours and database.path.exists() and _DATABASE_TROUBLE.search(exc.stderr)):
            raise
        moved = database.move_aside()
        print(f"warning: Prefect's database {database.path} could not be opened ({_last_line(exc.stderr)}); "
              f"moved it to {moved.name} beside it and started with a new one", file=sys.stderr)
    server = _start_server(port, migrate=True)
    _wait_until_healthy(server, api_url, timeout_s=timeout_s)
    return server


class ServerExited(RuntimeError):
    """The temporary server stopped before it answered; ``stderr`` is what it printed."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(f"the temporary Prefect server exited with code {code}: {_last_line(stderr)}")
        self.stderr = stderr


_DATABASE_TROUBLE = re.compile(r"sqlite3\.(Operational|Database)Error|duplicate column|already exists|"
                               r"file is not a database|database disk image is malformed|alembic", re.I)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _wait_until_healthy(server: subprocess.Popen, api_url: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerExited(server.returncode, server.stderr.read().decode(errors="replace")[-20000:])
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the temporary Prefect server did not answer {api_url}/health within {timeout_s:.0f} s "
                       "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")


def _stop(server: subprocess.Popen) -> None:
    server.terminate()  # again, if it was asked already: uvicorn stops gracefully on any SIGTERM
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
