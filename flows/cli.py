"""The ``pvdoi`` command line."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

for _key, _value in {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "hamilton,pvdoi",
    # a record logged outside any run (the thread-pool path of `pvdoi ingest`) goes to the log file, not the API
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "DBT_USE_COLORS": "false",
}.items():
    os.environ.setdefault(_key, _value)
if ((__name__ == "__main__" or os.path.basename(sys.argv[0]) == "pvdoi") and sys.argv[1:2] in (["run"], ["demo"])
        and not {"--help", "-h"} & set(sys.argv)):  # the command line of a flow run: its server boots meanwhile
    from flows.prefect_api import launch_early

    launch_early()

import typer  # noqa: E402  (after the launch)

from flows.cache_cli import CacheOpt, cache_app
from flows.cite_cli import cite
from flows.console import VERBOSITY, configure_logging, error
from flows.datasets_cli import datasets_app
from flows.history_cli import history
from flows.open_cli import docs, export, map_
from flows.summary import console, print_summary
from pvdoi.errors import PVDOIError
from flows.runner import run_flow

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="DOI-published solar PV datasets into verified GeoParquet and a DuckDB warehouse.")
app.add_typer(cache_app, name="cache")
app.command()(export)
app.add_typer(datasets_app, name="datasets")
app.command()(docs)
app.command(name="map")(map_)
app.command()(history)
app.command()(cite)

DatasetsArg = Annotated[list[str] | None, typer.Argument(help="dataset ids from the manifest (default: all)")]
AllOpt = Annotated[bool, typer.Option("--all", help="every dataset of the manifest (the default)")]
ManifestOpt = Annotated[str | None, typer.Option("--manifest", help="manifest JSON (default: doi_manifest.json)")]
MaxMbOpt = Annotated[float | None, typer.Option("--max-mb", help="refuse files larger than this many MB")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="run without Hamilton's cache")]
ForceOpt = Annotated[bool, typer.Option("--force-download", help="download and verify again even if stored")]
DataOpt = Annotated[str | None, typer.Option("--data-dir", help="output folder (default ./data)")]
DaskOpt = Annotated[str | None, typer.Option("--dask", help="datasets on this Dask scheduler, or local[:N] worker "
                                             "processes (default PVDOI_DASK_ADDRESS; needs the dask extra)")]


def _use_manifest(manifest: str | None) -> None:
    """Name the manifest in the environment: the flow's parameter schema (its dataset choices) is read from it when
    the flow module is imported, before any parameter is passed."""
    if manifest:
        os.environ["PVDOI_MANIFEST_PATH"] = os.path.abspath(manifest)


def _fail(exc: PVDOIError, log_path: str | None = None) -> None:
    error(str(exc), hint=f"details: {log_path}" if log_path else None)
    raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"pvdoi {version('pvdoi')}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", "--debug", help="every log line, tracebacks included")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="errors and the final summary only")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """DOI-published solar PV datasets into verified GeoParquet and a DuckDB warehouse."""
    VERBOSITY.level = 1 if verbose else -1 if quiet else 0


@app.command()
def ingest(datasets: DatasetsArg = None, all_: AllOpt = False, manifest: ManifestOpt = None, max_mb: MaxMbOpt = None,
           no_cache: NoCacheOpt = False, force_download: ForceOpt = False, cache_path: CacheOpt = None,
           data_dir: DataOpt = None, json_out: Annotated[bool, typer.Option("--json")] = False,
           dask: DaskOpt = None) -> None:
    """Ingest datasets into GeoParquet with the Hamilton dataflow (no Prefect, no warehouse)."""
    from flows.fanout import run_doi_pipeline
    from flows.progress import live_display
    from pvdoi.settings import get_settings

    live = sys.stderr.isatty() and VERBOSITY.level == 0 and not json_out
    log_path = configure_logging(data_dir or get_settings().data_dir, "ingest", live=live)
    try:
        with live_display(live):
            results = run_doi_pipeline(None if all_ else datasets, enable_caching=not no_cache,
                                       cache_path=cache_path, force_download=force_download, max_mb=max_mb,
                                       manifest_path=manifest, data_dir=data_dir,
                                       dask_address=dask)
    except PVDOIError as exc:
        _fail(exc, log_path)
    if json_out:
        print(json.dumps({d: r.as_dict() for d, r in results.items()}, indent=1, default=str))
    else:
        print_summary(results, log_path=log_path)
    if not all(r.ok for r in results.values()):
        raise typer.Exit(1)


DatabaseOpt = Annotated[str | None, typer.Option("--database", help="DuckDB file (default data/eo_pv_data.duckdb)")]
NoDbtOpt = Annotated[bool, typer.Option("--no-dbt", help="load the warehouse but skip dbt build")]


NoOvertureOpt = Annotated[bool, typer.Option("--no-overture",
                                              help="skip the Overture Maps country/region fetch before dbt")]


ForceDbtOpt = Annotated[bool, typer.Option("--force-dbt", help="build every dbt model and test even if nothing "
                                                                "changed since the last build")]


@app.command()
def run(datasets: DatasetsArg = None, all_: AllOpt = False, manifest: ManifestOpt = None, max_mb: MaxMbOpt = None,
        no_cache: NoCacheOpt = False, force_download: ForceOpt = False, cache_path: CacheOpt = None,
        database: DatabaseOpt = None, no_dbt: NoDbtOpt = False, no_overture: NoOvertureOpt = False,
        force_dbt: ForceDbtOpt = False, data_dir: DataOpt = None, dask: DaskOpt = None) -> None:
    """The main job: the Prefect flow on a temporary local API: ingest, load, Overture divisions, dbt build."""
    _use_manifest(manifest)
    failed = run_flow(None if all_ else datasets, max_mb=max_mb, no_cache=no_cache, data_dir=data_dir,
                      force_download=force_download, cache_path=cache_path, database_path=database,
                      run_dbt=not no_dbt, overture=not no_overture, force_dbt=force_dbt, dask_address=dask)
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
        console.print(f"local repository server at {server.base_url} (Zenodo, figshare and GitHub APIs), serving "
                      "small look-alikes: expect a warning per dataset that its files hold fewer features than the "
                      "manifest's count of the real ones")
        failed = run_flow(None, max_mb=None, no_cache=False, data_dir=data_dir,
                          cache_path=os.path.join(data_dir, "hamilton_cache"), run_dbt=not no_dbt, overture=False)
    from pvdoi.settings import get_settings

    database = get_settings().warehouse_path(data_dir)
    console.print(f"""
[bold]Where to look next[/bold] (offline: no Overture, so country and region are empty)
  GeoParquet  {data_dir}/geoparquet/
  warehouse   {database}
              schemas raw_data, staging, prepared, curated
  cache       pvdoi cache status --cache-path {data_dir}/hamilton_cache
  dataflow    pvdoi visualize -o {data_dir}/dataflow.svg""")

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
