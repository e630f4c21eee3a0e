"""The proposed manifest entry of a new dataset, built from its record and vector layers, validated, and appended to a
manifest file (``pvdoi datasets add``; the layers come from :mod:`pvdoi.proposal`).

JSON has no comments, and the manifest's models forbid extra fields, so every guess is a note beside the entry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pvdoi.atomic import write_text_atomic
from pvdoi.errors import ManifestError
from pvdoi.guesses import declare_attributes, guess_columns
from pvdoi.landing import Source
from pvdoi.manifest import SAFE_ID, DatasetSpec, Manifest, load_manifest, parse_manifest
from pvdoi.records import RecordInfo, RemoteFile

_GEOMETRY_FAMILIES = {"Point": ["Point", "MultiPoint"], "LineString": ["LineString", "MultiLineString"],
                      "Polygon": ["Polygon", "MultiPolygon"]}
_LINE = 118


@dataclass(frozen=True)
class Layer:
    """One vector layer of the record: the published file it comes from (and its archive member), what it holds."""

    file: str
    member: str | None
    layer: str
    crs: str | None
    count: int
    geometry_type: str
    fields: dict[str, str]
    area_ratios: dict[str, float]
    of_many: bool = False  # its file has other layers with geometry (the entry names it in read.layer)


def check_new_id(dataset_id: str, manifest: Manifest) -> None:
    """A :class:`ManifestError` when the id is not a safe identifier or the manifest has it already."""
    if not SAFE_ID.match(dataset_id):
        raise ManifestError(f"dataset id {dataset_id!r} is not a safe identifier (lowercase letters, digits and '_', "
                            f"starting with a letter)")
    if dataset_id in manifest.ids:
        raise ManifestError(f"dataset id {dataset_id!r} exists already in the manifest; choose another with --id")


def slug_id(title: str, year: str | None = None) -> str:
    """A safe dataset id from a title (its first words, lower case, ``_``-joined) and a year."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > 50:
            break
        slug = f"{slug}_{word}" if slug else word
    slug = slug or "dataset"
    slug = slug if slug[0].isalpha() else f"ds_{slug}"
    return f"{slug}_{year}" if year and not slug.endswith(year) else slug


def build_entry(found: Source, info: RecordInfo, layers: list[Layer], files: list[RemoteFile], *, manifest: Manifest,
                dataset_id: str | None, notes: list[str]) -> dict:
    """The complete manifest entry for the record and its layers, validated; a note per guess goes to ``notes``."""
    year = _year(info)
    title = info.title or f"{found.repository.get('repo') or found.doi}"
    new_id = dataset_id or slug_id(title, year)
    check_new_id(new_id, manifest)
    if not dataset_id:
        notes.append(f"id {new_id!r} ← a slug of the title{' and the year' if year else ''}; --id names another")
    entry = {"id": new_id, "title": title}
    if citation := _citation(info, year):
        entry["citation"] = citation
        notes.append(f"citation {citation!r} ← the record's creators and year; add the data paper if there is one")
    else:
        notes.append("citation: the record's metadata gives no creators and year here; write one (Surname et al. YEAR)")
    entry |= {"doi": found.doi, "license": _licence(info, notes), "repository": _pinned(found.repository, info, notes)}
    entry |= _filters(layers, notes)
    entry |= _expectations(layers, notes)
    fields: dict[str, str] = {}
    ratios: dict[str, float] = {}
    for layer in layers:
        fields |= {k: v for k, v in layer.fields.items() if k not in fields}
        ratios |= {k: v for k, v in layer.area_ratios.items() if k not in ratios}
    geographic = bool(entry.get("expected_crs")) and _geographic(entry["expected_crs"])
    columns, column_notes = guess_columns(fields, ratios, geographic=geographic)
    known = {a.name: a.type for spec in manifest.datasets for a in spec.attributes}
    attributes, attribute_notes = declare_attributes(fields, {c["from"][0] for c in columns.values()}, known)
    entry |= {"columns": columns, **_geometry_types(layers, notes), "attributes": attributes}
    notes.extend(column_notes + attribute_notes)
    validate_entry(entry, manifest)
    return entry


def _year(info: RecordInfo) -> str | None:
    year = getattr(info, "year", None) or str(getattr(info, "publication_date", None) or "")[:4]
    return str(year) if year and str(year).isdigit() else None


def _citation(info: RecordInfo, year: str | None) -> str | None:
    creators = list(getattr(info, "creators", None) or [])
    if not creators or not year:
        return None
    first = creators[0].get("name", "") if isinstance(creators[0], dict) else str(creators[0])
    surname = first.split(",")[0].strip() if "," in first else first.split()[-1] if first.split() else first
    return f"{surname}{' et al.' if len(creators) > 1 else ''} {year}"


def _licence(info: RecordInfo, notes: list[str]) -> str:
    if not info.license:
        notes.append("license: the record names none: 'unspecified' (the run will warn; ask the authors)")
        return "unspecified"
    licence = info.license.upper() if re.fullmatch(r"[a-z0-9.+-]+", info.license) else info.license
    notes.append(f"license {licence!r} ← the record's licence {info.license!r}")
    return licence


