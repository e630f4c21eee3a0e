"""Small immutable records passed between dataflow nodes (cheap to fingerprint and cache)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """A file as the repository publishes it."""

    name: str
    url: str
    size: int | None
    checksum: str | None  # "md5:<hex>", "gitsha1:<hex>" (git blob SHA-1) or "sha256:<hex>"


@dataclass(frozen=True)
class LocalFile:
    """A downloaded file in the content-addressed store, verified against its published checksum."""

    name: str
    path: str
    size: int
    checksum: str
    downloaded_bytes: int = 0  # 0 when it came from the store without a download


@dataclass(frozen=True)
class SourceFile:
    """A vector file to read: a downloaded file or a member of a downloaded archive."""

    name: str  # the member path inside the archive, or the downloaded file's name
    path: str
    origin: str  # the downloaded file it came from
    origin_checksum: str


@dataclass(frozen=True)
class RecordInfo:
    """What the repository says about the record (for the catalog, provenance and the dataset's reference).

    Each field is None (or empty) when the repository says nothing about it; :mod:`pvdoi.citation` then falls back
    on the manifest entry.
    """

    repository: str
    record_id: str
    version: str | None
    title: str | None
    license: str | None
    doi: str | None
    creators: tuple[str, ...] = ()  # as the record names them: "Family, Given", "Given Family" or an organisation
    published: str | None = None  # ISO date (or date-time) of publication
    publisher: str | None = None  # "Zenodo", "figshare", "GitHub"
    url: str | None = None  # the record's landing page for people (not an API address)
