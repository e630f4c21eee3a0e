"""What one dataset's run produced: the one record the dataflow, the flow, the artifacts, the warehouse and the CLI share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class GeoParquetOutput:
    """The dataset's GeoParquet file as written."""

    path: str
    sha256: str
    bytes: int
    rows: int


@dataclass(frozen=True)
class CacheRun:
    """Which dataflow nodes came from Hamilton's cache in the dataset's run, which executed, which are always re-run."""

    hits: tuple[str, ...] = ()
    misses: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    run_id: str | None = None


@dataclass(frozen=True)
class DatasetResult:
    """One dataset's outcome: provenance, checksums, every count, the output file, cache use and time, or its error."""

    dataset_id: str
    status: Literal["completed", "failed"] = "completed"
    doi: str | None = None
    title: str | None = None
    license: str | None = None
    repository: str | None = None
    record_id: str | None = None
    record_version: str | None = None
    record_license: str | None = None
    reference: dict | None = None  # pvdoi.citation.reference: creators, year, publisher, version, DOI, licence, ...
    files: tuple[dict, ...] = ()  # {"name", "checksum", "size"} of each downloaded file
    counts: dict[str, int] = field(default_factory=dict)  # read = written + dropped (see pvdoi.features.stream)
    per_file: dict[str, dict[str, int]] = field(default_factory=dict)
    expected_count: int | None = None
    notes: tuple[str, ...] = ()
    reused_files: tuple[str, ...] = ()
    geoparquet: GeoParquetOutput | None = None
    downloaded_bytes: int = 0
    cache: CacheRun = CacheRun()
    duration_s: float = 0.0
    gdal_warnings: int = 0  # GDAL's warnings while its files were read in this run (in the log, pvdoi.features.gdal)
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the dataset was ingested."""
        return self.status == "completed"

    @property
    def licence_warning(self) -> str | None:
        """Why the dataset's licence needs a look before use, or None (see :func:`licence_warning`)."""
        return licence_warning(self.license)

    @property
    def dropped(self) -> int:
        """Features read but not written (empty, unrepairable or duplicate)."""
        return self.counts.get("read", 0) - self.counts.get("written", 0)

    @classmethod
    def failed(cls, dataset_id: str, exc: BaseException) -> DatasetResult:
        """The result of a dataset whose run raised ``exc``."""
        return cls(dataset_id, "failed", error=str(exc), error_type=type(exc).__name__)

    def replace(self, **changes) -> DatasetResult:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Plain JSON-ready values (artifacts, ``--json``, ``data/flow_runs/<id>.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DatasetResult:
        """The result that :meth:`as_dict` gave."""
        data = dict(data)
        if data.get("geoparquet"):
            data["geoparquet"] = GeoParquetOutput(**data["geoparquet"])
        data["cache"] = CacheRun(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in (data.get("cache") or {}).items()})
        for key in ("files", "notes", "reused_files"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)



def licence_warning(license: str | None) -> str | None:
    """Why a licence needs a look before use (unspecified, non-commercial, no derivatives), or None."""
    text = (license or "unspecified").lower().replace("_", "-")
    if text in ("unspecified", "unknown", "none", "proprietary", "other"):
        return f"licence {license or 'unspecified'}: ask the authors before reusing it"
    if any(part in text.split("-") for part in ("nc", "nd")) or "noncommercial" in text:
        return f"licence {license}: restricts use (non-commercial or no derivatives)"
    return None
