"""One error hierarchy for the product (in the manner of ``pyogrio/errors.py``).

Every message names the dataset, the file and the offending value. ``transient`` tells the
orchestrator whether a retry can help; permanent errors fail at once.
"""

from __future__ import annotations


class PVDOIError(Exception):
    """Base class of every error this product raises on purpose."""

    transient: bool = False

    def __init__(self, message: str, *, dataset_id: str | None = None, file: str | None = None):
        self.dataset_id = dataset_id
        self.file = file
        where = ", ".join(p for p in (f"dataset {dataset_id!r}" if dataset_id else "",
                                      f"file {file!r}" if file else "") if p)
        super().__init__(f"[{where}] {message}" if where else message)


class ManifestError(PVDOIError):
    """The manifest or a run parameter is invalid; nothing runs."""


class RepositoryError(PVDOIError):
    """The repository API answered something unusable (record missing, bad JSON)."""


class TransientDownloadError(PVDOIError):
    """A network failure that outlived the retries of one attempt; a later attempt may succeed."""

    transient = True


class DownloadError(PVDOIError):
    """A permanent download failure (404, refused request)."""


class FileTooLargeError(DownloadError):
    """A file is larger than the ``max_mb`` limit (declared or streamed)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the published checksum."""


class ArchiveError(PVDOIError):
    """An archive is corrupt or unsafe (path traversal, links, decompression bomb)."""


class NoMatchingFilesError(PVDOIError):
    """The file filters selected nothing."""


class ReadError(PVDOIError):
    """A vector file cannot be opened or parsed."""


class SchemaError(PVDOIError):
    """The data contradicts what the manifest declares (CRS, columns, coordinates)."""


class StorageError(PVDOIError):
    """Writing an output failed (disk full, file size limit, permissions); earlier outputs are intact."""


class WarehouseError(PVDOIError):
    """Loading the DuckDB warehouse failed or the database is busy."""


class ExportError(PVDOIError):
    """An export cannot be made (no warehouse or curated table yet, an unknown format, nothing selected)."""


class DbtBuildError(PVDOIError):
    """``dbt build`` failed; the message names the failing nodes and tests."""


class OvertureSourceError(PVDOIError):
    """The Overture divisions source is unusable (no files for the release, access denied, missing columns, or
    no division areas for a non-empty bounding box); the message names the URL and the release."""


class OvertureUnreachableError(OvertureSourceError):
    """The Overture source could not be reached (connection refused, timeout, server error); a retry may succeed."""

    transient = True
