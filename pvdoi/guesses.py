"""Guesses at a new dataset's column mappings and attributes from its columns' names and types.

Each guess comes with a note saying what was guessed and why (``pvdoi datasets add`` prints them above the proposed
entry, which JSON cannot annotate). The units of an area column are read from its name (``_km2``, ``_ha``,
``_sqm`` ...) and checked against the polygons' own equal-area size in a sample of features (``area_ratios``): a
column whose values are a millionth of the polygons' areas is in km², whatever its name says.
"""

from __future__ import annotations

import math
import re

from pvdoi.attributes import RESERVED

ID_NAMES = {"id", "fid", "uid", "gid", "oid", "objectid", "unique_id", "uniqueid"}
AREA_UNITS = [({"km2", "sqkm", "km"}, 1e6, "km²"), ({"ha", "hectare", "hectares"}, 1e4, "hectares"),
              ({"ft2", "sqft", "ft"}, 0.09290304, "square feet"), ({"m2", "sqm", "meters", "metres", "m"}, 1.0, "m²")]
POWER_UNITS = [({"gw", "gwp"}, 1e3, "GW"), ({"mw", "mwp", "mwac", "mwdc"}, 1.0, "MW"),
               ({"kw", "kwp", "kwac", "kwdc"}, 1e-3, "kW"), ({"w", "wp", "watt", "watts"}, 1e-6, "W")]
POWER_WORDS = {"capacity", "power", "output"}
DATE_WORDS = {"date", "year", "install", "installed", "installation", "commissioned", "commissioning", "commission",
              "operational", "built", "start", "online", "construction", "cod"}
GEOMETRIC = {"shape_leng", "shape_length", "shape_area", "lat", "lon", "lng", "latitude", "longitude", "x", "y",
             "centroid_lat", "centroid_lon", "centroid_latitude", "centroid_longitude", "geom", "wkt", "bbox"}
MAX_ATTRIBUTES = 20


