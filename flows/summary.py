"""What the command line prints after a run: a table that fits 80 columns, then paths, errors and the dbt stage."""

from __future__ import annotations

import os
import sys

from rich import box
from rich.console import Console
from rich.table import Table

from flows.console import error
from pvdoi.objectstore import is_url
from pvdoi.results import DatasetResult

console = Console(width=None if sys.stdout.isatty() else 80, highlight=False)


def print_summary(results: dict[str, DatasetResult], dbt: dict | None = None, log_path: str | None = None) -> None:
    """One short row per dataset; under it, where the outputs are, licence and GDAL warnings, each failure, the dbt
    stage and the log file."""
    # one space between columns and none at the edges: the longest dataset id (40 characters) fits in 80 columns
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=0, title="pvdoi datasets", title_justify="left")
    table.add_column("dataset", overflow="ellipsis", no_wrap=True, ratio=1)  # narrower terminals: cut, never folded
    for name in ("status", "rows", "drop", "MB", "cache", "s"):
        table.add_column(name, justify="left" if name == "status" else "right", no_wrap=True, min_width=len(name) + 1)
    for dataset_id, r in results.items():
        if not r.ok:
            table.add_row(dataset_id, "[red]failed[/red]", "", "", "", "", "")
            continue
        table.add_row(dataset_id, "[green]ok[/green]", f"{r.counts['written']:,}", f"{r.dropped:,}",
                      _figure(r.downloaded_bytes / 2**20), f"{len(r.cache.hits)}/{len(r.cache.misses)}",
                      _figure(r.duration_s))
    console.print(table)
    for where in sorted({_where(r.geoparquet.path) for r in results.values() if r.ok}):
        console.print(f"GeoParquet: {where}", soft_wrap=True)
    console.print("cache: hits/misses of the dataflow's nodes; MB: downloaded now", style="dim")
    for dataset_id, r in results.items():
        if r.ok and r.licence_warning:
            console.print(f"[yellow]{dataset_id}[/yellow]: {r.licence_warning}", soft_wrap=True)
    for dataset_id, r in results.items():
        if r.gdal_warnings:
            console.print(f"[yellow]{dataset_id}[/yellow]: {r.gdal_warnings:,} GDAL "
                          f"warning{'s' * (r.gdal_warnings != 1)} (in the log)", soft_wrap=True)
    for dataset_id, r in results.items():
        if not r.ok:
            error(f"{dataset_id} failed: {r.error_type}: {r.error}")
    if dbt:
        for line in dbt_lines(dbt):
            console.print(line)
    if log_path:
        console.print(f"log: {_short(log_path)}", soft_wrap=True)


def _figure(x: float) -> str:
    """Megabytes or seconds in at most four characters for most: a decimal below 10, whole numbers above."""
    return f"{x:.1f}" if x < 9.95 else f"{x:,.0f}"


def dbt_lines(dbt: dict) -> list[str]:
    """The dbt stage in a few lines: models built, tests passed/warned/failed, failed tests, slowest models."""
    if dbt.get("status") == "skipped":
        return [f"dbt: skipped ({dbt.get('reason')}; --force-dbt builds anyway)"]
    nodes = dbt.get("nodes") or []
    models = [n for n in nodes if n["kind"] in ("model", "seed", "snapshot")]
    tests = [n for n in nodes if n["kind"] in ("test", "unit_test")]
    count = {s: sum(n["status"] == s for n in tests) for s in ("pass", "warn", "fail", "error")}
    lines = [f"dbt: {dbt.get('status')} in {dbt.get('seconds', 0):.0f} s: "
             f"{sum(n['status'] == 'success' for n in models)} of {len(models)} models built, "
             f"tests {count['pass']} passed, {count['warn']} warned, {count['fail'] + count['error']} failed"]
    lines += [f"  failed: {n['name']}: {n.get('message') or n['status']}" for n in nodes
              if n["status"] in ("fail", "error", "runtime error")]
    slowest = sorted(models, key=lambda n: -n["seconds"])[:3]
    if slowest:
        lines += ["  slowest models:"] + [f"    {n['seconds']:5.1f} s  {n['name']}" for n in slowest]
    return lines


def _where(path: str) -> str:
    """Where the outputs are: ``<folder>/<dataset>.parquet``, or under a shared URL ``<url>/<dataset>/...``."""
    if is_url(path):
        return f"{path.rsplit('/', 2)[0]}/<dataset>/<inputs>-<sha256>.parquet"
    return f"{_short(os.path.dirname(path))}{os.sep}<dataset>.parquet"


def _short(path: str) -> str:
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path
