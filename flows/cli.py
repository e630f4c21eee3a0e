"""The ``pvdoi`` command line."""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Annotated

import typer

from flows.cache_cli import CacheOpt, cache_app
from flows.summary import console, print_summary
from pvdoi.errors import PVDOIError
from pvdoi.results import DatasetResult

for _key, _value in {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "hamilton,pvdoi",
    "DBT_USE_COLORS": "false",
}.items():
    os.environ.setdefault(_key, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="DOI-published solar PV datasets into verified GeoParquet and a DuckDB warehouse.")
app.add_typer(cache_app, name="cache")

DatasetsArg = Annotated[list[str] | None, typer.Argument(help="dataset ids from the manifest (default: all)")]
AllOpt = Annotated[bool, typer.Option("--all", help="every dataset of the manifest (the default)")]
ManifestOpt = Annotated[str | None, typer.Option("--manifest", help="manifest JSON (default: doi_manifest.json)")]
MaxMbOpt = Annotated[float | None, typer.Option("--max-mb", help="refuse files larger than this many MB")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="run without Hamilton's cache")]
ForceOpt = Annotated[bool, typer.Option("--force-download", help="download and verify again even if stored")]
DataOpt = Annotated[str | None, typer.Option("--data-dir", help="output folder (default ./data)")]


def _use_manifest(manifest: str | None) -> None:
    """Name the manifest in the environment: the flow's parameter schema (its dataset choices) is read from it when
    the flow module is imported, before any parameter is passed."""
    if manifest:
        os.environ["PVDOI_MANIFEST_PATH"] = os.path.abspath(manifest)


def _fail(exc: PVDOIError) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


@app.command()
def ingest(datasets: DatasetsArg = None, all_: AllOpt = False, manifest: ManifestOpt = None, max_mb: MaxMbOpt = None,
           no_cache: NoCacheOpt = False, force_download: ForceOpt = False, cache_path: CacheOpt = None,
           data_dir: DataOpt = None, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Ingest datasets into GeoParquet with the Hamilton dataflow (no Prefect, no warehouse)."""
    from flows.fanout import run_doi_pipeline

    try:
        results = run_doi_pipeline(None if all_ else datasets, enable_caching=not no_cache, cache_path=cache_path,
                                   force_download=force_download, max_mb=max_mb, manifest_path=manifest,
                                   data_dir=data_dir)
    except PVDOIError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps({d: r.as_dict() for d, r in results.items()}, indent=1, default=str))
    else:
        print_summary(results)
    if not all(r.ok for r in results.values()):
        raise typer.Exit(1)


DatabaseOpt = Annotated[str | None, typer.Option("--database", help="DuckDB file (default data/eo_pv_data.duckdb)")]
NoDbtOpt = Annotated[bool, typer.Option("--no-dbt", help="load the warehouse but skip dbt build")]


NoOvertureOpt = Annotated[bool, typer.Option("--no-overture",
                                              help="skip the Overture Maps country/region fetch before dbt")]


ForceDbtOpt = Annotated[bool, typer.Option("--force-dbt", help="build every dbt model and test even if nothing "
                                                                "changed since the last build")]


def run_flow(datasets: list[str] | None, *, max_mb: float | None, no_cache: bool, data_dir: str | None,
             **params) -> tuple[dict[str, DatasetResult], bool]:
    """Run the Prefect flow in this process (temporary local API) with ``params``; its per-dataset results and
    whether it failed."""
    from flows.artifacts import read_run_results
    from flows.prefect_api import prefect_api
    from pvdoi.settings import get_settings

    settings = get_settings()
    params.update(datasets=datasets or None, use_cache=not no_cache, data_dir=data_dir,
                  max_mb=max_mb if max_mb is not None else settings.max_mb)
    with prefect_api(meanwhile=lambda: importlib.import_module("flows.ingest_flow")):  # imported while it boots
        from flows.ingest_flow import pv_doi_ingest

        state = pv_doi_ingest(**params, return_state=True)
    # a failed run's state carries no data; the flow kept its results beside the data
    data = state.result() if state.is_completed() else read_run_results(
        os.path.abspath(data_dir or settings.data_dir), state.state_details.flow_run_id)
    if data is None:  # rejected parameters or a crash: nothing ran
        console.print(f"[red]flow run ended {state.type.value}: {state.message}[/red]")
        raise typer.Exit(1)
    if state.is_failed():
        console.print(f"[red]flow run failed: {state.message}[/red]")
    return data, state.is_failed()


@app.command()
def run(datasets: DatasetsArg = None, all_: AllOpt = False, manifest: ManifestOpt = None, max_mb: MaxMbOpt = None,
        no_cache: NoCacheOpt = False, force_download: ForceOpt = False, cache_path: CacheOpt = None,
        database: DatabaseOpt = None, no_dbt: NoDbtOpt = False, no_overture: NoOvertureOpt = False,
        force_dbt: ForceDbtOpt = False, data_dir: DataOpt = None) -> None:
    """The main job: the Prefect flow on a temporary local API: ingest, load, Overture divisions, dbt build."""
    _use_manifest(manifest)
    try:
        results, failed = run_flow(None if all_ else datasets, max_mb=max_mb, no_cache=no_cache, data_dir=data_dir,
                                   force_download=force_download, cache_path=cache_path, database_path=database,
                                   run_dbt=not no_dbt, overture=not no_overture, force_dbt=force_dbt)
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
        os.environ.update(server.env())  # the repositories' URLs, for the flow's settings
        console.print(f"local repository server at {server.base_url} (Zenodo, figshare and GitHub APIs)")
        results, failed = run_flow(None, max_mb=None, no_cache=False, data_dir=data_dir,
                                   cache_path=os.path.join(data_dir, "hamilton_cache"), run_dbt=not no_dbt,
                                   overture=False)
    print_summary(results)
    from pvdoi.settings import get_settings

    database = get_settings().warehouse_path(data_dir)
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


@app.command()
def visualize(output: Annotated[str, typer.Option("--output", "-o")] = "data/dataflow.svg",
              dataset: Annotated[str | None, typer.Option(help="colour by this dataset's last run")] = None,
              cache_path: CacheOpt = None) -> None:
    """Render the Hamilton dataflow (and the last run's cache hits) with Graphviz."""
    from flows.cachetools import visualize as render
    from pvdoi.settings import get_settings

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    for path in render(output, cache_path=cache_path or get_settings().cache_path, dataset_id=dataset):
        console.print(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
