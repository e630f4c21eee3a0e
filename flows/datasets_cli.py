"""``pvdoi datasets``: what the manifest holds, where each dataset comes from, how to cite it, how it last ran."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from flows.add_cli import add
from flows.check_cli import check
from flows.console import manifest_or_exit
from flows.summary import console
from pvdoi.manifest import DatasetSpec
from pvdoi.results import licence_warning
from pvdoi.settings import get_settings

datasets_app = typer.Typer(help="The datasets of the manifest: source, pinned version, licence, citation, last run.")
datasets_app.command("check")(check)
datasets_app.command("add")(add)


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context,
             manifest: Annotated[str | None, typer.Option("--manifest", help="manifest JSON")] = None,
             data_dir: Annotated[str | None, typer.Option("--data-dir", help="data folder (default ./data)")] = None,
             json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One entry per dataset: id, title, DOI, repository and pinned version, licence, citation, last run and rows."""
    if ctx.invoked_subcommand is not None:
        return
    from flows.artifacts import read_status

    settings = get_settings()
    specs = manifest_or_exit(manifest or settings.manifest_path)
    status = read_status(os.path.abspath(data_dir or settings.data_dir))
    entries = [_entry(spec, status.get(spec.id, {})) for spec in specs]
    if json_out:
        print(json.dumps(entries, indent=1))
        return
    for e in entries:
        run = (f"{e['last_status']} {e['last_run']}, {e['rows']:,} rows" if e["rows"] is not None
               else (e["last_status"] or "never run"))
        console.print(f"[bold]{e['id']}[/bold]  {run}", soft_wrap=True)
        console.print(f"  {e['title']}")
        console.print(f"  DOI {e['doi']}  ·  {e['source']}")
        warning = "  [yellow](licence restricts use or is unspecified)[/yellow]" if e["licence_warning"] else ""
        console.print(f"  licence {e['license']}{warning}  ·  cite: {e['citation'] or '-'}")


def _entry(spec: DatasetSpec, status: dict) -> dict:
    return {"id": spec.id, "title": spec.title, "doi": spec.doi, "source": _source(spec), "license": spec.license,
            "licence_warning": licence_warning(spec.license) is not None,
            "citation": spec.citation, "last_status": status.get("last_status"), "last_run": status.get("last_run"),
            "rows": status.get("rows")}


def _source(spec: DatasetSpec) -> str:
    """The repository and the version the manifest pins (``latest`` when it pins none)."""
    r = spec.repository
    if r.type == "zenodo":
        return f"zenodo record {r.record_id}"
    if r.type == "figshare":
        return f"figshare article {r.article_id} v{r.version or 'latest'}"
    if r.type == "github":
        return f"github {r.owner}/{r.repo}@{r.ref}" + (f":{r.path}" if r.path else "")
    return f"url {r.urls[0]}" + (f" (+{len(r.urls) - 1})" if len(r.urls) > 1 else "")

