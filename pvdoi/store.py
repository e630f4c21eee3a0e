"""The content-addressed download store: stream, verify, atomically rename; never fetch twice."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from pvdoi import events
from pvdoi.atomic import publish
from pvdoi.errors import ChecksumError, DownloadError, FileTooLargeError, StorageError
from pvdoi.http import Http
from pvdoi.records import LocalFile, RemoteFile

log = logging.getLogger("pvdoi.store")
MB = 1024 * 1024


class _Hasher:
    """Incremental hash for a published checksum ``algo:hex`` (md5, sha256, git blob sha1)."""

    def __init__(self, checksum: str | None, declared_size: int | None):
        self.algo = checksum.split(":", 1)[0] if checksum else "sha256"
        if self.algo == "gitsha1":
            self._h = hashlib.sha1(b"blob %d\0" % (declared_size or 0))
        elif self.algo in ("md5", "sha256", "sha1"):
            self._h = hashlib.new(self.algo)
        else:
            raise DownloadError(f"unsupported checksum algorithm in {checksum!r}")

    def update(self, chunk: bytes) -> None:
        self._h.update(chunk)

    def value(self) -> str:
        return f"{self.algo}:{self._h.hexdigest()}"


def store_path(store_dir: str, checksum: str, name: str) -> Path:
    """Where a file with this checksum lives in the store."""
    algo, digest = checksum.split(":", 1)
    return Path(store_dir) / algo / digest[:2] / digest / name


def fetch(remote: RemoteFile, *, store_dir: str, http: Http, max_mb: float, dataset_id: str,
          force: bool = False) -> LocalFile:
    """The verified local copy of ``remote``, downloaded only when the store lacks it."""
    limit = int(max_mb * MB)
    if remote.size is not None and remote.size > limit:
        raise FileTooLargeError(
            f"published size {remote.size / MB:.1f} MB ({remote.size} bytes) exceeds max_mb={max_mb:g} "
            f"({limit} bytes); raise --max-mb to take it", dataset_id=dataset_id, file=remote.name)
    if remote.checksum and not force:
        cached = store_path(store_dir, remote.checksum, remote.name)
        if cached.is_file() and (remote.size is None or cached.stat().st_size == remote.size):
            return LocalFile(remote.name, str(cached), cached.stat().st_size, remote.checksum, 0)
    try:
        return _download(remote, store_dir=store_dir, http=http, limit=limit, max_mb=max_mb, dataset_id=dataset_id)
    except ChecksumError as exc:  # a corrupted transfer is worth one fresh download; twice means the source is bad
        log.warning("%s; downloading once more", exc)
    return _download(remote, store_dir=store_dir, http=http, limit=limit, max_mb=max_mb, dataset_id=dataset_id)


def _download(remote: RemoteFile, *, store_dir: str, http: Http, limit: int, max_mb: float,
              dataset_id: str) -> LocalFile:
    tmp_dir = Path(store_dir) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=tmp_dir)
    try:
        return _stream_to_store(remote, tmp_name, fd, store_dir=store_dir, http=http, limit=limit, max_mb=max_mb,
                                dataset_id=dataset_id)
    except OSError as exc:  # the disk, not the network: network errors arrive as PVDOIError
        raise StorageError(f"cannot store the download of {remote.url} in {store_dir}: {exc}",
                           dataset_id=dataset_id, file=remote.name) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _stream_to_store(remote: RemoteFile, tmp_name: str, fd: int, *, store_dir: str, http: Http, limit: int,
                     max_mb: float, dataset_id: str) -> LocalFile:
    with os.fdopen(fd, "wb") as out:
        state = {"size": 0, "hasher": _Hasher(remote.checksum, remote.size)}

        def restart(_reason: str) -> None:
            out.seek(0)
            out.truncate()
            events.emit(dataset_id, "bytes", -state["size"])
            state.update(size=0, hasher=_Hasher(remote.checksum, remote.size))

        with http.stream(remote.url, dataset_id=dataset_id, file=remote.name, on_retry=restart) as chunks:
            for chunk in chunks():
                state["size"] += len(chunk)
                if state["size"] > limit:
                    raise FileTooLargeError(
                        f"streamed more than max_mb={max_mb:g} ({limit} bytes) and still going; published size "
                        f"{'unknown' if remote.size is None else f'{remote.size} bytes'}",
                        dataset_id=dataset_id, file=remote.name)
                state["hasher"].update(chunk)
                out.write(chunk)
                events.emit(dataset_id, "bytes", len(chunk))
        out.flush()
        os.fsync(out.fileno())
    size, actual = state["size"], state["hasher"].value()
    if remote.checksum and actual != remote.checksum:
        raise ChecksumError(
            f"checksum mismatch for {remote.url}: expected {remote.checksum}, got {actual} "
            f"({size} bytes, published size {remote.size}); the file was discarded",
            dataset_id=dataset_id, file=remote.name)
    checksum = remote.checksum or actual
    final = store_path(store_dir, checksum, remote.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    publish(tmp_name, final)
    log.info("downloaded %s (%d bytes, %s verified)", remote.name, size, checksum)
    return LocalFile(remote.name, str(final), size, checksum, size)

