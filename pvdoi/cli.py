"""The ``pvdoi`` command line."""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pvdoi.errors import PVDOIError

for _key, _value in {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "hamilton,pvdoi",
    "DBT_USE_COLORS": "false",
}.items():
    os.environ.setdefault(_key, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="DOI-published solar PV datasets into verified GeoParquet and a DuckDB warehouse.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the Hamilton cache.")
app.add_typer(cache_app, name="cache")
console = Console(width=None if sys.stdout.isatty() else 160)

DatasetsArg = Annotated[list[str] | None, typer.Argument(help="dataset ids from the manifest (default: all)")]
AllOpt = Annotated[bool, typer.Option("--all", help="every dataset of the manifest (the default)")]
ManifestOpt = Annotated[str | None, typer.Option("--manifest", help="manifest JSON (default: doi_manifest.json)")]
MaxMbOpt = Annotated[float | None, typer.Option("--max-mb", help="refuse files larger than this many MB")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="run without Hamilton's cache")]
ForceOpt = Annotated[bool, typer.Option("--force-download", help="download and verify again even if stored")]
CacheOpt = Annotated[str | None, typer.Option("--cache-path", help="Hamilton cache folder (default .hamilton_cache)")]
DataOpt = Annotated[str | None, typer.Option("--data-dir", help="output folder (default ./data)")]


def _apply_env(manifest: str | None, data_dir: str | None, cache_path: str | None) -> None:
    for key, value in (("PVDOI_MANIFEST_PATH", manifest), ("PVDOI_DATA_DIR", data_dir),
                       ("PVDOI_CACHE_PATH", cache_path)):
        if value:
            os.environ[key] = os.path.abspath(value)


def _fail(exc: PVDOIError) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


def print_summary(results: dict[str, dict]) -> None:
    """One row per dataset: status, counts, MB downloaded, cache hits/misses, time, error."""
    table = Table(title="pvdoi datasets")
    for col in ("dataset", "status", "read", "written", "dropped", "repaired", "MB down", "cache hit/miss", "s",
                "output / error"):
        table.add_column(col, overflow="fold")
    for dataset_id, r in results.items():
        if r.get("status") != "completed":
            table.add_row(dataset_id, f"[red]{r.get('status')}[/red]", "", "", "", "", "", "", "",
                          f"{r.get('error_type')}: {r.get('error')}")
            continue
        c = r["counts"]
        dropped = c["dropped_empty"] + c["dropped_unrepairable"] + c["dropped_duplicate"]
        cache = r.get("cache") or {}
        table.add_row(dataset_id, "[green]completed[/green]", str(c["read"]), str(c["written"]), str(dropped),
                      str(c["repaired_invalid"] + c["repaired_text"]), f"{r.get('downloaded_bytes', 0) / 2**20:.1f}",
                      f"{len(cache.get('hits', []))}/{len(cache.get('misses', []))}", f"{r.get('duration_s', 0):.1f}",
                      os.path.relpath(r["geoparquet"]["path"]))
    console.print(table)


