"""``pvdoi cache``: inspect or clear the Hamilton cache."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.summary import console

cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the Hamilton cache.")
CacheOpt = Annotated[str | None, typer.Option("--cache-path", help="Hamilton cache folder (default .hamilton_cache)")]


@cache_app.command("status")
def cache_status(cache_path: CacheOpt = None) -> None:
    """Each dataset's last run: cache hits, misses and always-checked nodes."""
    from flows.cachetools import last_run
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    runs = last_run(path)
    if not runs:
        console.print(f"no recorded runs in {path}")
        return
    console.print(f"Hamilton cache {path}", soft_wrap=True)
    for dataset_id, r in runs.items():  # a block per dataset: node lists are long, a table would wrap every cell
        cache = r.get("cache") or {}
        console.print(f"\n[bold]{dataset_id}[/bold]  {r.get('status')}  {r.get('at')}", soft_wrap=True)
        for kind in ("hits", "misses", "checked"):
            console.print(f"  {kind + ':':8} {', '.join(cache.get(kind, [])) or '-'}")


def _run_id(cache_path: str, dataset_id: str) -> str:
    from flows.cachetools import last_run

    run = (last_run(cache_path).get(dataset_id) or {}).get("cache") or {}
    if not run.get("run_id"):
        console.print(f"[red]no cached run recorded for {dataset_id!r} in {cache_path}[/red]")
        raise typer.Exit(2)
    return run["run_id"]


@cache_app.command("logs")
def cache_logs(dataset: str, cache_path: CacheOpt = None) -> None:
    """The cache events of the dataset's last run (JSON lines)."""
    from flows.cachetools import run_logs
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    for event in run_logs(path, dataset, _run_id(path, dataset)):
        print(json.dumps(event))


@cache_app.command("keys")
def cache_keys(dataset: str, cache_path: CacheOpt = None) -> None:
    """Decoded cache keys and data versions of the dataset's last run."""
    from flows.cachetools import run_keys
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    print(json.dumps(run_keys(path, _run_id(path, dataset)), indent=1))


@cache_app.command("clear")
def cache_clear(cache_path: CacheOpt = None) -> None:
    """Delete the cache folder (run it while no pipeline is running)."""
    from flows.cachetools import clear
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    console.print(f"removed {path}" if clear(path) else f"nothing to remove at {path}")
