"""Stage 2: verified local copies of the selected files in the content-addressed store."""

from __future__ import annotations

import os

from hamilton.function_modifiers import cache

from pvdoi.http import Http
from pvdoi.manifest import DatasetSpec
from pvdoi.objectstore import open_bucket
from pvdoi.records import LocalFile, RemoteFile
from pvdoi.settings import Settings
from pvdoi.store import fetch


@cache(behavior="recompute")
def downloaded_files(selected_files: list[RemoteFile], dataset_spec: DatasetSpec, data_dir: str, max_mb: float,
                     force_download: bool, settings: Settings) -> list[LocalFile]:
    """The selected files, each verified against its published checksum (fetched only if the store, and the shared
    store under ``PVDOI_STORE_URL`` if one is set, lacks it)."""
    http = Http(settings)
    limit = min(max_mb, dataset_spec.max_mb or max_mb)
    store = os.path.join(data_dir, "downloads")
    shared = open_bucket(settings.store_url, settings.s3()) if settings.store_url else None
    return [fetch(f, store_dir=store, http=http, max_mb=limit, dataset_id=dataset_spec.id, force=force_download,
                  shared=shared) for f in selected_files]

