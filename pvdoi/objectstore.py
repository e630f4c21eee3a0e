"""Files that several machines share under an object-store URL (``s3://bucket/prefix``): the download store
(:mod:`pvdoi.store`) and the GeoParquet outputs (:mod:`pvdoi.features.shared`).

One filesystem layer, ``pyarrow.fs`` (its ``S3FileSystem``), chosen over fsspec/s3fs and obstore because pyarrow is
already a dependency (the GeoParquet writer): shared storage adds no package. Its S3 client is the AWS SDK for C++,
with the SDK's standard credential chain (AWS_* variables, ~/.aws, the instance's role) when no key is given, any
S3-compatible endpoint (MinIO, moto), multipart uploads of large files, and pyarrow.parquet reads the same URLs.
s3fs would bring aiobotocore (and its pins on botocore) for the same; obstore is a new native package. What it lacks:
user metadata on objects, so what an object was verified against is in its key (the download store is content
addressed: ``<algo>/<xx>/<digest>/<name>``) or in a JSON record published after it (outputs); and a rename, which
S3 does not have either (``move`` is copy + delete there, a rename on a local folder).

Publishing is the disk's temp-file-and-rename in S3's terms: upload to ``<key>.tmp-<uuid>``, check its size (and
SHA-256 when asked), then move it to ``<key>``; a reader never sees part of an object at a final key. A torn upload
leaves only a temporary key, which readers never look at and the next publish of that key deletes once it is older
than ``STALE_S``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from functools import lru_cache

import pyarrow.fs as pafs

from pvdoi.settings import S3Settings

log = logging.getLogger("pvdoi.objectstore")
CHUNK = 8 << 20  # bytes per read and write (S3 multipart uploads take parts of at least 5 MiB)
STALE_S = 3600.0  # a temporary key this old is a torn upload (an upload in progress is younger)


def is_url(path: str | None) -> bool:
    """``path`` names an object-store URL (``s3://...``), not a local file."""
    return bool(path) and path.startswith("s3://")


class Bucket:
    """The objects under one root URL: their sizes, copies to local files, publishing from local files."""

    def __init__(self, url: str, fs: pafs.FileSystem, root: str):
        self.url, self.fs, self.root = url.rstrip("/"), fs, root.rstrip("/")

    def url_of(self, key: str) -> str:
        """The URL of the object at ``key``."""
        return f"{self.url}/{key}"

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is none at ``key``."""
        info = self.fs.get_file_info(self._path(key))
        return info.size if info.type == pafs.FileType.File else None

    def copy_to(self, key: str, out, on_chunk: Callable[[bytes], None] | None = None) -> int:
        """Stream the object at ``key`` into the open binary file ``out`` (each chunk also to ``on_chunk``); its
        size."""
        size = 0
        with self.fs.open_input_stream(self._path(key)) as src:
            while chunk := src.read(CHUNK):
                if on_chunk is not None:
                    on_chunk(chunk)
                out.write(chunk)
                size += len(chunk)
        return size

    def publish(self, local: str, key: str, *, sha256: str | None = None) -> str:
        """Upload the local file ``local`` to ``key`` through a temporary key, verified (size; SHA-256 when given);
        the object's URL."""
        with open(local, "rb") as src:
            return self._publish(key, lambda out: _pump(src, out), sha256=sha256)

    def publish_json(self, key: str, value: object) -> str:
        """``value`` as JSON at ``key``, published like a file."""
        data = json.dumps(value, indent=1, sort_keys=True, default=str).encode()

        def write(out) -> int:
            out.write(data)
            return len(data)

        return self._publish(key, write, sha256=hashlib.sha256(data).hexdigest())

    def read_json(self, key: str) -> dict | None:
        """The JSON object at ``key``, or None when there is none or it is not a JSON object."""
        try:
            with self.fs.open_input_stream(self._path(key)) as src:
                value = json.loads(src.read())
        except (FileNotFoundError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _publish(self, key: str, write: Callable, *, sha256: str | None) -> str:
        tmp = f"{key}.tmp-{uuid.uuid4().hex}"
        if isinstance(self.fs, pafs.LocalFileSystem):  # a folder needs its parents; S3 has no folders
            self.fs.create_dir(self._path(key).rpartition("/")[0], recursive=True)
        try:
            with self.fs.open_output_stream(self._path(tmp)) as out:
                written = write(out)
            uploaded = self.size(tmp)
            if uploaded != written:
                raise OSError(f"uploaded {uploaded} bytes of {written} to {self.url_of(tmp)}")
            if sha256 is not None and self._sha256(tmp) != sha256:
                raise OSError(f"the upload to {self.url_of(tmp)} does not have the SHA-256 {sha256}")
            self.fs.move(self._path(tmp), self._path(key))
        except BaseException:
            try:
                self.fs.delete_file(self._path(tmp))
            except OSError:
                pass  # never made, or the store is gone: a stale temporary key is swept later
            raise
        self._sweep(key)
        return self.url_of(key)

    def _sha256(self, key: str) -> str:
        h = hashlib.sha256()
        with self.fs.open_input_stream(self._path(key)) as src:
            while chunk := src.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def _sweep(self, key: str) -> None:
        """Delete the temporary keys of ``key`` that torn uploads left (older than ``STALE_S``)."""
        folder, _, name = self._path(key).rpartition("/")
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(folder))
        except OSError:  # listing is a courtesy; the publish itself is done
            return
        for info in infos:
            age = time.time() - info.mtime.timestamp() if info.mtime else 0.0
            if info.base_name.startswith(f"{name}.tmp-") and age > STALE_S:
                log.info("deleting %s, left by a torn upload %.0f s ago", info.path, age)
                self.fs.delete_file(info.path)

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key


def _pump(src, out) -> int:
    size = 0
    while chunk := src.read(CHUNK):
        out.write(chunk)
        size += len(chunk)
    return size


def open_bucket(url: str, s3: S3Settings) -> Bucket:
    """The objects under ``url``: ``s3://bucket/prefix`` on ``s3``'s endpoint and keys (none: the AWS credential
    chain), or a local folder (a path or ``file://`` URL, e.g. a shared mount)."""
    if is_url(url):
        return Bucket(url, s3_filesystem(s3), url.removeprefix("s3://"))
    root = os.path.abspath(url.removeprefix("file://"))
    return Bucket(root, pafs.LocalFileSystem(), root)


def object_size(url: str, s3: S3Settings) -> int | None:
    """The size of the object at the ``s3://`` URL, or None when there is none."""
    return Bucket("s3:/", s3_filesystem(s3), "").size(url.removeprefix("s3://"))


@lru_cache(maxsize=8)
def s3_filesystem(s3: S3Settings) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for these settings (one per settings: a client keeps its connections)."""
    keys = {}
    if s3.key_id is not None or s3.secret is not None:
        keys = {"access_key": s3.key_id and s3.key_id.get_secret_value(),
                "secret_key": s3.secret and s3.secret.get_secret_value()}
    endpoint = {"endpoint_override": s3.host, "scheme": "https" if s3.use_ssl else "http"} if s3.host else {}
    return pafs.S3FileSystem(region=s3.region, **keys, **endpoint)
