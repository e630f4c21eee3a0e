"""The attributes a manifest entry declares: the dataset's own typed columns, next to the common ones, in dbt's staging.

Each attribute is read from one place: a key of the feature's original attributes (``json_key``, a key of the JSON
object ``source_attributes``; dots are part of the key, not a path), or the name of the file the feature comes from
(``file_regex`` and its capture ``group``, or ``file_prefixes``: the value of the first prefix the name starts with,
ignoring case). Then, in this order: ``transform`` (upper or lower) on text, the ``type`` (text as is; double,
bigint and integer read as a number, the integers through double so 1234.0 gives 1234; boolean true when the value is
the number 1, false for other numbers), and ``scale`` on numbers (e.g. 1e6 for km² to m²). Values that do not read
as the type are null. ``accepted_values`` are checked by a dbt test (compared as text). The dbt macro
``stg_attribute`` (``dbt_project/macros/staging.sql``) writes the SQL.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ATTRIBUTE_NAME = r"^[a-z][a-z0-9_]{0,62}$"
NUMERIC = ("double", "bigint", "integer")

# Columns every dataset has, from staging (macro stg_installations) to the curated installations: an attribute
# may not take one of these names (tests/test_dbt_project.py checks the list against the built warehouse).
RESERVED = frozenset("""
    feature_uid dataset_id source_installation_id doi source_file source_file_checksum source_feature_index
    geometry geometry_type is_geometry_valid centroid_lon centroid_lat area_m2 source_area_m2 capacity_mw
    install_date_raw install_date install_date_precision install_date_qualifier source_attributes ingested_at loaded_at
    installation_key geometry_class best_area_m2 best_area_basis best_capacity_mw best_capacity_basis
    mapped_by_n_datasets matched_dataset_ids n_cross_dataset_matches country_code country_name country_assignment
    country_distance_km region_code region_name region_assignment region_distance_km
""".split())


class Attribute(BaseModel):
    """One declared attribute: its column name and type, where it is read from, and how it is converted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ATTRIBUTE_NAME)
    type: Literal["text", "bigint", "integer", "double", "boolean"]
    json_key: str | None = Field(default=None, min_length=1)
    file_regex: str | None = Field(default=None, min_length=1)
    group: int = Field(default=1, ge=0)
    file_prefixes: dict[str, str] | None = Field(default=None, min_length=1)
    transform: Literal["upper", "lower"] | None = None
    scale: float | None = None
    accepted_values: list[str | int] | None = Field(default=None, min_length=1)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED:
            raise ValueError(f"attribute name {value!r} is a column every dataset has; choose another name")
        return value

    @model_validator(mode="after")
    def _one_source_and_fitting_conversions(self) -> Attribute:
        sources = [s for s in ("json_key", "file_regex", "file_prefixes") if getattr(self, s) is not None]
        if len(sources) != 1:
            raise ValueError(f"attribute {self.name!r} needs exactly one of json_key, file_regex, file_prefixes "
                             f"(has {', '.join(sources) or 'none'})")
        if self.file_regex is not None:
            try:
                groups = re.compile(self.file_regex).groups
            except re.error as exc:
                raise ValueError(f"attribute {self.name!r}: bad regular expression {self.file_regex!r}: {exc}") from None
            if self.group > groups:
                raise ValueError(f"attribute {self.name!r}: group {self.group} but {self.file_regex!r} has {groups}")
        if self.file_prefixes is not None and self.type != "text":
            raise ValueError(f"attribute {self.name!r}: file_prefixes give text, not {self.type}")
        if self.transform is not None and self.type != "text":
            raise ValueError(f"attribute {self.name!r}: transform applies to text, not {self.type}")
        if self.scale is not None and self.type not in NUMERIC:
            raise ValueError(f"attribute {self.name!r}: scale applies to {', '.join(NUMERIC)}, not {self.type}")
        return self

    def dbt_var(self) -> dict:
        """What dbt's staging macro reads: the declaration without its description, accepted values as text."""
        out = self.model_dump(exclude={"description"} | ({"group"} if self.file_regex is None else set()),
                              exclude_none=True)
        if self.accepted_values is not None:
            out["accepted_values"] = [str(v) for v in self.accepted_values]
        return out