@app.command()
def ingest(datasets: DatasetsArg = None, all_: AllOpt = False, manifest: ManifestOpt = None, max_mb: MaxMbOpt = None,
           no_cache: NoCacheOpt = False, force_download: ForceOpt = False, cache_path: CacheOpt = None,
           data_dir: DataOpt = None, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Ingest datasets into GeoParquet with the Hamilton dataflow (no Prefect, no warehouse)."""
    from pvdoi.pipeline import run_doi_pipeline

    _apply_env(manifest, data_dir, cache_path)
    try:
        results = run_doi_pipeline(None if all_ else datasets, enable_caching=not no_cache,
                                   force_download=force_download, max_mb=max_mb)
    except PVDOIError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps(results, indent=1, default=str))
    else:
        print_summary(results)
    if any(r.get("status") != "completed" for r in results.values()):
        raise typer.Exit(1)


DatabaseOpt = Annotated[str | None, typer.Option("--database", help="DuckDB file (default data/eo_pv_data.duckdb)")]
NoDbtOpt = Annotated[bool, typer.Option("--no-dbt", help="load the warehouse but skip dbt build")]


NoOvertureOpt = Annotated[bool, typer.Option("--no-overture",
                                              help="skip the Overture Maps country/region fetch before dbt")]


def run_flow(datasets: list[str] | None, *, max_mb: float | None, no_cache: bool, force_download: bool,
             cache_path: str | None, database: str | None, no_dbt: bool, data_dir: str | None,
             no_overture: bool = False) -> tuple[dict[str, dict], bool]:
    """Run the Prefect flow in this process (temporary local API); its per-dataset results and whether it failed."""
    from pvdoi.prefect_api import prefect_api
    from pvdoi.settings import get_settings

    settings = get_settings()
    params = {"datasets": datasets or None, "force_download": force_download, "use_cache": not no_cache,
              "cache_path": cache_path, "database_path": database, "run_dbt": not no_dbt,
              "overture": not no_overture, "data_dir": data_dir,
              "max_mb": max_mb if max_mb is not None else settings.max_mb}
    with prefect_api(meanwhile=lambda: importlib.import_module("flows.ingest_flow")):  # imported while it boots
        from flows.ingest_flow import pv_doi_ingest

        state = pv_doi_ingest(**params, return_state=True)
    from flows.artifacts import run_results_path

    path = run_results_path(os.path.abspath(data_dir or settings.data_dir), state.state_details.flow_run_id)
    if state.is_completed():
        data = state.result()
    elif os.path.exists(path):  # a failed run's state carries no data; the flow kept its results here
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    else:  # rejected parameters or a crash: nothing ran
        console.print(f"[red]flow run ended {state.type.value}: {state.message}[/red]")
        raise typer.Exit(1)
    if state.is_failed():
        console.print(f"[red]flow run failed: {state.message}[/red]")
    return data, state.is_failed()


@app.command()
def run(datasets: DatasetsArg = None, all_: AllOpt = False, manifest: ManifestOpt = None, max_mb: MaxMbOpt = None,
        no_cache: NoCacheOpt = False, force_download: ForceOpt = False, cache_path: CacheOpt = None,
        database: DatabaseOpt = None, no_dbt: NoDbtOpt = False, no_overture: NoOvertureOpt = False,
        data_dir: DataOpt = None) -> None:
    """The main job: the Prefect flow on a temporary local API: ingest, load, Overture divisions, dbt build."""
    _apply_env(manifest, data_dir, cache_path)
    try:
        results, failed = run_flow(None if all_ else datasets, max_mb=max_mb, no_cache=no_cache,
                                   force_download=force_download, cache_path=cache_path, database=database,
                                   no_dbt=no_dbt, data_dir=data_dir, no_overture=no_overture)
    except PVDOIError as exc:
        _fail(exc)
    print_summary(results)
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(data_dir: Annotated[str, typer.Option("--data-dir")] = "data/demo", no_dbt: NoDbtOpt = False) -> None:
    """The whole product offline: a bundled local repository serves look-alikes of the six datasets.

    The Overture Maps fetch needs the internet, so the demo skips it (country and region stay empty).
    """
    from pvdoi.testing.reposerver import RepoServer

    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    with RepoServer(os.path.join(data_dir, "repository")) as server:
        os.environ.update(server.env())
        console.print(f"local repository server at {server.base_url} (Zenodo, figshare and GitHub APIs)")
        results, failed = run_flow(None, max_mb=None, no_cache=False, force_download=False,
                                   cache_path=os.path.join(data_dir, "hamilton_cache"), database=None,
                                   no_dbt=no_dbt, data_dir=data_dir, no_overture=True)
    print_summary(results)
    database = os.path.join(data_dir, "eo_pv_data.duckdb")
    console.print(f"""
[bold]Where to look next[/bold]
  GeoParquet:   {data_dir}/geoparquet/*.parquet
  warehouse:    {database}
                (raw_data.doi_pv_features, raw_data.datasets; dbt models in schemas staging, prepared, curated;
                 the offline demo skips the Overture fetch, so country and region are empty)
  query:        .venv/bin/python -c "from pvdoi.duckdb_ext import connect; \\
                print(connect('{database}').sql('select dataset_id, count(*) from raw_data.doi_pv_features group by 1'))"
  cache:        .venv/bin/pvdoi cache status --cache-path {data_dir}/hamilton_cache
  dataflow:     .venv/bin/pvdoi visualize -o {data_dir}/dataflow.svg
""")
    if failed:
        raise typer.Exit(1)


@cache_app.command("status")
def cache_status(cache_path: CacheOpt = None) -> None:
    """Each dataset's last run: cache hits, misses and always-checked nodes."""
    from pvdoi.cachetools import last_run
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    runs = last_run(path)
    if not runs:
        console.print(f"no recorded runs in {path}")
        return
    table = Table(title=f"Hamilton cache {path}")
    for col in ("dataset", "status", "at", "hits", "misses", "checked"):
        table.add_column(col, overflow="fold")
    for dataset_id, r in runs.items():
        cache = r.get("cache") or {}
        table.add_row(dataset_id, str(r.get("status")), str(r.get("at")), ", ".join(cache.get("hits", [])),
                      ", ".join(cache.get("misses", [])), ", ".join(cache.get("checked", [])))
    console.print(table)


def _run_id(cache_path: str, dataset_id: str) -> str:
    from pvdoi.cachetools import last_run

    run = (last_run(cache_path).get(dataset_id) or {}).get("cache") or {}
    if not run.get("run_id"):
        console.print(f"[red]no cached run recorded for {dataset_id!r} in {cache_path}[/red]")
        raise typer.Exit(2)
    return run["run_id"]


@cache_app.command("logs")
def cache_logs(dataset: str, cache_path: CacheOpt = None) -> None:
    """The cache events of the dataset's last run (JSON lines)."""
    from pvdoi.cachetools import run_logs
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    for event in run_logs(path, dataset, _run_id(path, dataset)):
        print(json.dumps(event))


@cache_app.command("keys")
def cache_keys(dataset: str, cache_path: CacheOpt = None) -> None:
    """Decoded cache keys and data versions of the dataset's last run."""
    from pvdoi.cachetools import run_keys
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    print(json.dumps(run_keys(path, _run_id(path, dataset)), indent=1))


@cache_app.command("clear")
def cache_clear(cache_path: CacheOpt = None) -> None:
    """Delete the cache folder (run it while no pipeline is running)."""
    from pvdoi.cachetools import clear
    from pvdoi.settings import get_settings

    path = cache_path or get_settings().cache_path
    console.print(f"removed {path}" if clear(path) else f"nothing to remove at {path}")


@app.command()
def visualize(output: Annotated[str, typer.Option("--output", "-o")] = "data/dataflow.svg",
              dataset: Annotated[str | None, typer.Option(help="colour by this dataset's last run")] = None,
              cache_path: CacheOpt = None) -> None:
    """Render the Hamilton dataflow (and the last run's cache hits) with Graphviz."""
    from pvdoi.cachetools import visualize as render
    from pvdoi.settings import get_settings

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    for path in render(output, cache_path=cache_path or get_settings().cache_path, dataset_id=dataset):
        console.print(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
