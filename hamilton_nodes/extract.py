"""Stage 3: the vector files to read, from plain downloads and (nested) archives."""

from __future__ import annotations

import hashlib
import os
import shutil

from filelock import FileLock
from hamilton.function_modifiers import cache

from pvdoi.archive import extract_archive, is_archive, link_or_copy
from pvdoi.errors import NoMatchingFilesError
from pvdoi.manifest import DatasetSpec
from pvdoi.records import LocalFile, SourceFile
from pvdoi.settings import Settings

_DONE = ".complete"


@cache(behavior="recompute")
def source_files(downloaded_files: list[LocalFile], dataset_spec: DatasetSpec, data_dir: str,
                 settings: Settings) -> list[SourceFile]:
    """The vector files selected by the manifest's read filter, in a work folder keyed by the checksums.

    Plain files are linked side by side (a shapefile needs its sidecars next to it); archives are
    extracted safely. The folder is reused when it was completed before, so this costs nothing
    when nothing changed.
    """
    key = hashlib.sha256("\n".join(sorted(f.checksum for f in downloaded_files)).encode()).hexdigest()[:20]
    work = os.path.join(data_dir, "work", dataset_spec.id, key)
    os.makedirs(os.path.dirname(work), exist_ok=True)
    with FileLock(work + ".lock"):  # another process may be extracting the same files
        members = _prepare(work, downloaded_files, dataset_spec, settings)
    wanted = dataset_spec.read.name_filter()
    chosen = [m for m in members if wanted.matches(m[0])]
    if not chosen:
        raise NoMatchingFilesError(
            f"no extracted file matches the read filter include={wanted.include} exclude={wanted.exclude}; "
            f"the files were: {', '.join(sorted(m[0] for m in members))}", dataset_id=dataset_spec.id)
    return [SourceFile(name=name, path=os.path.join(work, name), origin=origin.name, origin_checksum=origin.checksum)
            for name, origin in sorted(chosen, key=lambda m: m[0])]


def _prepare(work: str, downloaded: list[LocalFile], spec: DatasetSpec,
             settings: Settings) -> list[tuple[str, LocalFile]]:
    marker = os.path.join(work, _DONE)
    members: list[tuple[str, LocalFile]] = []
    if os.path.exists(marker):
        by_name = {f.name: f for f in downloaded}
        with open(marker, encoding="utf-8") as fh:
            for line in fh.read().splitlines():
                name, origin = line.split("\t")
                members.append((name, by_name[origin]))
        return members
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    limit = int(min(settings.max_extract_mb, 1e9) * 1024 * 1024)
    for f in downloaded:
        if is_archive(f.name):
            dest = os.path.join(work, f.name + ".d")
            for name in extract_archive(f.path, dest, max_bytes=limit, max_ratio=settings.max_extract_ratio,
                                        dataset_id=spec.id, label=f.name):
                members.append((os.path.relpath(os.path.join(dest, name), work), f))
        else:
            link_or_copy(f.path, os.path.join(work, f.name))
            members.append((f.name, f))
    tmp = marker + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(f"{name}\t{origin.name}" for name, origin in members))
    os.replace(tmp, marker)
    return members
