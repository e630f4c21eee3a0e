"""A local HTTP server speaking the Zenodo, figshare and GitHub APIs over look-alike files.

Point the product at it with ``RepoServer.env()``. Tests can change published files
(``replace_file``, ``add_file``, ``remove_file``, ``set_published_checksum``) and inject
faults per path pattern (error status, connection reset, truncated, corrupted or slow bodies).
Run ``python -m pvdoi.testing.reposerver`` to serve until Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pvdoi.testing.lookalike import MARKER, write_lookalike_files

FAULT_KINDS = ("status", "reset", "truncate", "corrupt", "slow")
_CHUNK = 1 << 20
_CC_BY = {"id": "cc-by-4.0", "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}
# How each repository presents itself; metadata abridged from the real records.
REPOSITORIES: dict[str, dict] = {
    "usa_cali_usgs_pv_2016": {
        "type": "figshare", "article_id": 3385780, "version": 4, "published": "2016-11-23",
        "title": "Distributed Solar Photovoltaic Array Location and Extent Data Set for Remote Sensing "
                 "Object Identification",
        "authors": ["Kyle Bradbury", "Raghav Saboo", "Timothy Johnson", "Jordan Malof", "Arjun Devarajan",
                    "Wuming Zhang", "Leslie Collins", "Richard Newell"],
        "license": {"id": "cc0-1.0", "name": "CC0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}},
    "uk_crowdsourced_pv_2020": {
        "type": "zenodo", "record_id": 4059881, "version": "1.0", "published": "2020-09-30",
        "title": "A harmonised, high-coverage, open dataset of solar photovoltaic installations in the UK",
        "authors": ["Stowell, Dan", "Kelly, Jack", "Tanner, Damien", "Taylor, Jamie", "Jones, Ethan",
                    "Geddes, James", "Chalstrey, Ed"], "license": _CC_BY},
    "global_pv_inventory_sent2_spot_2021": {
        "type": "zenodo", "record_id": 5005868, "concept_id": 5005867, "version": "1.0",
        "published": "2021-06-22", "title": "A global inventory of photovoltaic solar energy generating units",
        "authors": ["Kruitwagen, Lucas", "Story, Kyle", "Friedrich, Johannes", "Byers, Logan",
                    "Skillman, Sam", "Hepburn, Cameron"], "license": _CC_BY},
    "global_harmonized_large_solar_farms_2020": {
        "type": "figshare", "article_id": 11310269, "version": 6, "published": "2020-04-23",
        "title": "Harmonised global datasets of wind and solar farm locations and power",
        "authors": ["Sebastian Dunnett", "Alessandro Sorichetta", "Gail Taylor", "Felix Eigenbrod"],
        "license": _CC_BY},
    "chn_med_res_pv_2024": {"type": "github", "owner": "qingfengxitu", "repo": "ChinaPV", "ref": "main",
                            "prefix": ""},
    "ind_pv_solar_farms_2022": {"type": "github", "owner": "microsoft", "repo": "solar-farms-mapping",
                                "ref": "main", "prefix": "data/"},
}


@dataclass(frozen=True)
class _File:
    """One published file: its bytes (on disk or in memory) and their digests."""

    name: str
    file_id: int
    size: int
    md5: str
    blob_sha: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, name: str, file_id: int, *, path: Path | None = None, data: bytes | None = None) -> _File:
        size = len(data) if data is not None else path.stat().st_size
        md5, sha = hashlib.md5(), hashlib.sha1(b"blob %d\0" % size)
        for chunk in _read(path, data, 0, size):
            md5.update(chunk)
            sha.update(chunk)
        return cls(name, file_id, size, md5.hexdigest(), sha.hexdigest(), path, data)


@dataclass
class _Fault:
    pattern: re.Pattern
    kind: str
    times: int
    status: int
    retry_after: float | None
    nbytes: int | None
    delay: float


@dataclass
class _Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: _File | None = None
    start: int = 0
    length: int = 0


def _read(path: Path | None, data: bytes | None, start: int, length: int):
    if data is not None:
        yield data[start:start + length]
        return
    with open(path, "rb") as fh:
        fh.seek(start)
        while length > 0 and (chunk := fh.read(min(_CHUNK, length))):
            length -= len(chunk)
            yield chunk


def _json(status: int, obj, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(obj, indent=1).encode()
    return _Response(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)


def _not_found(what: str) -> _Response:
    return _json(404, {"status": 404, "message": f"Not Found: {what}"})


class RepoServer:
    """Zenodo, figshare and GitHub look-alike APIs on ``127.0.0.1``, run in a daemon thread.

    Args:
        files_dir: Folder of look-alike files; generated there (or in a temporary folder when
            ``None``) unless it already holds files written with the same ``scale`` and ``seed``.
        scale: Passed to :func:`write_lookalike_files` (``None`` = small test files).
        seed: Passed to :func:`write_lookalike_files`.
        port: TCP port; ``0`` picks a free one.
    """

    def __init__(self, files_dir: str | Path | None = None, *, scale: float | None = None,
                 seed: int = 0, port: int = 0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="pvdoi-repo-") if files_dir is None else None
        self.files_dir = Path(self._tmp.name if self._tmp else files_dir)
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[tuple[str, str | None]] = []  # (path, Authorization header) per request
        self._port, self._httpd, self._lock = port, None, threading.Lock()
        self._faults: list[_Fault] = []
        self._published: dict[int, str] = {}
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

    # -- published files --------------------------------------------------------------------
    def _new(self, name: str, *, path: Path | None = None, data: bytes | None = None) -> _File:
        entry = _File.of(name, self._next_id, path=path, data=data)
        self._by_id[entry.file_id], self._next_id = entry, self._next_id + 1
        return entry

    def _names(self, dataset_id: str) -> list[str]:
        if dataset_id not in self._files:
            raise KeyError(f"unknown dataset {dataset_id!r}; known: {', '.join(self._files)}")
        return [f.name for f in self._files[dataset_id]]

    def _index(self, dataset_id: str, name: str) -> int:
        if name not in (names := self._names(dataset_id)):
            raise KeyError(f"dataset {dataset_id!r} publishes no file {name!r}; it has {names}")
        return names.index(name)

    def replace_file(self, dataset_id: str, name: str, data: bytes) -> None:
        """Publish new bytes for a file: new size, checksums and file id (the old id keeps the old bytes)."""
        with self._lock:
            self._files[dataset_id][self._index(dataset_id, name)] = self._new(name, data=data)

    def add_file(self, dataset_id: str, name: str, data: bytes) -> None:
        """Publish one more file in a dataset's record."""
        with self._lock:
            if name in self._names(dataset_id):
                raise KeyError(f"dataset {dataset_id!r} already publishes {name!r}")
            self._files[dataset_id].append(self._new(name, data=data))

    def remove_file(self, dataset_id: str, name: str) -> None:
        """Withdraw a file from a dataset's record (its download URLs answer 404)."""
        with self._lock:
            self._by_id.pop(self._files[dataset_id].pop(self._index(dataset_id, name)).file_id)

    def set_published_checksum(self, dataset_id: str, name: str, value: str) -> None:
        """Publish ``value`` (hex md5, or git sha on GitHub) instead of the true digest."""
        with self._lock:
            i = self._index(dataset_id, name)
            self._published[self._files[dataset_id][i].file_id] = value

    # -- faults -----------------------------------------------------------------------------
    def inject(self, path_pattern: str, kind: str, *, times: int = 1, status: int = 503,
               retry_after: float | None = None, nbytes: int | None = None, delay: float = 1.0) -> None:
        """Make the next ``times`` requests whose path matches ``path_pattern`` fail (-1: forever).

        Args:
            path_pattern: Regular expression searched in the request path (query included).
            kind: ``status`` (answer ``status``, with ``Retry-After`` when ``retry_after``),
                ``reset`` (headers and ``nbytes`` body bytes, then a TCP reset), ``truncate``
                (full Content-Length, ``nbytes`` bytes, then close), ``corrupt`` (bytes flipped,
                same length) or ``slow`` (sleep ``delay`` seconds, then answer normally).
            times: Number of firings; ``-1`` for ever.
            status: Status code of ``status`` faults.
            retry_after: Seconds sent in ``Retry-After`` by ``status`` faults.
            nbytes: Body bytes sent before ``reset``/``truncate`` (default: half the body).
            delay: Seconds a ``slow`` fault waits.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(_Fault(re.compile(path_pattern), kind, times, status, retry_after, nbytes, delay))

    def clear_faults(self) -> None:
        """Forget every injected fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str, authorization: str | None = None) -> _Fault | None:
        with self._lock:
            self.requests.append((method, path))
            self.authorizations.append((path, authorization))
            for fault in self._faults:
                if fault.times != 0 and fault.pattern.search(path):
                    fault.times -= fault.times > 0
                    return fault
        return None

    # -- the APIs ---------------------------------------------------------------------------
    def _respond(self, raw_path: str, range_header: str | None) -> _Response:
        split = urlsplit(raw_path)
        path, query = unquote(split.path), {k: v[-1] for k, v in parse_qs(split.query).items()}
        for pattern, handler in _ROUTES:
            if match := pattern.match(path):
                with self._lock:
                    return handler(self, match, query, range_header)
        return _not_found(f"no API route for {path}")

    def _dataset(self, kind: str, **ids) -> str | None:
        for ds, repo in REPOSITORIES.items():
            if repo["type"] == kind and all(str(repo.get(k)).lower() == str(v).lower() for k, v in ids.items()):
                return ds
        return None

    def _md5(self, f: _File) -> str:
        return self._published.get(f.file_id, f.md5)

    def _zenodo(self, match, query, range_header) -> _Response:
        rid, key = int(match[1]), match[2]
        if concept := self._dataset("zenodo", concept_id=rid):
            target = match[0].replace(f"/records/{rid}", f"/records/{REPOSITORIES[concept]['record_id']}", 1)
            return _Response(301, {"Location": self.base_url + quote(target)})
        ds = self._dataset("zenodo", record_id=rid)
        if ds is None:
            return _json(404, {"status": 404, "message": "The persistent identifier does not exist."})
        files = {f.name: f for f in self._files[ds]}
        if key is not None:
            return _download(files[key], range_header) if key in files else _not_found(f"file {key}")
        repo, url = REPOSITORIES[ds], f"{self.base_url}/zenodo/api/records/{rid}"
        checksum = {f.name: (m if ":" in (m := self._md5(f)) else f"md5:{m}") for f in files.values()}
        record = {
            "id": rid, "recid": str(rid), "doi": f"10.5281/zenodo.{rid}",
            "metadata": {"title": repo["title"], "creators": [{"name": a} for a in repo["authors"]],
                         "license": {"id": repo["license"]["id"]}, "version": repo["version"],
                         "publication_date": repo["published"], "resource_type": {"type": "dataset"}},
            "files": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}/{f.file_id}")), "key": f.name,
                       "size": f.size, "checksum": checksum[f.name],
                       "links": {"self": f"{url}/files/{quote(f.name)}/content"}} for f in files.values()],
            "links": {"self": url, "files": f"{url}/files"},
        }
        if "concept_id" in repo:
            record |= {"conceptrecid": str(repo["concept_id"]), "conceptdoi": f"10.5281/zenodo.{repo['concept_id']}"}
        return _json(200, record)

    def _figshare_file(self, f: _File) -> dict:
        md5 = self._md5(f)
        return {"id": f.file_id, "name": f.name, "size": f.size, "is_link_only": False,
                "download_url": f"{self.base_url}/figshare/ndownloader/files/{f.file_id}",
                "supplied_md5": md5, "computed_md5": md5, "mimetype": "application/octet-stream"}

    def _figshare(self, match, query, range_header) -> _Response:
        aid, version, listing = int(match[1]), match[2], match[3]
        ds = self._dataset("figshare", article_id=aid)
        if ds is None or (version is not None and int(version) != REPOSITORIES[ds]["version"]):
            return _json(404, {"message": "Entity not found: article", "code": "EntityNotFound"})
        files = [self._figshare_file(f) for f in self._files[ds]]
        if listing:
            try:
                size = int(query.get("page_size", query.get("limit", 10)))
                start = int(query["offset"]) if "offset" in query else (int(query.get("page", 1)) - 1) * size
                assert 1 <= size <= 1000 and start >= 0
            except (ValueError, AssertionError):
                return _json(400, {"message": f"Invalid pagination parameters {query}", "code": "BadRequest"})
            return _json(200, files[start:start + size])
        repo = REPOSITORIES[ds]
        v = repo["version"]
        return _json(200, {
            "id": aid, "title": repo["title"], "doi": f"10.6084/m9.figshare.{aid}.v{v}", "version": v,
            "url": f"{self.base_url}/figshare/v2/articles/{aid}/versions/{v}", "defined_type_name": "dataset",
            "published_date": f"{repo['published']}T00:00:00Z",
            "license": {"name": repo["license"]["name"], "url": repo["license"]["url"]},
            "authors": [{"id": 1000 + i, "full_name": a} for i, a in enumerate(repo["authors"])],
            "files": files[:10],
        })

    def _ndownloader(self, match, query, range_header) -> _Response:
        f = self._by_id.get(int(match[1]))
        return _download(f, range_header) if f else _json(404, {"message": "File not found", "code": "NotFound"})

    def _github(self, match, query, range_header) -> _Response:
        owner, repo_name = match[1], match[2]
        raw = match[0].startswith("/github-raw/")
        ref = match[3] if raw else query.get("ref")
        path = (match[4] if raw else match[3] or "").strip("/")
        ds = self._dataset("github", owner=owner, repo=repo_name)
        if ds is None:
            return _not_found(f"repository {owner}/{repo_name}")
        repo = REPOSITORIES[ds]
        ref = ref or repo["ref"]
        if ref != repo["ref"]:
            return _json(404, {"message": f"No commit found for the ref {ref}", "status": "404"})
        files = {repo["prefix"] + f.name: f for f in self._files[ds]}
        if raw:
            return _download(files[path], range_header) if path in files else _not_found(path)
        api = f"{self.base_url}/github-api/repos/{owner}/{repo_name}/contents"

        def entry(p: str, f: _File | None) -> dict:
            return {"name": p.rsplit("/", 1)[-1], "path": p, "size": f.size if f else 0,
                    "sha": self._published.get(f.file_id, f.blob_sha) if f else hashlib.sha1(p.encode()).hexdigest(),
                    "url": f"{api}/{quote(p)}?ref={ref}", "type": "file" if f else "dir",
                    "download_url": f"{self.base_url}/github-raw/{owner}/{repo_name}/{ref}/{quote(p)}" if f else None}
        if path in files:
            return _json(200, entry(path, files[path]))
        prefix = f"{path}/" if path else ""
        children = {p[len(prefix):].split("/")[0] for p in files if p.startswith(prefix)}
        if not children:
            return _json(404, {"message": "Not Found", "status": "404"})
        return _json(200, [entry(prefix + c, files.get(prefix + c)) for c in sorted(children)])


