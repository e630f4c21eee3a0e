"""A manifest entry proposed for a record the manifest does not list yet (``pvdoi datasets add``).

The record (:mod:`pvdoi.landing`) publishes files (:func:`pvdoi.repositories.resolve_files`, with sizes and
checksums); its vector files (GeoJSON/JSON, GeoPackage, Shapefile with its sidecars, FlatGeobuf, and those inside
zip or tar archives) are downloaded into the store within ``max_mb`` and verified, then opened with pyogrio's
``read_info`` (CRS, feature count, fields and types, geometry type) and a sample of features (to measure area
units). From these come a complete entry (:mod:`pvdoi.guesses` for the columns), validated as the manifest
validates it, with one note per guess.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyogrio
from pydantic import ValidationError
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS

from pvdoi.archive import extract_archive, is_archive, link_or_copy
from pvdoi.entry import Layer, build_entry, check_new_id
from pvdoi.errors import FileTooLargeError, NoMatchingFilesError, RepositoryError
from pvdoi.http import Http
from pvdoi.landing import VECTOR_SUFFIXES, find_source
from pvdoi.manifest import DatasetSpec, Manifest
from pvdoi.records import RecordInfo, RemoteFile
from pvdoi.repositories import resolve_files
from pvdoi.settings import Settings

MB = 1024 * 1024
SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
PREFERRED = (".gpkg", ".fgb", ".geojson", ".shp", ".json")  # one layer shipped in several formats: the first
SAMPLE = 200


@dataclass
class Proposal:
    """The proposed entry, a note per guess, the record's files and the vector layers read."""

    entry: dict
    notes: list[str]
    info: RecordInfo
    files: list[RemoteFile]
    layers: list[Layer] = field(default_factory=list)


def propose(source: str, *, manifest: Manifest, settings: Settings, dataset_id: str | None = None,
            max_mb: float | None = None) -> Proposal:
    """The manifest entry for the record ``source`` names (a DOI, a GitHub repository URL or a plain URL)."""
    if dataset_id is not None:
        check_new_id(dataset_id, manifest)
    http = Http(settings)
    found = find_source(source, http)
    try:
        draft = DatasetSpec(id=dataset_id or "proposed", title="proposed", doi=found.doi, license="unspecified",
                            repository=found.repository)
    except ValidationError as exc:
        raise RepositoryError(f"{source} leads to a repository the manifest cannot hold ({found.repository}): "
                              f"{exc.errors()[0]['msg']}") from None
    info, files = resolve_files(draft, http, settings.repository_urls)
    notes = [f"repository: {found.how}"]
    with tempfile.TemporaryDirectory(prefix="pvdoi-add-") as work:
        layers = _layers(files, http=http, settings=settings, work=work, max_mb=max_mb or settings.max_mb,
                         notes=notes)
    if not layers:
        names = ", ".join(f.name for f in files) or "none"
        skipped = [n for n in notes if n.startswith("skipped")]
        raise NoMatchingFilesError(f"{found.doi} publishes no vector file that opens (GeoJSON, GeoPackage, Shapefile, "
                                   f"FlatGeobuf, or one inside a zip); its files: {names}"
                                   + "".join(f"; {n}" for n in skipped))
    entry = build_entry(found, info, layers, files, manifest=manifest, dataset_id=dataset_id, notes=notes)
    return Proposal(entry, notes, info, files, layers)


def _layers(files: list[RemoteFile], *, http: Http, settings: Settings, work: str, max_mb: float,
            notes: list[str]) -> list[Layer]:
    """The vector layers of the record's candidate files, downloaded and opened (one format per layer)."""
    from pvdoi.store import fetch

    by_name = {f.name.lower(): f for f in files}
    store = os.path.join(settings.data_dir, "downloads")
    found: list[Layer] = []
    for remote in files:
        lower = remote.name.lower()
        if not (lower.endswith(VECTOR_SUFFIXES) or is_archive(lower)):
            continue
        group = [remote] + [by_name[s] for ext in SIDECARS if (s := lower[:-4] + ext) in by_name] \
            if lower.endswith(".shp") else [remote]
        folder = Path(work, str(len(found)), remote.name + ".d")
        try:
            for part in group:
                local = fetch(part, store_dir=store, http=http, max_mb=max_mb, dataset_id="new dataset")
                link_or_copy(local.path, str(folder / part.name))
        except FileTooLargeError:
            notes.append(f"skipped {remote.name}: {(remote.size or 0) / MB:.1f} MB is over --max-mb {max_mb:g}")
            continue
        if is_archive(lower):
            members = extract_archive(str(folder / remote.name), str(folder / "x"),
                                      max_bytes=int(settings.max_extract_mb * MB),
                                      max_ratio=settings.max_extract_ratio)
            paths = [(m, folder / "x" / m) for m in members if m.lower().endswith(VECTOR_SUFFIXES)]
        else:
            paths = [(None, folder / remote.name)]
        for member, path in paths:
            found.extend(_open(remote.name, member, path, notes))
    return _same_data_once(_solar_only(_one_format_each(_largest_of_each_file(found, notes), notes), notes), notes)


