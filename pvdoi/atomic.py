"""Files written whole or not at all (status, results, cache events, outputs): readers never see half a file."""

from __future__ import annotations

import hashlib
import json
import os
import threading

_UMASK = os.umask(0o022)  # read once, at import (before any thread starts): os.umask can only be read by setting it
os.umask(_UMASK)


def write_text_atomic(path: str, text: str) -> str:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"  # one per thread: writers never share a temporary file
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def publish(tmp: str, final: str | os.PathLike) -> None:
    """Move a finished ``mkstemp`` file into place with the mode a plain ``open`` would have given it.

    ``mkstemp`` makes files readable by their owner only (0600); the GeoParquet outputs and downloads are
    data for a team to read, so they get 0666 less the process's umask (0644 under the usual 022).
    """
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, final)


def write_json_atomic(path: str, value: object) -> str:
    """``value`` as indented JSON (unknown types as their ``str``), written atomically."""
    return write_text_atomic(path, json.dumps(value, indent=1, default=str))


def sha256_file(path: str) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
