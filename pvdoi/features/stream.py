"""A dataset's harmonised features in EPSG:4326 (valid 2D geometries, areas, provenance), standardised batch by batch.

The rules for one batch's geometries are in :mod:`pvdoi.features.geometry`, those for its attributes in
:mod:`pvdoi.features.attributes`; this module streams the files through them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import geopandas as gpd
import pandas as pd

from pvdoi import events
from pvdoi.features import ENGINE_VERSION
from pvdoi.features.attributes import duplicated, json_rows
from pvdoi.features.batch import harmonised, standardise_batch
from pvdoi.features.geometry import WGS84, source_crs
from pvdoi.features.reader import BATCH_SIZE, RawLayer, layer_batches
from pvdoi.manifest import DatasetSpec

log = logging.getLogger("pvdoi.standardise")
COUNTS = ("read", "repaired_invalid", "repaired_text", "dropped_empty", "dropped_unrepairable", "dropped_duplicate",
          "written")


@dataclass
class StandardisedFeatures:
    """The dataset's harmonised features: its layers and the rules that standardise them, batch by batch.

    The value is lazy: iterating :meth:`stream` reads, standardises and yields the features in file order
    (the write node does this, so the dataset is never held whole); ``frame``, ``counts``, ``per_file`` and
    ``notes`` collect it in memory for callers that want it whole. ``lineage`` (source checksums, manifest
    entry, reader and standardisation code) is its cache data version.
    """

    layers: list[RawLayer]
    spec: DatasetSpec
    ingested_at: pd.Timestamp
    lineage: str | None = None

    def stream(self, *, whole_layers: bool = False, each: Callable | None = None) -> FeatureStream:
        """The features as standardised GeoDataFrame batches; counts and notes are complete once it is exhausted.

        ``each`` (an encoder, say) is applied to every batch in the thread that made it; the stream yields its results.
        """
        return FeatureStream(self, whole_layers=whole_layers, each=each)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_collected"}  # the recipe, not its result

    def drained(self, *, each: Callable | None = None) -> tuple[FeatureStream, list]:
        """One full pass: the stream (counts, notes) and everything it yielded; batched, or read whole when a file's
        batches disagree on a column's type (see :class:`BatchesDisagree`)."""
        stream = self.stream(each=each)
        try:
            return stream, list(stream)
        except BatchesDisagree as exc:  # rare: read each file whole, as one batch
            log.info("%s: %s; reading each file whole", self.spec.id, exc)
            stream = self.stream(whole_layers=True, each=each)
            return stream, list(stream)

    def _collect(self) -> FeatureStream:
        if "_collected" not in self.__dict__:
            stream, frames = self.drained()
            frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
            stream.frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)
            self.__dict__["_collected"] = stream
        return self.__dict__["_collected"]

    frame = property(lambda self: self._collect().frame, doc="All features in one GeoDataFrame.")
    counts = property(lambda self: self._collect().counts, doc="Totals of every count over the files.")
    per_file = property(lambda self: self._collect().per_file, doc="The counts of each file.")
    notes = property(lambda self: self._collect().notes, doc="What a researcher should know about the inputs.")


class BatchesDisagree(Exception):
    """A file's batches came out with different column types, which whole-file reading would have unified.

    (An integer column with nulls in some batches only is float in those: its JSON would read ``1.0`` there and
    ``1`` elsewhere.) The caller starts again reading each file whole, which gives the one answer.
    """


