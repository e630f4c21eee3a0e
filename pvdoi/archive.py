"""Safe extraction of zip and tar archives: no path traversal, no links, no decompression bombs.

Python's ``zipfile`` has no extraction filter and ``tarfile``'s ``data`` filter does not bound the
expanded size, so the checks that matter here (member names, declared and actual sizes, ratio)
are written out below; tar members additionally go through ``tarfile``'s ``data`` filter.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from pvdoi.errors import ArchiveError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_COPY_CHUNK = 1 << 20


def is_archive(name: str) -> bool:
    """Whether a file name looks like an archive this module extracts."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_member(name: str, *, archive: str, dataset_id: str | None) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"refused absolute member path {name!r}", dataset_id=dataset_id, file=archive)
    if ".." in path.parts:
        raise ArchiveError(f"refused member path {name!r} that escapes the extraction folder",
                           dataset_id=dataset_id, file=archive)
    return path


def extract_archive(path: str, dest: str, *, max_bytes: int, max_ratio: float, dataset_id: str | None = None,
                    label: str | None = None) -> list[str]:
    """Extract ``path`` into ``dest`` (nested archives recursively); return member paths relative to dest."""
    label = label or os.path.basename(path)
    try:
        if path.lower().endswith(".zip"):
            members = _extract_zip(path, dest, max_bytes=max_bytes, max_ratio=max_ratio, dataset_id=dataset_id,
                                   label=label)
        else:
            members = _extract_tar(path, dest, max_bytes=max_bytes, dataset_id=dataset_id, label=label)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zipfile.LargeZipFile) as exc:
        raise ArchiveError(f"corrupt or unreadable archive: {exc}", dataset_id=dataset_id, file=label) from None
    result = []
    for member in members:
        full = os.path.join(dest, member)
        if is_archive(member):
            inner = full + ".d"
            nested = extract_archive(full, inner, max_bytes=max_bytes, max_ratio=max_ratio, dataset_id=dataset_id,
                                     label=f"{label}!{member}")
            result.extend(os.path.relpath(os.path.join(inner, m), dest) for m in nested)
        else:
            result.append(member)
    return result


def _extract_zip(path: str, dest: str, *, max_bytes: int, max_ratio: float, dataset_id: str | None,
                 label: str) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        declared = sum(i.file_size for i in infos)
        compressed = max(1, sum(i.compress_size for i in infos))
        if declared > max_bytes or declared / compressed > max_ratio:
            raise ArchiveError(
                f"refused possible decompression bomb: {compressed} compressed bytes expand to {declared} bytes "
                f"(ratio {declared / compressed:.0f}; limits {max_bytes} bytes, ratio {max_ratio:g})",
                dataset_id=dataset_id, file=label)
        names = []
        written = 0
        for info in infos:
            member = _safe_member(info.filename, archive=label, dataset_id=dataset_id)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"refused symbolic link member {info.filename!r}", dataset_id=dataset_id,
                                   file=label)
            target = Path(dest, *member.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(_COPY_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:  # sizes in the central directory can lie
                        raise ArchiveError(
                            f"refused decompression bomb: expansion passed {max_bytes} bytes while extracting "
                            f"{info.filename!r} (declared total {declared} bytes)", dataset_id=dataset_id, file=label)
                    out.write(chunk)
            names.append(str(member))
        return names


def _extract_tar(path: str, dest: str, *, max_bytes: int, dataset_id: str | None, label: str) -> list[str]:
    with tarfile.open(path) as tf:
        members = tf.getmembers()
        total = 0
        for m in members:
            _safe_member(m.name, archive=label, dataset_id=dataset_id)
            if m.issym() or m.islnk():
                raise ArchiveError(f"refused link member {m.name!r}", dataset_id=dataset_id, file=label)
            if not (m.isfile() or m.isdir()):
                raise ArchiveError(f"refused special member {m.name!r}", dataset_id=dataset_id, file=label)
            total += m.size
        if total > max_bytes:
            raise ArchiveError(f"refused possible decompression bomb: members expand to {total} bytes "
                               f"(limit {max_bytes} bytes)", dataset_id=dataset_id, file=label)
        tf.extractall(dest, filter="data")
        return [m.name for m in members if m.isfile()]


def link_or_copy(src: str, dst: str) -> None:
    """Place ``src`` at ``dst`` by hard link when possible (same file system), else by copy."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(dst):
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
