"""What the command line prints after a run: one row per dataset."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.table import Table

from pvdoi.results import DatasetResult

console = Console(width=None if sys.stdout.isatty() else 160)


def print_summary(results: dict[str, DatasetResult]) -> None:
    """One row per dataset: status, counts, MB downloaded, cache hits/misses, time, error."""
    table = Table(title="pvdoi datasets")
    for col in ("dataset", "status", "read", "written", "dropped", "repaired", "MB down", "cache hit/miss", "s",
                "output / error"):
        table.add_column(col, overflow="fold")
    for dataset_id, r in results.items():
        if not r.ok:
            table.add_row(dataset_id, f"[red]{r.status}[/red]", "", "", "", "", "", "", "",
                          f"{r.error_type}: {r.error}")
            continue
        c = r.counts
        table.add_row(dataset_id, "[green]completed[/green]", str(c["read"]), str(c["written"]), str(r.dropped),
                      str(c["repaired_invalid"] + c["repaired_text"]), f"{r.downloaded_bytes / 2**20:.1f}",
                      f"{len(r.cache.hits)}/{len(r.cache.misses)}", f"{r.duration_s:.1f}",
                      os.path.relpath(r.geoparquet.path))
    console.print(table)
