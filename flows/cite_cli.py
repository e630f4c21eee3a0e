"""``pvdoi cite``: references for the datasets in the warehouse, as BibTeX or CSL-JSON."""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Annotated

import typer

from flows.console import error
from flows.summary import console
from pvdoi.citation import bibtex, csl_json
from pvdoi.errors import PVDOIError
from pvdoi.settings import get_settings


class CiteFormat(str, Enum):
    bibtex = "bibtex"
    csl_json = "csl-json"


def cite(datasets: Annotated[list[str] | None, typer.Argument(help="dataset ids (default: every dataset loaded)")]
         = None,
         fmt: Annotated[CiteFormat, typer.Option("--format", help="bibtex or csl-json")] = CiteFormat.bibtex,
         output: Annotated[str | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
         database: Annotated[str | None, typer.Option("--database", help="DuckDB file (default "
                                                                         "data/eo_pv_data.duckdb)")] = None,
         data_dir: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data)")] = None,
         ) -> None:
    """References for the datasets in the warehouse: creators, title, year, publisher, version, DOI, licence."""
    from pvdoi.warehouse.datasets import loaded_references

    try:
        refs = loaded_references(database or get_settings().warehouse_path(data_dir), datasets or None)
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    text = bibtex(refs) if fmt is CiteFormat.bibtex else csl_json(refs)
    if output is None:
        sys.stdout.write(text)
        return
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as fh:
        fh.write(text)
    console.print(f"wrote {len(refs)} references to {output}", soft_wrap=True)