def tokens(name: str) -> list[str]:
    """A column name's words, lower case: ``panel.area`` → panel, area; ``capacity_repd_MWp`` → …, mwp."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return re.findall(r"[a-z]+\d*|\d+", spaced.lower())


def _numeric(dtype: str) -> bool:
    return dtype.startswith(("int", "float", "uint"))


def _unit(words: list[str], table) -> tuple[float, str] | None:
    for names, scale, label in table:
        if names & set(words):
            return scale, label
    return None


def guess_id(fields: dict[str, str]) -> tuple[str, str] | None:
    """The identifier column and why: ``id``/``fid``/``objectid``…, then ``*_id``, then ``*_ref``/``*_code``."""
    ranked = []
    for name, dtype in fields.items():
        words = tokens(name)
        if _numeric(dtype) and dtype.startswith("float"):
            continue
        if name.lower() in ID_NAMES:
            ranked.append((0, name, f"its name {name!r} is an identifier's"))
        elif words and words[-1] == "id":
            ranked.append((1, name, f"its name {name!r} ends in 'id'"))
        elif words and words[-1] in ("ref", "reference", "code"):
            ranked.append((2, name, f"its name {name!r} ends in '{words[-1]}' (a reference)"))
    return min(ranked)[1:] if ranked else None


def guess_area(fields: dict[str, str], ratios: dict[str, float], *, geographic: bool) -> tuple[str, float, str] | None:
    """The published area column, its scale to m² and why (or ``None``)."""
    ranked = []
    for name, dtype in fields.items():
        words = tokens(name)
        if not _numeric(dtype) or "area" not in words or {"pixel", "pixels"} & set(words):
            continue
        unit, ratio = _unit(words, AREA_UNITS), ratios.get(name)
        measured = _unit_of_ratio(ratio)
        if name.lower() == "shape_area" and geographic and unit is None:
            continue  # square degrees in a geographic CRS: no area at all
        if measured and (unit is None or abs(measured[0] / unit[0] - 1) > 0.01):
            scale, why = measured[0], f"its values are {ratio:.3g} × the polygons' area in m²: {measured[1]}"
        elif unit:
            scale, why = unit[0], f"its name says {unit[1]}"
        else:
            scale, why = 1.0, "no unit in its name and no sample to measure: assumed m²; check"
        rank = (0 if unit else 1, 0 if measured else 1, 0 if {"panel", "panels", "pv", "array"} & set(words) else 1)
        ranked.append((rank, name, scale, f"{name!r} ({why})"))
    return min(ranked)[1:] if ranked else None


def _unit_of_ratio(ratio: float | None) -> tuple[float, str] | None:
    """The unit of m², hectares and km² whose scale brings the measured ratio of a column to the polygons' area
    nearest 1, within a factor of 20 (published areas are rough; square feet are too near m² to tell apart)."""
    if not ratio or ratio <= 0:
        return None
    scale, label = min(((s, lab) for names, s, lab in AREA_UNITS if s in (1.0, 1e4, 1e6)),
                       key=lambda unit: abs(math.log10(ratio * unit[0])))
    return (scale, label) if abs(math.log10(ratio * scale)) < math.log10(20) else None


def guess_capacity(fields: dict[str, str]) -> tuple[str, float, str] | None:
    """The capacity column, its scale to MW and why."""
    ranked = []
    for name, dtype in fields.items():
        words = tokens(name)
        unit = _unit(words, POWER_UNITS)
        if not _numeric(dtype) or not (unit or POWER_WORDS & set(words)):
            continue
        if unit:
            ranked.append((0, name, unit[0], f"{name!r} (its name says {unit[1]})"))
        else:
            ranked.append((1, name, 1.0, f"{name!r} (no unit in its name: assumed MW; check the documentation)"))
    return min(ranked)[1:] if ranked else None


def guess_date(fields: dict[str, str]) -> tuple[str, str] | None:
    """The installation date column and why (dates, or years: dbt parses both)."""
    ranked = []
    for name, dtype in fields.items():
        hits = DATE_WORDS & set(tokens(name))
        if hits and not dtype.startswith("float"):
            ranked.append((0 if "date" in hits or "commissioned" in hits else 1, name,
                           f"{name!r} (a date by its name: {', '.join(sorted(hits))})"))
    return min(ranked)[1:] if ranked else None


def guess_columns(fields: dict[str, str], ratios: dict[str, float], *, geographic: bool) -> tuple[dict, list[str]]:
    """The manifest ``columns`` mappings and one note per guess (and per mapping not found)."""
    columns, notes = {}, []
    found = {"unified_id": guess_id(fields), "source_area_m2": guess_area(fields, ratios, geographic=geographic),
             "capacity_mw": guess_capacity(fields), "install_date": guess_date(fields)}
    for target, guess in found.items():
        if guess is None:
            notes.append(f"{target}: no column looks like it; left out")
            continue
        name, *scale, why = guess
        columns[target] = {"from": [name]} | ({"scale": scale[0]} if scale and scale[0] != 1.0 else {})
        notes.append(f"{target} ← {why}" + (f"; scale {scale[0]:g}" if scale and scale[0] != 1.0 else ""))
    return columns, notes


def declare_attributes(fields: dict[str, str], used: set[str], known_types: dict[str, str]) -> tuple[list, list]:
    """``attributes`` for the columns not mapped nor geometric, typed from their dtypes; and notes.

    ``known_types``: attribute name → type in the manifest's other datasets (one name, one type across them).
    """
    out, notes, names = [], [], set()
    for field, dtype in fields.items():
        if field in used or field.lower() in GEOMETRIC:
            continue
        kind = ("bigint" if dtype.startswith(("int", "uint")) else "double" if dtype.startswith("float")
                else "boolean" if dtype == "bool" else "text")
        name = "_".join(tokens(field)) or "column"
        name = ("n_" + name if not name[0].isalpha() else name)[:50]
        if name in RESERVED:
            name = f"source_{name}"
        if known_types.get(name, kind) != kind:
            notes.append(f"attribute {name!r} is {known_types[name]} in another dataset: this one is {name}_{kind}")
            name = f"{name}_{kind}"
        if name in names:
            continue
        if len(out) == MAX_ATTRIBUTES:
            notes.append(f"more than {MAX_ATTRIBUTES} other columns: {field!r} and the rest not declared")
            break
        names.add(name)
        out.append({"name": name, "type": kind, "json_key": field, "description": f"{field} as published."})
        notes.append(f"attribute {name} ({kind}) ← {field!r}")
    return out, notes
