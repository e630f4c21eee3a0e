"""The files :class:`~pvdoi.testing.reposerver.RepoServer` publishes, and the calls tests use to change them.

Each file is a :class:`_File` (bytes on disk or in memory, size, md5, git blob sha, file id);
:class:`_PublishedFiles` keeps them per dataset and lets tests replace, add and remove files or
publish a wrong checksum.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


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


def _read(path: Path | None, data: bytes | None, start: int, length: int):
    if data is not None:
        yield data[start:start + length]
        return
    with open(path, "rb") as fh:
        fh.seek(start)
        while length > 0 and (chunk := fh.read(min(_CHUNK, length))):
            length -= len(chunk)
            yield chunk


class _PublishedFiles:
    """The published-files part of ``RepoServer``.

    The host class sets ``_lock``, ``_files`` (dataset id → files), ``_by_id`` (file id → file),
    ``_published`` (file id → checksum published instead of the true one) and ``_next_id``.
    """

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
