"""Stage 4: the selected vector files as layers to read (pyogrio's Arrow stream, see ``pvdoi.features.reader``)."""

from __future__ import annotations

from pvdoi.features.reader import RawLayer
from pvdoi.manifest import DatasetSpec
from pvdoi.records import SourceFile


def raw_layers(source_files: list[SourceFile], dataset_spec: DatasetSpec) -> list[RawLayer]:
    """Every selected source file as a layer to read in batches, with its own columns (files are not merged)."""
    return [RawLayer(src) for src in source_files]
