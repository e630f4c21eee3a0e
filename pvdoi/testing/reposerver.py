"""A local HTTP server speaking the Zenodo, figshare and GitHub APIs over look-alike files.

Point the product at it with ``RepoServer.env()``. Tests can change published files
(``replace_file``, ``add_file``, ``remove_file``, ``set_published_checksum``), publish a newer
version of a dataset (``publish_new_version``) and inject
faults per path pattern (error status, connection reset, truncated, corrupted or slow bodies).
Run ``python -m pvdoi.testing.reposerver`` to serve until Ctrl-C. The API answers are in
:mod:`~pvdoi.testing.repo_api`, the published files in :mod:`~pvdoi.testing.published`, the
fault model in :mod:`~pvdoi.testing.faults`; this module serves them over HTTP.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pvdoi.testing.doi_api import _DoiApi
from pvdoi.testing.faults import FAULT_KINDS, _Fault, _FaultInjection  # noqa: F401  (FAULT_KINDS: re-exported)
from pvdoi.testing.lookalike import MARKER, write_lookalike_files
from pvdoi.testing.published import _File, _PublishedFiles, _read
from pvdoi.testing.repo_api import _ROUTES, REPOSITORIES, _json, _RepoApi
from pvdoi.testing.versions_api import VERSION_ROUTES, _VersionsApi


class RepoServer(_PublishedFiles, _FaultInjection, _VersionsApi, _DoiApi, _RepoApi):
    """Zenodo, figshare and GitHub look-alike APIs (and doi.org's handle redirect) on ``127.0.0.1``, in a thread.

    Args:
        files_dir: Folder of look-alike files; generated there (or in a temporary folder when
            ``None``) unless it already holds files written with the same ``scale`` and ``seed``.
        scale: Passed to :func:`write_lookalike_files` (``None`` = small test files).
        seed: Passed to :func:`write_lookalike_files`.
        port: TCP port; ``0`` picks a free one.
    """

    _routes = [*VERSION_ROUTES, *_ROUTES]

    def __init__(self, files_dir: str | Path | None = None, *, scale: float | None = None,
                 seed: int = 0, port: int = 0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="pvdoi-repo-") if files_dir is None else None
        self.files_dir = Path(self._tmp.name if self._tmp else files_dir)
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[tuple[str, str | None]] = []  # (path, Authorization header) per request
        self._port, self._httpd, self._lock = port, None, threading.Lock()
        self._faults: list[_Fault] = []
        self._published: dict[int, str] = {}
        self._new_versions: dict[str, list[tuple[str, list[str] | None]]] = {}  # see publish_new_version
        self._files: dict[str, list[_File]] = {}
        self._by_id: dict[int, _File] = {}
        self._next_id = 5_000_001
        marker = self.files_dir / MARKER
        known = json.loads(marker.read_text()) if marker.is_file() else {}
        paths = {ds: [self.files_dir / ds / n for n in names] for ds, names in known.get("files", {}).items()}
        if (known.get("scale"), known.get("seed")) != (scale, seed) or not all(
                p.is_file() for ps in paths.values() for p in ps) or set(paths) != set(REPOSITORIES):
            paths = write_lookalike_files(self.files_dir, scale=scale, seed=seed)
        for ds in REPOSITORIES:
            self._files[ds] = [self._new(p.name, path=p) for p in paths[ds]]

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> RepoServer:
        """Start serving (no-op when already serving); return ``self``."""
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", self._port), _Handler)
            self._httpd.app = self
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                             name="pvdoi-reposerver", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; open keep-alive connections die with their daemon threads."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> RepoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}`` of the running server."""
        if self._httpd is None:
            raise RuntimeError("RepoServer is not running; call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The ``PVDOI_*_URL`` settings that point the product at this server."""
        base = self.base_url
        return {"PVDOI_ZENODO_URL": f"{base}/zenodo", "PVDOI_FIGSHARE_API_URL": f"{base}/figshare",
                "PVDOI_GITHUB_API_URL": f"{base}/github-api", "PVDOI_GITHUB_RAW_URL": f"{base}/github-raw"}

    def count(self, path_substring: str) -> int:
        """How many logged requests have ``path_substring`` in their path (query included)."""
        with self._lock:
            return sum(path_substring in path for _, path in self.requests)

    def downloads(self) -> int:
        """How many logged requests asked for a file's bytes (a Zenodo file's content, a figshare download, a GitHub
        raw file), not for an API's answer."""
        with self._lock:
            return sum(bool(_DOWNLOAD.search(path)) for method, path in self.requests if method == "GET")


_DOWNLOAD = re.compile(r"^/zenodo/api/records/\d+/files/.+/content|^/figshare/ndownloader/|^/github-raw/")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when a client hangs up mid-answer (tests abort downloads on purpose)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pvdoi-reposerver/1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (keep test output quiet)
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _serve(self, *, head: bool) -> None:
        app: RepoServer = self.server.app
        fault = app._take_fault(self.command, self.path, self.headers.get("Authorization"))
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            resp = _json(fault.status, {"status": fault.status, "message": "injected fault"}, extra)
        else:
            resp = app._respond(self.path, self.headers.get("Range"))
        kind = fault.kind if fault is not None else None
        length = resp.length if resp.file else len(resp.body)
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            return
        limit = length
        if kind in ("reset", "truncate"):
            limit = min(length, fault.nbytes if fault.nbytes is not None else length // 2)
        flips = {length // 3, 2 * length // 3} if kind == "corrupt" and length else set()
        chunks = _read(resp.file.path, resp.file.data, resp.start, resp.length) if resp.file else [resp.body]
        sent = 0
        for chunk in chunks:
            chunk = bytearray(chunk[:limit - sent])
            for pos in flips:
                if sent <= pos < sent + len(chunk):
                    chunk[pos - sent] ^= 0xFF
            self.wfile.write(chunk)
            sent += len(chunk)
            if sent >= limit:
                break
        if kind in ("reset", "truncate"):
            self.close_connection = True
        if kind == "reset":
            time.sleep(0.05)  # let the partial body reach the client before the RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


def main(argv: list[str] | None = None) -> None:
    """Serve look-alike repositories until Ctrl-C, printing the environment to use them."""
    parser = argparse.ArgumentParser(prog="python -m pvdoi.testing.reposerver", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    parser.add_argument("--scale", type=float, default=None, help="1.0 for real feature counts")
    parser.add_argument("--dir", default=None, help="folder of look-alike files (default: temporary)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly on kill, too
    with RepoServer(args.dir, scale=args.scale, port=args.port) as server:
        for name, value in server.env().items():
            print(f"export {name}={value}")
        print(f"# serving {server.files_dir} at {server.base_url}; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
