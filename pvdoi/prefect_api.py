"""One Prefect API for a run from the command line: the configured one, or a temporary local server."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def prefect_api(*, meanwhile: Callable[[], object] | None = None) -> Iterator[str | None]:
    """The configured Prefect API (``PREFECT_API_URL``), or else one temporary local server for this run.

    The temporary server is the one Prefect's ephemeral mode starts (``uvicorn`` on
    ``prefect.server.api.server:create_app``, UI off), launched the way ``SubprocessASGIServer`` launches it but
    without importing Prefect's server stack here (seconds of imports this process does not need): the
    server boots on one core while ``meanwhile`` (the flow's imports) runs on the other. Yields the API URL.
    """
    # Launched before Prefect is even imported here (its settings alone take a second or two to import); stopped
    # again if a Prefect profile turns out to configure an API.
    port = _free_port()
    server = None if os.environ.get("PREFECT_API_URL") else _start_server(port)
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if server is not None:
            _stop(server)
        if meanwhile:
            meanwhile()
        yield configured
        return
    try:
        if meanwhile:
            meanwhile()
        api_url = f"http://127.0.0.1:{port}/api"
        _wait_until_healthy(server, api_url, timeout_s=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        print(f"Prefect API: a temporary local server at http://127.0.0.1:{port} for this run", file=sys.stderr)
        os.environ["PREFECT_API_URL"] = api_url
        try:
            with temporary_settings({PREFECT_API_URL: api_url}):
                yield api_url
        finally:
            os.environ.pop("PREFECT_API_URL", None)
            _drain_to(api_url)
    finally:
        _stop(server)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
    prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
    # Block types are registered by the servers users keep (where their Secret blocks live); a temporary server
    # registering them imports every installed Prefect collection first (dbt included): seconds for nothing.
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_API_BLOCKS_REGISTER_ON_START": "false", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
         "--lifespan", "on"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_until_healthy(server: subprocess.Popen, api_url: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the temporary Prefect server exited with code {server.returncode}: "
                               f"{server.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the temporary Prefect server did not answer {api_url}/health within {timeout_s:.0f} s "
                       "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _drain_to(api_url: str) -> None:
    """Send the logs and events still queued while the server is up (else exit waits on their retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=10)
