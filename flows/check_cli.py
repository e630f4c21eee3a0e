"""``pvdoi datasets check``: does each dataset's repository publish a newer version than the manifest pins?"""

from __future__ import annotations

import json
import os
import textwrap
from typing import Annotated

import typer

from flows.console import manifest_or_exit
from flows.summary import console
from pvdoi.settings import get_settings
from pvdoi.upstream import Upstream, check_upstream

WIDTH = 80


def check(manifest: Annotated[str | None, typer.Option("--manifest", help="manifest JSON")] = None,
          data_dir: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data)")] = None,
          json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Ask each repository for a version newer than the pinned one (never changes the manifest; exits 0 when a
    repository cannot be reached: that dataset is "unknown")."""
    from flows.artifacts import read_status

    settings = get_settings()
    specs = manifest_or_exit(manifest or settings.manifest_path)
    status = read_status(os.path.abspath(data_dir or settings.data_dir))
    checks = check_upstream(specs, settings, last_success={d: e.get("last_success") for d, e in status.items()})
    if json_out:
        print(json.dumps([c.as_dict() for c in checks], indent=1))
        return
    for line in check_lines(checks):
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def check_lines(checks: list[Upstream], width: int = WIDTH) -> list[str]:
    """One line per dataset (id, status, pinned → latest or the reason), then what to change for each newer one;
    every line within ``width`` columns."""
    if not checks:
        return []
    id_width = min(max(len(c.id) for c in checks), width // 2)
    lines = []
    for c in checks:
        if c.status == "newer":
            what = f"{c.pinned} -> {c.latest}"
        elif c.status == "current":
            what = c.pinned if c.latest in (None, c.pinned) else f"{c.pinned} ({c.latest})"
        else:
            what = f"{c.pinned} ({c.latest})" if c.pinned and c.latest else c.message
        lines.append(_cut(f"{_cut(c.id, id_width):<{id_width}}  {c.status:<7}  {what}", width))
    for c in checks:
        if c.status != "current":
            lines += textwrap.wrap(f"{c.id}: {c.message}", width, subsequent_indent="  ", break_on_hyphens=False)
    return lines



def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