class FeatureStream:
    """One pass over a dataset's standardised features (see :meth:`StandardisedFeatures.stream`)."""

    def __init__(self, features: StandardisedFeatures, *, whole_layers: bool, each: Callable | None = None) -> None:
        self.features, self.whole_layers, self.each = features, whole_layers, each or (lambda frame: frame)
        self._empty: gpd.GeoDataFrame | None = None
        self.per_file: dict[str, dict[str, int]] = {}
        self.notes: list[str] = []
        self.layer_notes: dict[str, list[str]] = {}
        self.counts: dict[str, int] = {}

    def __iter__(self) -> Iterator[gpd.GeoDataFrame]:
        spec, layers = self.features.spec, self.features.layers
        notes: list[list[str]] = [[] for _ in layers]
        yield from self._frames(notes)
        self.layer_notes = {layer.source.name: layer_notes for layer, layer_notes in zip(layers, notes)}
        self.per_file = {layer.source.name: self.per_file[layer.source.name] for layer in layers}
        self.counts, self.notes = self.totals(spec, self.per_file, notes)
        if self._empty is not None and not self.counts["written"]:
            yield self.each(self._empty)  # nothing to write still has the columns

    @staticmethod
    def totals(spec: DatasetSpec, per_file: dict[str, dict[str, int]],
               notes: list[list[str]]) -> tuple[dict[str, int], list[str]]:
        """The dataset's counts and notes from its files' (in file order), with the note when the files hold
        another number of features than the manifest expects."""
        counts = {k: sum(c[k] for c in per_file.values()) for k in COUNTS}
        flat = [note for file_notes in notes for note in file_notes]
        if spec.expected_count is not None and counts["read"] != spec.expected_count:
            flat.append(f"manifest expects {spec.expected_count} features, the files hold {counts['read']}")
        return counts, flat

    def _frames(self, notes: list[list[str]]) -> Iterator[gpd.GeoDataFrame]:
        """Every file's frames in file order, one file after another: frames are written as they come, and a file
        standardised beside another would wait in memory for its turn (each file's next batch is parsed in a second
        thread already, and datasets run side by side)."""
        for i in range(len(self.features.layers)):
            yield from self._layer(i, notes[i])

    def _layer(self, i: int, notes: list[str]) -> Iterator[gpd.GeoDataFrame]:
        layer = self.features.layers[i]
        counts = self.per_file[layer.source.name] = dict.fromkeys(COUNTS, 0)
        for frame in _standardise_layer(layer, self.features.spec, self.features.ingested_at, counts, notes,
                                        self.whole_layers):
            if len(frame):
                yield self.each(frame)
            else:
                self._empty = frame


def standardise(layers: list[RawLayer], spec: DatasetSpec) -> StandardisedFeatures:
    """The layers' features, to be standardised onto the harmonised columns as they are streamed, stamped now."""
    ingested_at = pd.Timestamp(datetime.now(timezone.utc)).floor("s")
    return StandardisedFeatures(layers, spec, ingested_at, lineage=_lineage(layers, spec))


def _lineage(layers: list[RawLayer], spec: DatasetSpec) -> str | None:
    """A hash of the layers' lineages, the manifest entry and the engine's code; None for in-memory frames."""
    lineages = [layer.lineage for layer in layers]
    if None in lineages:
        return None
    return hashlib.sha256(repr((lineages, spec.ingest_json(), ENGINE_VERSION)).encode()).hexdigest()


def _standardise_layer(layer: RawLayer, spec: DatasetSpec, ingested_at: pd.Timestamp, counts: dict[str, int],
                       notes: list[str], whole: bool) -> Iterator[pd.DataFrame]:
    """One file's features standardised batch by batch as it is read, exact duplicates of earlier rows dropped.

    Adds to ``counts`` and ``notes`` as it goes.
    """
    src = layer.source
    prefix = f"{spec.id}\x1f{src.name}\x1f"
    crs, offset, seen, signature = None, 0, set(), None
    for gdf, text_repairs in layer_batches(layer, spec, batch_size=None if whole else BATCH_SIZE):
        counts["read"] += len(gdf)
        events.emit(spec.id, "features", len(gdf))
        counts["repaired_text"] += text_repairs
        crs = crs or source_crs(gdf, spec, src.name, notes)
        kept = standardise_batch(gdf, crs, spec, offset, counts, src.name)
        offset += len(gdf)
        attributes, json_kind = json_rows(kept.pop("attrs"))
        batch_signature = (kept.pop("dtypes"), json_kind)
        if signature is not None and batch_signature != signature:
            raise BatchesDisagree(f"{src.name}: batches differ in column types ({signature} / {batch_signature})")
        signature = batch_signature
        new = ~duplicated(kept.pop("wkb"), attributes, seen)
        counts["dropped_duplicate"] += int((~new).sum())
        counts["written"] += int(new.sum())
        yield harmonised({key: value[new] for key, value in kept.items()}, attributes[new], spec, src, prefix,
                          ingested_at)
    assert counts["read"] == counts["written"] + counts["dropped_empty"] + counts["dropped_unrepairable"] + \
        counts["dropped_duplicate"], counts
