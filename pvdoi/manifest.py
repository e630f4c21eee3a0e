"""The DOI manifest, parsed once into a validated model.

Include patterns are **any-of** (a name is taken when at least one include pattern matches it and
no exclude pattern does); patterns are Python regular expressions searched in the file *name*
only, never in the path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pvdoi.attributes import ATTRIBUTE_NAME, Attribute
from pvdoi.errors import ManifestError
from pvdoi.manifest_text import read_manifest_text

SAFE_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
GeometryType = Literal["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                       "GeometryCollection"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZenodoRepository(_Strict):
    type: Literal["zenodo"]
    record_id: int = Field(gt=0)


class FigshareRepository(_Strict):
    type: Literal["figshare"]
    article_id: int = Field(gt=0)
    version: int | None = Field(default=None, gt=0)


class GithubRepository(_Strict):
    type: Literal["github"]
    owner: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    ref: str = "main"
    path: str = ""


class UrlRepository(_Strict):
    type: Literal["url"]
    urls: list[str] = Field(min_length=1)
    checksums: dict[str, str] = Field(default_factory=dict, description="file name -> 'sha256:<hex>' or 'md5:<hex>'")


Repository = Annotated[
    ZenodoRepository | FigshareRepository | GithubRepository | UrlRepository, Field(discriminator="type")
]


def _check_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    return patterns


class NameFilter(_Strict):
    """Regular expressions matched against file names: any include matches and no exclude matches."""

    include: list[str] = Field(default_factory=lambda: [".*"])
    exclude: list[str] = Field(default_factory=list)

    _check = field_validator("include", "exclude")(_check_patterns)

    def matches(self, name: str) -> bool:
        """Whether the file name (not its path) passes the filter."""
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        return any(re.search(p, base) for p in self.include) and not any(re.search(p, base) for p in self.exclude)


READABLE = r"(?i)\.(geojson|json|shp|gpkg|csv|fgb|kml)$"


class ReadOptions(_Strict):
    """Which extracted files are vector sources, and how to open them."""

    include: list[str] = Field(default_factory=lambda: [READABLE])
    exclude: list[str] = Field(default_factory=list)
    layer: str | int | None = None
    csv_lon: str | None = None
    csv_lat: str | None = None
    encoding: str | None = None

    _check = field_validator("include", "exclude")(_check_patterns)

    def name_filter(self) -> NameFilter:
        """The include/exclude patterns as a :class:`NameFilter`."""
        return NameFilter(include=self.include, exclude=self.exclude)


class ColumnMap(_Strict):
    """Source columns coalesced in order into one harmonised column, times ``scale``."""

    from_: list[str] = Field(alias="from", min_length=1)
    scale: float = 1.0


class Columns(_Strict):
    unified_id: ColumnMap | None = None
    source_area_m2: ColumnMap | None = None
    capacity_mw: ColumnMap | None = None
    install_date: ColumnMap | None = None


class DatasetSpec(_Strict):
    """One dataset of the manifest."""

    id: str
    title: str = Field(min_length=1)
    citation: str | None = None
    doi: str = Field(min_length=1)
    license: str = Field(min_length=1)
    repository: Repository
    files: NameFilter = Field(default_factory=NameFilter)
    read: ReadOptions = Field(default_factory=ReadOptions)
    expected_crs: str | None = None
    expected_count: int | None = Field(default=None, ge=0)
    max_mb: float | None = Field(default=None, gt=0)
    columns: Columns = Field(default_factory=Columns)
    attributes: list[Attribute] = Field(default_factory=list, description="its own columns in dbt's staging")
    dbt_model: str | None = Field(default=None, pattern=ATTRIBUTE_NAME,
                                  description="a dataset-specific staging model instead of the generic one")
    geometry_types: list[GeometryType] | None = Field(default=None, min_length=1,
                                                       description="expected in dbt; others are a warning")

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not SAFE_ID.match(value):
            raise ValueError(
                f"id {value!r} is not a safe identifier (lowercase letters, digits and '_', starting with a letter)"
            )
        return value

    @field_validator("expected_crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(value)
            except CRSError as exc:
                raise ValueError(f"unknown CRS {value!r}: {exc}") from None
        return value

    @field_validator("attributes")
    @classmethod
    def _unique_attribute_names(cls, value: list[Attribute]) -> list[Attribute]:
        names = [a.name for a in value]
        if len(set(names)) < len(names):
            raise ValueError(f"attribute names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
        return value

    def ingest_json(self) -> str:
        """The entry as JSON without what only dbt reads (attributes, dbt_model, geometry_types): what ingestion is a
        function of."""
        return self.model_dump_json(by_alias=True, exclude={"attributes", "dbt_model", "geometry_types"})


class Manifest(_Strict):
    manifest_version: Literal[1] = 1
    datasets: list[DatasetSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids_one_type_per_attribute(self) -> Manifest:
        seen: set[str] = set()
        for spec in self.datasets:
            if spec.id in seen:
                raise ValueError(f"duplicate dataset id {spec.id!r}")
            seen.add(spec.id)
        types: dict[str, tuple[str, str]] = {}  # one column per name in the union of the datasets
        for spec in self.datasets:
            for attribute in spec.attributes:
                first = types.setdefault(attribute.name, (attribute.type, spec.id))
                if first[0] != attribute.type:
                    raise ValueError(f"attribute {attribute.name!r} is {attribute.type} in {spec.id!r} but "
                                     f"{first[0]} in {first[1]!r}: one name, one type")
        return self

    @property
    def ids(self) -> list[str]:
        """Dataset ids in manifest order."""
        return [d.id for d in self.datasets]

    def get(self, dataset_id: str) -> DatasetSpec:
        """The dataset with this id, or a :class:`ManifestError` listing the allowed ids."""
        for spec in self.datasets:
            if spec.id == dataset_id:
                return spec
        raise ManifestError(f"unknown dataset {dataset_id!r}; the manifest has: {', '.join(self.ids)}")

    def select(self, dataset_ids: list[str] | None) -> list[str]:
        """Validated dataset ids (all when ``None`` or empty), in the order given."""
        if not dataset_ids:
            return self.ids
        return [self.get(d).id for d in dict.fromkeys(dataset_ids)]


def _describe(exc: ValidationError, raw: object) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = "manifest"
        if len(loc) >= 2 and loc[0] == "datasets" and isinstance(loc[1], int):
            entry = raw["datasets"][loc[1]] if isinstance(raw, dict) else None
            name = entry.get("id") if isinstance(entry, dict) else None
            where = f"entry {loc[1]}" + (f" ({name!r})" if name else "")
            loc = loc[2:]
        field = ".".join(str(p) for p in loc) or "(entry)"
        lines.append(f"{where}, field {field!r}: {err['msg']}")
    return "; ".join(lines)


def parse_manifest(raw: object, *, source: str = "manifest") -> Manifest:
    """Validate a decoded manifest, raising :class:`ManifestError` naming the entry and field."""
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"{source} is invalid: {_describe(exc, raw)}") from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file."""
    try:
        raw = json.loads(read_manifest_text(path))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {str(path)!r} is not valid JSON: {exc}") from None
    return parse_manifest(raw, source=f"manifest {str(path)!r}")