def _download(f: _File, range_header: str | None) -> _Response:
    """A file answer, honouring ``Range: bytes=a-b`` (also ``a-`` and ``-n``) with 206."""
    start, end, status = 0, f.size - 1, 200
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", "ETag": f'"{f.md5}"',
               "Content-Disposition": f'attachment; filename="{f.name}"'}
    if range_header and (m := re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())) and (m[1] or m[2]):
        start, end = (int(m[1]), min(int(m[2] or f.size - 1), f.size - 1)) if m[1] else (max(0, f.size - int(m[2])), end)
        if start >= f.size or start > end:
            return _json(416, {"message": f"range {range_header} outside 0-{f.size}"},
                         {"Content-Range": f"bytes */{f.size}"})
        status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{f.size}"
    return _Response(status, headers, file=f, start=start, length=end - start + 1)


_ROUTES = [
    (re.compile(r"^/zenodo/api/records/(\d+)(?:/files/(.+)/content)?/?$"), RepoServer._zenodo),
    (re.compile(r"^/figshare/v2/articles/(\d+)(?:/versions/(\d+))?(/files)?/?$"), RepoServer._figshare),
    (re.compile(r"^/figshare/ndownloader/files/(\d+)/?$"), RepoServer._ndownloader),
    (re.compile(r"^/github-api/repos/([^/]+)/([^/]+)/contents(?:/(.*))?$"), RepoServer._github),
    (re.compile(r"^/github-raw/([^/]+)/([^/]+)/([^/]+)/(.+)$"), RepoServer._github),
]


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
