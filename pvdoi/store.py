"""The content-addressed download store: stream, verify, atomically rename; never fetch twice.

With a shared store (``PVDOI_STORE_URL``, a :class:`pvdoi.objectstore.Bucket`) the same layout lives under its URL
too: a file missing here is copied from there (and verified) before the repository is asked, and every file
downloaded from the repository is published there for the other machines.
"""

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
from pvdoi.objectstore import Bucket
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


def store_key(checksum: str, name: str) -> str:
    """A file's place in the store, relative to its root: ``<algo>/<xx>/<digest>/<name>``."""
    algo, digest = checksum.split(":", 1)
    return f"{algo}/{digest[:2]}/{digest}/{name}"


def store_path(store_dir: str, checksum: str, name: str) -> Path:
    """Where a file with this checksum lives in the store."""
    return Path(store_dir) / store_key(checksum, name)


def fetch(remote: RemoteFile, *, store_dir: str, http: Http, max_mb: float, dataset_id: str,
          force: bool = False, shared: Bucket | None = None) -> LocalFile:
    """The verified local copy of ``remote``, downloaded only when the store (here, else the ``shared`` one) lacks it;
    published to the ``shared`` store when that lacks it."""
    limit = int(max_mb * MB)
    if remote.size is not None and remote.size > limit:
        raise FileTooLargeError(
            f"published size {remote.size / MB:.1f} MB ({remote.size} bytes) exceeds max_mb={max_mb:g} "
            f"({limit} bytes); raise --max-mb to take it", dataset_id=dataset_id, file=remote.name)
    if remote.checksum and not force:
        cached = store_path(store_dir, remote.checksum, remote.name)
        if cached.is_file() and (remote.size is None or cached.stat().st_size == remote.size):
            found = LocalFile(remote.name, str(cached), cached.stat().st_size, remote.checksum, 0)
            return _share(shared, found, dataset_id, replace=False) if shared else found
        if shared is not None and (copied := _from_shared(remote, shared, store_dir, dataset_id)) is not None:
            return copied
    try:
        found = _download(remote, store_dir=store_dir, http=http, limit=limit, max_mb=max_mb, dataset_id=dataset_id)
    except ChecksumError as exc:  # a corrupted transfer is worth one fresh download; twice means the source is bad
        log.warning("%s; downloading once more", exc)
        found = _download(remote, store_dir=store_dir, http=http, limit=limit, max_mb=max_mb, dataset_id=dataset_id)
    return _share(shared, found, dataset_id, replace=True) if shared else found


def _download(remote: RemoteFile, *, store_dir: str, http: Http, limit: int, max_mb: float,
              dataset_id: str) -> LocalFile:
    return _into_store(remote, remote.url, store_dir, dataset_id, lambda tmp_name, fd: _stream_to_store(
        remote, tmp_name, fd, store_dir=store_dir, http=http, limit=limit, max_mb=max_mb, dataset_id=dataset_id))


def _into_store(remote: RemoteFile, source: str, store_dir: str, dataset_id: str, fill):
    """``fill(tmp_name, fd)`` on a new temporary file in the store (deleted afterwards unless published), copying
    ``source`` (the repository's URL or the shared store's)."""
    tmp_dir = Path(store_dir) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=tmp_dir)
    try:
        return fill(tmp_name, fd)
    except OSError as exc:  # the disk or the shared store, not the network: network errors arrive as PVDOIError
        raise StorageError(f"cannot store the download of {source} in {store_dir}: {exc}",
                           dataset_id=dataset_id, file=remote.name) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _from_shared(remote: RemoteFile, shared: Bucket, store_dir: str, dataset_id: str) -> LocalFile | None:
    """The shared store's copy of ``remote``, copied here and verified; None when it has none or a bad one."""
    key = store_key(remote.checksum, remote.name)

    def copy(tmp_name: str, fd: int) -> LocalFile | None:
        with os.fdopen(fd, "wb") as out:
            size = shared.size(key)
            if size is None:
                return None
            if remote.size is not None and size != remote.size:
                return _bad_copy(dataset_id, remote, shared.url_of(key), f"{size} bytes, published {remote.size}")
            hasher = _Hasher(remote.checksum, remote.size)
            copied = shared.copy_to(key, out, hasher.update)
        if hasher.value() != remote.checksum:
            return _bad_copy(dataset_id, remote, shared.url_of(key), f"checksum {hasher.value()}, published "
                             f"{remote.checksum}")
        final = store_path(store_dir, remote.checksum, remote.name)
        final.parent.mkdir(parents=True, exist_ok=True)
        publish(tmp_name, final)
        log.info("copied %s from the shared store (%d bytes, %s verified)", remote.name, copied, remote.checksum)
        return LocalFile(remote.name, str(final), copied, remote.checksum, 0)

    return _into_store(remote, shared.url_of(key), store_dir, dataset_id, copy)


def _bad_copy(dataset_id: str, remote: RemoteFile, url: str, problem: str) -> None:
    log.warning("[dataset %r, file %r] the shared store's copy %s is not the published file (%s); downloading it again "
                "from the repository and replacing it", dataset_id, remote.name, url, problem)


def _share(shared: Bucket, local: LocalFile, dataset_id: str, *, replace: bool) -> LocalFile:
    """``local`` published to the shared store (always with ``replace``, else when it lacks a copy of that size)."""
    key = store_key(local.checksum, local.name)
    try:
        if replace or shared.size(key) != local.size:
            shared.publish(local.path, key)
    except OSError as exc:
        raise StorageError(f"cannot publish {local.name} to the shared store at {shared.url_of(key)}: {exc}",
                           dataset_id=dataset_id, file=local.name) from None
    return local


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

