"""Stage 5: the features in EPSG:4326 on the harmonised columns, standardised batch by batch as they are streamed.

The rules (CRS, repairs, geodesic areas, column mapping, provenance) are the engine in ``pvdoi.features``.
"""

from __future__ import annotations

from pvdoi.features.reader import RawLayer
from pvdoi.features.stream import StandardisedFeatures, standardise
from pvdoi.manifest import DatasetSpec


def standardised_features(raw_layers: list[RawLayer], dataset_spec: DatasetSpec) -> StandardisedFeatures:
    """The dataset's features standardised file by file onto the harmonised columns (computed as streamed)."""
    return standardise(raw_layers, dataset_spec)
