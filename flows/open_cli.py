"""``pvdoi export`` and ``pvdoi docs``: the results as files people can open."""

from __future__ import annotations

import functools
import http.server
import os
from typing import Annotated

import typer

from flows.console import error
from flows.summary import console
from pvdoi.errors import PVDOIError
from pvdoi.settings import get_settings

DataOpt = Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data)")]
DatabaseOpt = Annotated[str | None, typer.Option("--database", help="DuckDB file (default data/eo_pv_data.duckdb)")]


def export(output: Annotated[str, typer.Option("--output", "-o", help="file to write")],
           fmt: Annotated[str, typer.Option("--format", help="geoparquet, gpkg, fgb or csv")] = "geoparquet",
           dataset: Annotated[list[str] | None, typer.Option("--dataset", help="only this dataset (repeatable)")]
           = None,
           country: Annotated[list[str] | None, typer.Option("--country", help="only this ISO country code "
                                                                                "(repeatable)")] = None,
           at: Annotated[int | None, typer.Option("--at", help="the lake as it was at this snapshot (`pvdoi "
                                                               "history`; ducklake backend only)")] = None,
           database: DatabaseOpt = None, data_dir: DataOpt = None) -> None:
    """Write curated.installations (geometry, ids, areas, capacity, dates, country, region, DOI, licence) to a file."""
    from pvdoi.export import export_installations

    path = database or get_settings().warehouse_path(data_dir)
    try:
        rows = export_installations(path, output, fmt=fmt, datasets=dataset, countries=country, at=at)
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"wrote {rows:,} installations to {output}", soft_wrap=True)


def docs(serve: Annotated[bool, typer.Option("--serve", help="serve the site on localhost until Ctrl-C")] = False,
         port: Annotated[int, typer.Option(help="port for --serve")] = 8080,
         database: DatabaseOpt = None, data_dir: DataOpt = None) -> None:
    """Generate the dbt documentation site of the warehouse (models, columns, tests, lineage) in the data folder."""
    from pvdoi.docs import generate_docs
    from pvdoi.transform import dbt_vars

    settings = get_settings()
    folder = os.path.join(os.path.abspath(data_dir or settings.data_dir), "dbt_docs")
    try:
        index = generate_docs(database or settings.warehouse_path(data_dir), folder, dbt_vars=dbt_vars(settings.manifest_path))
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"dbt docs: open {index}", soft_wrap=True)
    if serve:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
            console.print(f"serving http://127.0.0.1:{port}/ (Ctrl-C stops)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass


def map_(output: Annotated[str, typer.Option("--output", "-o", help="HTML file to write")] = "data/map.html",
         database: DatabaseOpt = None, data_dir: DataOpt = None) -> None:
    """One self-contained HTML page: the installations on a map by dataset, and counts per dataset and country."""
    from pvdoi.map import write_map

    try:
        path = write_map(database or get_settings().warehouse_path(data_dir), output)
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"map: open {path} (no network needed)", soft_wrap=True)