def _open(file: str, member: str | None, path: Path, notes: list[str]) -> list[Layer]:
    """The layers with geometry in one vector file (none when GDAL cannot open it as vector data)."""
    label = f"{file}!{member}" if member else file
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            layers = [name for name, kind in pyogrio.list_layers(path) if kind]
            for name in layers:
                info = pyogrio.read_info(path, layer=name, force_feature_count=True)
                out.append(Layer(file, member, name, _crs(info["crs"]), int(info["features"]),
                                 info["geometry_type"] or "Unknown",
                                 dict(zip(info["fields"].tolist(), [str(d) for d in info["dtypes"]])),
                                 _area_ratios(path, name, info)))
        except (DataSourceError, DataLayerError) as exc:
            notes.append(f"skipped {label}: not a vector file GDAL opens ({str(exc).splitlines()[0][:120]})")
    return out


def _crs(value: str | None) -> str | None:
    """``AUTHORITY:CODE`` when the layer's CRS has one, else its WKT (or ``None``)."""
    if not value:
        return None
    authority = CRS.from_user_input(value).to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else value


def _area_ratios(path: Path, layer: str, info: dict) -> dict[str, float]:
    """Median of each numeric column over the polygons' equal-area size in m², in a sample of features."""
    if not info["crs"] or "Polygon" not in (info["geometry_type"] or "Polygon"):
        return {}
    sample = pyogrio.read_dataframe(path, layer=layer, max_features=SAMPLE)
    areas = sample.geometry.to_crs("EPSG:6933").area.to_numpy()
    out = {}
    for column in sample.columns.drop("geometry"):
        values = np.asarray(sample[column], dtype=object)
        try:
            ratio = np.asarray(values, dtype=float) / np.where(areas > 0, areas, np.nan)
        except (TypeError, ValueError):
            continue
        if np.isfinite(ratio).any():
            out[column] = float(np.nanmedian(ratio[np.isfinite(ratio)]))
    return out


def _one_format_each(layers: list[Layer], notes: list[str]) -> list[Layer]:
    """One layer per name: the GeoPackage before FlatGeobuf, GeoJSON, Shapefile and JSON copies of it."""
    def rank(layer: Layer) -> int:
        name = (layer.member or layer.file).lower()
        return next((i for i, ext in enumerate(PREFERRED) if name.endswith(ext)), len(PREFERRED))

    chosen: dict[str, Layer] = {}
    for layer in sorted(layers, key=rank):
        key = layer.layer.lower()
        if key in chosen:
            notes.append(f"left out {layer.member or layer.file}: the same layer {layer.layer!r} as "
                         f"{chosen[key].member or chosen[key].file}")
        else:
            chosen[key] = layer
    return list(chosen.values())



def _largest_of_each_file(layers: list[Layer], notes: list[str]) -> list[Layer]:
    """The largest layer of a file with several (an entry reads one layer of a file: ``read.layer``)."""
    per_file: dict[tuple, list[Layer]] = {}
    for layer in layers:
        per_file.setdefault((layer.file, layer.member), []).append(layer)
    out = []
    for group in per_file.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        biggest = max(group, key=lambda layer: layer.count)
        others = ", ".join(repr(layer.layer) for layer in group if layer is not biggest)
        notes.append(f"left out layers {others} of {biggest.member or biggest.file}: fewer features than "
                     f"{biggest.layer!r}")
        out.append(replace(biggest, of_many=True))
    return out


def _solar_only(layers: list[Layer], notes: list[str]) -> list[Layer]:
    """Without the layers named for wind when others are named for solar (a record of both kinds of farm)."""
    def says(layer: Layer, words: tuple[str, ...]) -> bool:  # the file's own name: folders say anything
        name = (layer.member or layer.file).replace("\\", "/").rsplit("/", 1)[-1].lower()
        return any(w in name or w in layer.layer.lower() for w in words)

    if not any(says(layer, ("solar", "pv", "photovoltaic")) for layer in layers):
        return layers
    for layer in layers:
        if says(layer, ("wind",)):
            notes.append(f"left out layer {layer.layer!r}: named for wind, not solar")
    return [layer for layer in layers if not says(layer, ("wind",))]


def _same_data_once(layers: list[Layer], notes: list[str]) -> list[Layer]:
    """One of the layers with the same columns and count (one layer in two CRSs): the one in EPSG:4326, else the
    first."""
    kept: dict[tuple, Layer] = {}
    for layer in sorted(layers, key=lambda layer: layer.crs != "EPSG:4326"):
        key = (tuple(layer.fields), layer.count, layer.geometry_type)
        if key in kept:
            notes.append(f"left out layer {layer.layer!r} ({layer.crs}): the same columns and count as "
                         f"{kept[key].layer!r} ({kept[key].crs})")
        else:
            kept[key] = layer
    return list(kept.values())
