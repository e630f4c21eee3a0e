"""Small files written whole or not at all (status, results, cache events): readers never see half a file."""

from __future__ import annotations

import json
import os


def write_text_atomic(path: str, text: str) -> str:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # one per process: two writers never share a temporary file
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json_atomic(path: str, value: object) -> str:
    """``value`` as indented JSON (unknown types as their ``str``), written atomically."""
    return write_text_atomic(path, json.dumps(value, indent=1, default=str))
