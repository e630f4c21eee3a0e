"""A manifest's text: read exactly as its file holds it, and kept where a process can read it.

A run's options carry the manifest's text with its path (``flows.fanout.IngestOptions``): a Dask worker on another
machine (another checkout folder, a manifest kept only where the flow was started) may not find that file, or find
other bytes in it; it then reads a copy of the text under its own data folder, named by the text's SHA-256, so every
dataset of a run reads the manifest the run was planned with.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pvdoi.atomic import sha256_file, write_text_atomic
from pvdoi.errors import ManifestError, StorageError

COPIES = "manifests"  # <data_dir>/manifests/<sha256>.json


def read_manifest_text(path: str | Path) -> str:
    """A manifest file's text, exactly as stored (its bytes as UTF-8, line ends untouched)."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ManifestError(f"manifest {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"manifest {str(path)!r} is not valid JSON: {exc}") from None


def readable_manifest(path: str, text: str, data_dir: str, *, dataset_id: str) -> str:
    """Where this process reads the manifest ``text``: ``path`` when that file holds it byte for byte (the flow's own
    process, its threads, a machine with the same checkout), else ``<data_dir>/manifests/<sha256>.json``, written
    once (atomically) and read by every later dataset of the same text."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if _sha256(path) == digest:
        return path
    copy = os.path.join(data_dir, COPIES, f"{digest}.json")
    if _sha256(copy) != digest:
        try:
            write_text_atomic(copy, text)
        except OSError as exc:
            raise StorageError(f"the manifest {path} is not on this machine, and its copy from the run's options "
                               f"cannot be written to {copy} ({exc})", dataset_id=dataset_id,
                               file=os.path.basename(path)) from exc
    return copy


def _sha256(path: str) -> str | None:
    """The file's SHA-256, None when this process cannot read it (missing, a folder, no permission)."""
    try:
        return sha256_file(path)
    except OSError:
        return None