def _pinned(repository: dict, info: RecordInfo, notes: list[str]) -> dict:
    """The repository with the version the record has now (a concept DOI's latest record, figshare's version)."""
    out = dict(repository)
    if out["type"] == "zenodo" and info.record_id.isdigit() and int(info.record_id) != out["record_id"]:
        notes.append(f"repository: record {info.record_id} pinned (the version record {out['record_id']} leads to)")
        out["record_id"] = int(info.record_id)
    elif out["type"] == "figshare" and "version" not in out and (info.version or "").isdigit():
        out["version"] = int(info.version)
        notes.append(f"repository: version {info.version} pinned (the article's latest)")
    elif out["type"] == "github":
        notes.append(f"repository: ref {out.get('ref', 'main')!r} is followed as it moves; pin a tag or commit")
    elif out["type"] == "url":
        notes.append("repository: a plain URL publishes no checksum; add repository.checksums to verify downloads")
    return out


def _filters(layers: list[Layer], notes: list[str]) -> dict:
    """``files.include`` (the published files, anchored) and, for archive members, ``read.include`` and a layer."""
    files, read = [], []
    for layer in layers:
        stem, ext = re.escape(layer.file.rsplit(".", 1)[0]), layer.file.rsplit(".", 1)[-1].lower()
        pattern = f"(?i)^{stem}\\.(shp|shx|dbf|prj|cpg)$" if ext == "shp" else f"^{re.escape(layer.file)}$"
        if pattern not in files:
            files.append(pattern)
        name = (layer.member or layer.file).replace("\\", "/").rsplit("/", 1)[-1]
        read.append(f"^{re.escape(name)}$")
    notes.append(f"files.include ← every vector file read ({', '.join(sorted({layer.file for layer in layers}))}); "
                 f"drop those that hold no installations (AOI tiles, negative samples)")
    out = {"files": {"include": files}}
    if any(layer.member for layer in layers):
        out["read"] = {"include": sorted(set(read))}
        notes.append("read.include ← the archive members read (their names, anchored)")
    if named := [layer for layer in layers if layer.of_many]:
        out.setdefault("read", {})["layer"] = named[0].layer
        notes.append(f"read.layer {named[0].layer!r} ← the largest layer of {named[0].member or named[0].file}"
                     + ("; the other files' layers need the same name" if len(layers) > 1 else ""))
    return out


def _expectations(layers: list[Layer], notes: list[str]) -> dict:
    out: dict = {"expected_count": sum(layer.count for layer in layers)}
    notes.append(f"expected_count {out['expected_count']} ← the features in the files read (a check, not a fact)")
    crs = {layer.crs for layer in layers}
    if len(crs) == 1 and None not in crs:
        out = {"expected_crs": crs.pop(), **out}
        notes.append(f"expected_crs {out['expected_crs']!r} ← the layers' CRS (the reader reprojects to EPSG:4326)")
    else:
        notes.append(f"expected_crs left out: the layers' CRS are {sorted(map(str, crs))}; declare one if needed")
    return out


def _geographic(crs: str) -> bool:
    from pyproj import CRS

    return CRS.from_user_input(crs).is_geographic


def _geometry_types(layers: list[Layer], notes: list[str]) -> dict:
    kinds = {re.sub(r"^(3D )?(Multi)?|( Z| M| ZM)$", "", layer.geometry_type) for layer in layers}
    if not kinds <= set(_GEOMETRY_FAMILIES):
        notes.append(f"geometry_types left out: the layers report {sorted(kinds)}")
        return {}
    types = [t for kind in sorted(kinds) for t in _GEOMETRY_FAMILIES[kind]]
    notes.append(f"geometry_types {types} ← the layers' geometry type (others become a dbt warning)")
    return {"geometry_types": types}


def validate_entry(entry: dict, manifest: Manifest) -> DatasetSpec:
    """The entry as the manifest validates it, alone and beside the manifest's datasets."""
    try:
        spec = DatasetSpec.model_validate(entry)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(entry)'}: {e['msg']}" for e in exc.errors())
        raise ManifestError(f"the proposed entry {entry.get('id')!r} is invalid: {problems}") from None
    parse_manifest({"manifest_version": 1, "datasets": [*manifest.datasets, spec]},
                   source="the manifest with the proposed entry")
    return spec


def append_entry(path: str | Path, entry: dict) -> Manifest:
    """Append ``entry`` to the manifest file (its other lines unchanged; written atomically); the whole re-validated."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)
    check_new_id(entry["id"], parse_manifest(raw, source=f"manifest {str(path)!r}"))
    raw["datasets"].append(entry)
    parse_manifest(raw, source=f"manifest {str(path)!r} with the new entry")
    close = text.rstrip().rfind("]")
    new = f"{text[:close].rstrip()},\n{format_entry(entry)}\n  {text[close:]}"
    try:
        same = json.loads(new) == raw
    except json.JSONDecodeError:
        same = False
    write_text_atomic(str(path), new if same else json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    return load_manifest(path)


def format_entry(entry: dict, indent: int = 4) -> str:
    """The entry as the manifest file writes one: a key per line, short values inline, long ones an item per line."""
    pad, inner = " " * indent, " " * (indent + 2)
    lines = []
    for key, value in entry.items():
        head, one = f"{inner}{json.dumps(key)}: ", json.dumps(value, ensure_ascii=False)
        if len(head) + len(one) <= _LINE or not isinstance(value, (dict, list)) or not value:
            lines.append(head + one)
            continue
        items = ([f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()]
                 if isinstance(value, dict) else [json.dumps(v, ensure_ascii=False) for v in value])
        brackets = "{}" if isinstance(value, dict) else "[]"
        lines.append(f"{head}{brackets[0]}\n" + ",\n".join(f"{inner}  {i}" for i in items) + f"\n{inner}{brackets[1]}")
    return f"{pad}{{\n" + ",\n".join(lines) + f"\n{pad}}}"

