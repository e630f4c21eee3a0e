"""The command line: ingest, CSV/JSON point sources, cache introspection and the rendered dataflow."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
from typer.testing import CliRunner

from flows.cli import app
from flows.dataflow import run_dataset
from tests.conftest import write_manifest

INDIA = "ind_pv_solar_farms_2022"
runner = CliRunner()


def test_ingest_then_cache_status_keys_logs_and_visualize(repo, workdir, monkeypatch):
    monkeypatch.setenv("PVDOI_MANIFEST_PATH", str(workdir / "unused"))  # restored after the CLI overrides it
    cache = str(workdir / "cache")
    result = runner.invoke(app, ["ingest", INDIA, "--cache-path", cache, "--data-dir", str(workdir / "data"),
                                 "--manifest", "doi_manifest.json"])
    assert result.exit_code == 0, result.output
    assert " ok " in result.output and "1,363" in result.output

    status = runner.invoke(app, ["cache", "status", "--cache-path", cache])
    assert status.exit_code == 0 and INDIA in status.output and "standardised_features" in status.output

    keys = json.loads(runner.invoke(app, ["cache", "keys", INDIA, "--cache-path", cache]).output)
    nodes = {k["node"]: k for k in keys}
    assert "raw_layers" in nodes and "source_files" in nodes["raw_layers"]["dependencies"]

    logs = runner.invoke(app, ["cache", "logs", INDIA, "--cache-path", cache]).output.splitlines()
    events = [json.loads(line) for line in logs]
    assert events and {e["node_name"] for e in events} >= {"raw_layers", "standardised_features"}

    svg = workdir / "dag.svg"
    drawn = runner.invoke(app, ["visualize", "-o", str(svg), "--dataset", INDIA, "--cache-path", cache])
    assert drawn.exit_code == 0, drawn.output
    text = svg.read_text()
    assert "<svg" in text and "standardised_features" in text and "#ffd6a5" in text  # executed nodes coloured

    cleared = runner.invoke(app, ["cache", "clear", "--cache-path", cache])
    assert "removed" in cleared.output and not (workdir / "cache").exists()


def test_csv_and_plain_json_point_sources(repo, workdir):
    def csv(raw):
        uk = raw["datasets"][1]
        uk["files"] = {"include": [r"^ukpvgeo_points\.csv$"]}
        uk["read"] = {"csv_lon": "longitude", "csv_lat": "latitude"}
    report = run_dataset("uk_crowdsourced_pv_2020", manifest_path=write_manifest(workdir / "csv.json", csv))
    frame = gpd.read_parquet(report.geoparquet.path)
    rows = pd.read_csv(repo.files_dir / "uk_crowdsourced_pv_2020" / "ukpvgeo_points.csv")
    assert report.counts["read"] == len(rows) and set(frame["geometry_type"]) == {"Point"}
    first = frame.sort_values("source_feature_index").iloc[0]
    assert (first.geometry.x, first.geometry.y) == (rows["longitude"][0], rows["latitude"][0])
    attributes = json.loads(first["source_attributes"])
    assert attributes["latitude"] == rows["latitude"][0] and attributes["osm_id"] == rows["osm_id"][0]
    assert frame["capacity_mw"].notna().any()  # typed columns, mapped like the GeoJSON's

    records = rows.head(20)[["osm_id", "latitude", "longitude"]].to_json(orient="records").encode()
    repo.add_file("uk_crowdsourced_pv_2020", "points.json", records)

    def plain_json(raw):
        uk = raw["datasets"][1]
        uk["files"] = {"include": [r"^points\.json$"]}
        uk["read"] = {"csv_lon": "longitude", "csv_lat": "latitude"}
    report = run_dataset("uk_crowdsourced_pv_2020", manifest_path=write_manifest(workdir / "j.json", plain_json))
    assert report.counts["written"] == 20


def _pvdoi_run(workdir, *args: str, timeout: int, **env: str) -> str:
    """`pvdoi run ARGS` in a subprocess as on a fresh machine (no PREFECT_API_URL); its output, once it succeeded."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
           "PREFECT_HOME": str(workdir / "prefect_home"), "PYTHONUNBUFFERED": "1", **env}
    out = subprocess.run([sys.executable, "-m", "flows.cli", "run", *args, "--data-dir", str(workdir / "data"),
                          "--cache-path", str(workdir / "cache")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    return log


def test_run_without_a_server_shares_one_temporary_api_with_its_task_workers(repo, workdir):
    # `pvdoi run` on a fresh machine: no PREFECT_API_URL. One temporary server, whose flow run holds the
    # task runs of the worker processes (each would otherwise start a server of its own), and a prompt exit.
    log = _pvdoi_run(workdir, INDIA, "usa_cali_usgs_pv_2016", "--no-dbt", timeout=600, PVDOI_MAX_WORKERS="2")
    assert log.count("Prefect API: a temporary local server") == 1, log[-3000:]
    assert "Starting temporary server" not in log, log[-3000:]  # Prefect's own fallback server, from a thread without context
    assert "Task run 'ingest-ind_pv_solar_farms_2022'" in log and "Finished in state Completed()" in log
    assert "error" not in log.lower().replace("output / error", ""), log[-3000:]


def test_run_with_dbt_keeps_every_thread_on_the_one_temporary_api(repo, workdir):
    # Threads started without a copy of the run's context (dbt's, prefect-dbt's when asked) must find the run's
    # API in the process-wide settings, not have Prefect start a second server (and their logs go there).
    log = _pvdoi_run(workdir, INDIA, "--no-overture", timeout=900)
    assert "dbt build built" in log and "'model success': 9" in log, log[-3000:]  # dbt ran, summarised in the log
    assert "'test pass': 110" in log and "fail" not in log.split("dbt build built")[1].split("\n")[0], log[-3000:]
    assert log.count("Prefect API: a temporary local server") == 1, log[-3000:]
    assert "Starting temporary server" not in log, log[-3000:]
