"""Stage 6: the dataset's GeoParquet 1.1 file, written atomically as its features stream, and the dataset's result."""

from __future__ import annotations

from hamilton.function_modifiers import cache

from pvdoi.citation import reference
from pvdoi.features.geoparquet import write_geoparquet
from pvdoi.features.stream import StandardisedFeatures
from pvdoi.manifest import DatasetSpec
from pvdoi.objectstore import open_bucket
from pvdoi.records import LocalFile, RecordInfo, RemoteFile
from pvdoi.results import DatasetResult, GeoParquetOutput
from pvdoi.settings import Settings


@cache(behavior="recompute")  # cheap, from the record re-read every run; the file is keyed on its value
def dataset_reference(dataset_spec: DatasetSpec, published_record: tuple[RecordInfo, list[RemoteFile]]) -> dict:
    """The dataset's reference: creators, title, year, publisher, version, DOI, URL, licence and citation line."""
    return reference(dataset_spec, published_record[0])


def geoparquet_file(standardised_features: StandardisedFeatures, data_dir: str,
                    reuse_unchanged_files: bool = True, dataset_reference: dict | None = None,
                    output_url: str | None = None, settings: Settings | None = None) -> dict:
    """Path (or URL, under ``output_url``), size, SHA-256, rows and counts of the dataset's GeoParquet file (zstd,
    bbox covering column, the reference under the ``pvdoi`` metadata key)."""
    shared = open_bucket(output_url, (settings or Settings()).s3()) if output_url else None
    return write_geoparquet(standardised_features, data_dir, reuse=reuse_unchanged_files, reference=dataset_reference,
                            shared=shared)


def dataset_report(geoparquet_file: dict, dataset_spec: DatasetSpec,
                   published_record: tuple[RecordInfo, list[RemoteFile]],
                   downloaded_files: list[LocalFile], dataset_reference: dict | None = None) -> DatasetResult:
    """Everything a researcher needs to trust the output: provenance, checksums and every count."""
    info = published_record[0]
    return DatasetResult(
        dataset_id=dataset_spec.id, doi=dataset_spec.doi, title=dataset_spec.title, license=dataset_spec.license,
        repository=info.repository, record_id=info.record_id, record_version=info.version,
        record_license=info.license, reference=dataset_reference,
        files=tuple({"name": f.name, "checksum": f.checksum, "size": f.size} for f in downloaded_files),
        counts=geoparquet_file["counts"], per_file=geoparquet_file["per_file"],
        expected_count=dataset_spec.expected_count, notes=tuple(geoparquet_file["notes"]),
        reused_files=tuple(geoparquet_file["reused_files"]),
        geoparquet=GeoParquetOutput(**{k: geoparquet_file[k] for k in ("path", "sha256", "bytes", "rows")}),
    )
