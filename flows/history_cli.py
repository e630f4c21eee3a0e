"""``pvdoi history``: the snapshots of a DuckLake warehouse (one per dataset load, and dbt's), newest first."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.console import error
from flows.summary import console
from pvdoi.errors import PVDOIError
from pvdoi.settings import get_settings


def history(database: Annotated[str | None, typer.Option("--database", help="the lake's URI (default: the "
                                                         "settings' lake)")] = None,
            data_dir: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data)")] = None,
            limit: Annotated[int, typer.Option("--limit", "-n", help="newest snapshots to show (0: all)")] = 30,
            json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The lake's snapshots: time, what made each (a dataset's load, with its run id and rows; a dbt model) and its
    number, for `pvdoi export --at SNAPSHOT`. Needs the ducklake backend (PVDOI_WAREHOUSE_BACKEND=ducklake)."""
    from pvdoi.warehouse.lake import is_lake, snapshots

    uri = database or get_settings().warehouse_path(data_dir)
    if not is_lake(uri):
        error(f"pvdoi history reads a DuckLake; {uri} is a DuckDB file (set PVDOI_WAREHOUSE_BACKEND=ducklake)")
        raise typer.Exit(2)
    try:
        found = snapshots(uri, limit=limit or None)
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    if json_out:
        print(json.dumps(found, indent=1))
        return
    console.print(f"{'snapshot':>8}  {'time (UTC)':19}  {'rows':>7}  what", soft_wrap=True)
    for s in found:
        rows = f"{s['rows']:,}" if s["rows"] is not None else ""
        what = s["message"] or ", ".join(f"{k} {' '.join(v)}" for k, v in s["changes"].items())
        run = f"  run {s['run_id']}" if s["run_id"] else ""
        console.print(f"{s['snapshot']:>8}  {s['time'][:19]:19}  {rows:>7}  {what}{run}", soft_wrap=True,
                      markup=False, highlight=False)
