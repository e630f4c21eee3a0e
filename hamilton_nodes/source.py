"""Stage 1: the manifest entry and the files its repository publishes."""

from __future__ import annotations

from hamilton.function_modifiers import cache

from pvdoi.errors import NoMatchingFilesError
from pvdoi.http import Http
from pvdoi.manifest import DatasetSpec, load_manifest
from pvdoi.records import RecordInfo, RemoteFile
from pvdoi.repositories import resolve_files
from pvdoi.settings import Settings


@cache(behavior="recompute")
def dataset_spec(manifest_path: str, dataset_id: str) -> DatasetSpec:
    """The validated manifest entry of the dataset (re-read on every run)."""
    return load_manifest(manifest_path).get(dataset_id)


@cache(behavior="recompute")
def published_record(dataset_spec: DatasetSpec, settings: Settings) -> tuple[RecordInfo, list[RemoteFile]]:
    """The repository record and every file it publishes, as answered by the repository API now."""
    return resolve_files(dataset_spec, Http(settings), settings.repository_urls)


@cache(behavior="recompute")
def selected_files(published_record: tuple[RecordInfo, list[RemoteFile]], dataset_spec: DatasetSpec) -> list[RemoteFile]:
    """The published files whose names pass the manifest's file filter (with their published checksums)."""
    files = published_record[1]
    chosen = [f for f in files if dataset_spec.files.matches(f.name)]
    if not chosen:
        raise NoMatchingFilesError(
            f"no published file matches include={dataset_spec.files.include} exclude={dataset_spec.files.exclude}; "
            f"the record has: {', '.join(f.name for f in files) or '(no files)'}", dataset_id=dataset_spec.id)
    return chosen
