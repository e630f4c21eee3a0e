"""BENCHMARKS.md from the results of ``benchmarks.run``: medians, ratios and the issue's targets."""

from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

LABELS = {
    "baseline_pyogrio": "pyogrio `read_arrow` → `pyarrow.parquet.write_table` (1 process)",
    "baseline_duckdb": "DuckDB `ST_Read` → table",
    "baseline_dlt": "before: geopandas read → dlt → DuckDB (WKT)",
    "ingest_cold": "`pvdoi ingest --all`, cold (download, verify, process, GeoParquet)",
    "ingest_unchanged": "`pvdoi ingest --all`, unchanged re-run",
    "ingest_one_changed": "`pvdoi ingest --all`, one file of one dataset changed",
    "run_cold_no_dbt": "`pvdoi run --all --no-dbt`, cold (Prefect, warehouse load)",
    "run_unchanged_no_dbt": "`pvdoi run --all --no-dbt`, unchanged re-run",
    "run_cold_with_dbt": "`pvdoi run --all --no-overture`, cold, with `dbt build` (no Overture: it needs S3)",
    "run_unchanged_with_dbt": "`pvdoi run --all --no-overture`, unchanged re-run (dbt skipped)",
    "run_one_changed_with_dbt": "`pvdoi run --all --no-overture`, one file of one dataset changed (dbt: what depends on it)",
    "run_forced_dbt": "`pvdoi run --all --no-overture --force-dbt`, data unchanged, every model and test",
    "dbt_alone": "plain `dbt build` (CLI, its own process) on the same warehouse",
    "ingest_cold_dask_1": "`pvdoi ingest --all --dask local:1`, cold, one single-threaded Dask worker process",
    "ingest_cold_dask_2": "`pvdoi ingest --all --dask local:2`, cold, two single-threaded Dask worker processes",
    "run_cold_with_dbt_lake": "`pvdoi run --all --no-overture`, cold, with `dbt build`, DuckLake backend (SQLite "
                              "catalog, data files in a folder)",
}
WITH_DBT = ("run_cold_with_dbt", "run_unchanged_with_dbt", "run_one_changed_with_dbt", "run_forced_dbt", "dbt_alone")
WITHOUT_DBT = ("ingest_cold", "ingest_unchanged", "ingest_one_changed", "run_cold_no_dbt", "run_unchanged_no_dbt")


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def write_report(results: dict, path: Path, *, command: str, machine: str) -> None:
    rows, features = results["rows"], results["features"]
    wall = {k: _median(v, "wall") for k, v in rows.items()}
    peak = {k: max(r["peak_mb"] for r in v) for k, v in rows.items()}
    base = wall["baseline_pyogrio"]
    lines = [
        "# Benchmarks", "",
        f"Measured {date.today().isoformat()} on {machine}.", "",
        f"Command: `{command}` (scale {results['scale']:g}: {features:,} features; medians of "
        f"{results['repeat']}; every row a separate process; peak RSS of its whole process tree).", "",
        "| scenario | wall s (median) | features/s | peak RSS MB | × pyogrio baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in LABELS.items():
        if key in wall:
            lines.append(f"| {label} | {wall[key]:.1f} | {features / wall[key]:,.0f} | {peak[key]:,.0f} | "
                         f"{wall[key] / base:.2f} |")
    reports = results.get("ingest_reports", {})
    changed = "global_pv_inventory_sent2_spot_2021"
    durations = {d: r.get("duration_s", 0) for d, r in reports.items()}
    share = durations.get(changed, 0) / max(sum(durations.values()), 1e-9)
    written = sum(r["counts"]["read"] for r in reports.values()) if reports else 0
    failed = [d for d, r in reports.items() if r.get("status") != "completed"]
    dlt_fps = features / wall["baseline_dlt"]
    delivered_fps = results.get("baseline_features", {}).get("baseline_dlt", features) / wall["baseline_dlt"]
    checks = _checks([
        ("ingest cold ≤ 0.8 × pyogrio baseline", lambda: wall["ingest_cold"] / base, 0.8),
        ("run --no-dbt cold ≤ 1.25 × pyogrio baseline", lambda: wall["run_cold_no_dbt"] / base, 1.25),
        ("throughput ≥ 2.5 × dlt path, features it was given per s (ratio shown as dlt/product fps, ≤ 0.4)",
         lambda: dlt_fps / (features / wall["ingest_cold"]), 0.4),
        ("throughput ≥ 2.5 × dlt path, features it delivered per s (ratio shown as dlt/product fps, ≤ 0.4)",
         lambda: delivered_fps / (features / wall["ingest_cold"]), 0.4),
        ("unchanged ingest ≤ 10 % of cold", lambda: wall["ingest_unchanged"] / wall["ingest_cold"], 0.10),
        ("unchanged run ≤ 25 % of cold", lambda: wall["run_unchanged_no_dbt"] / wall["run_cold_no_dbt"], 0.25),
        (f"one changed dataset ≤ its share ({share:.0%}) of cold + 10 % (as a fraction of cold)",
         lambda: wall["ingest_one_changed"] / wall["ingest_cold"], share + 0.10),
        ("peak RSS of the process tree without dbt ≤ 1.0 GB (GB; ingest and run)",
         lambda: max(peak[k] for k in WITHOUT_DBT if k in peak) / 1024, 1.0),
    ])
    checks += _dbt_checks(rows, wall, peak)
    scaling = results.get("scaling", {})
    if scaling and "ingest_cold" in wall:
        smallest = min(scaling, key=float)
        per_small = scaling[smallest]["wall"] / scaling[smallest]["features"]
        per_full = wall["ingest_cold"] / written if written else float("nan")
        checks.append((f"cost per feature at scale {results['scale']:g} ≤ 1.25 × scale {float(smallest):g}",
                       per_full / per_small, 1.25))
    checks += _scale_out_checks(results, wall)
    lines += ["", "## Targets", "", "| target | measured | limit | met |", "|---|---:|---:|:---:|"]
    lines += [f"| {name} | {value:.2f} | {limit:.2f} | {'yes' if value <= limit else '**no**'} |" if limit is not None
              else f"| {name} | {value:.2f} | — | (reported) |" for name, value, limit in checks]
    delivered = results.get("baseline_features", {}).get("baseline_dlt", features)
    own = durations.get(changed, 0)
    lines += ["", "Notes:", ""]
    lines += [] if "ingest_cold" not in wall else [
              f"- Throughput: the dlt path was given {features:,} features and delivered "
              f"{delivered:,} of them"
              + (f" ({delivered / wall['baseline_dlt']:,.0f} delivered/s; the product's "
                 f"{features / wall['ingest_cold']:,.0f}/s is "
                 f"{(features / wall['ingest_cold']) / (delivered / wall['baseline_dlt']):.2f}× that)."
                 if delivered < features else "."),
              f"- \"Its share\" is its seconds over the sum of all datasets' seconds; datasets run side by side, so "
              f"the changed dataset's own cold time ({own:.1f} s in its thread, sharing the cores) bounds its re-run "
              f"({wall['ingest_one_changed']:.1f} s, start-up included)."]
    lines += _scale_out_notes(results)
    lines += ["", "## Data lost", ""]
    lines += [f"- product: {len(failed)} datasets failed, {written:,} of {features:,} source features read "
              f"(every drop is counted in the per-dataset report)."] if reports else []
    lines += [f"- dlt path: {results['baseline_lost'].get('baseline_dlt') or 'nothing lost'}",
              f"- pyogrio baseline: {results['baseline_lost'].get('baseline_pyogrio') or 'nothing lost'}"]
    versus = results.get("outputs_vs_reference")
    if versus:
        same = sum(v == "same" for v in versus.values())
        lines += [f"- outputs of the first cold ingest against those of the code before the speed-ups "
                  f"(`benchmarks/reference_digests.json`): {same} of {len(versus)} datasets identical"
                  + ("" if same == len(versus) else f" ({versus})")]
    if reports:
        lines += ["", "## Per dataset (first cold `pvdoi ingest --all`; datasets side by side in 2 threads)", "",
                  "| dataset | read | written | dropped | seconds in its thread |", "|---|---:|---:|---:|---:|"]
        for d, r in sorted(reports.items(), key=lambda kv: -kv[1].get("duration_s", 0)):
            c = r.get("counts", {})
            lines.append(f"| {d} | {c.get('read', 0):,} | {c.get('written', 0):,} | "
                         f"{c.get('read', 0) - c.get('written', 0):,} | {r.get('duration_s', 0):.1f} |")
    if scaling and "ingest_cold" in wall:
        lines += ["", "## Scaling (cold `pvdoi ingest --all`)", "", "| scale | features | wall s | µs/feature |",
                  "|---:|---:|---:|---:|"]
        for s, v in sorted(scaling.items(), key=lambda kv: float(kv[0])):
            lines.append(f"| {float(s):g} | {v['features']:,} | {v['wall']:.1f} | {1e6 * v['wall'] / v['features']:.1f} |")
        lines.append(f"| {results['scale']:g} | {written:,} | {wall['ingest_cold']:.1f} | "
                     f"{1e6 * wall['ingest_cold'] / max(written, 1):.1f} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _dbt_checks(rows: dict, wall: dict, peak: dict) -> list[tuple[str, float, float]]:
    """The dbt stage's targets, those whose rows the run measured."""
    cold = "run_cold_with_dbt"
    return _checks([
        ("peak RSS of the process tree with dbt ≤ 1.5 GB (GB; every run with dbt)",
         lambda: max(peak[k] for k in WITH_DBT if k in peak) / 1024, 1.5),
        ("cold run with dbt ≤ 2.5 × cold run without", lambda: wall[cold] / wall["run_cold_no_dbt"], 2.5),
        ("unchanged run with dbt ≤ 10 % of its cold", lambda: wall["run_unchanged_with_dbt"] / wall[cold], 0.10),
        ("one dataset changed, with dbt ≤ 40 % of cold", lambda: wall["run_one_changed_with_dbt"] / wall[cold], 0.40),
        ("dbt stage inside the flow (forced full build, dbt's own seconds) ≤ 1.15 × plain `dbt build`",
         lambda: _median(rows["run_forced_dbt"], "dbt_s") / wall["dbt_alone"], 1.15),
    ])


def _checks(candidates: list) -> list[tuple[str, float, float | None]]:
    """(name, value, limit) of each candidate whose rows were measured (``--only`` leaves some out)."""
    out = []
    for name, value, limit in candidates:
        try:
            out.append((name, value(), limit))
        except (KeyError, ValueError):  # a row it needs was not measured (max() of nothing: ValueError)
            pass
    return out


def _scale_out_checks(results: dict, wall: dict) -> list[tuple[str, float, float | None]]:
    """Two Dask workers against one (a target), the DuckLake backend against DuckDB (a ratio, reported)."""
    same = all(results.get("dask_outputs", {}).get("same", {}).values())
    return _checks([
        ("two Dask workers ≤ 0.65 × one (cold `pvdoi ingest --all`, single-threaded workers"
         + (", outputs identical)" if same else ", **outputs differ**)"),
         lambda: wall["ingest_cold_dask_2"] / wall["ingest_cold_dask_1"], 0.65),
        ("DuckLake backend's cold run with dbt / DuckDB backend's (the same run, back to back)",
         lambda: wall["run_cold_with_dbt_lake"] / wall["run_cold_with_dbt"], None),
    ])


def _scale_out_notes(results: dict) -> list[str]:
    """What the scale-out pairs wrote: the two Dask runs' outputs, the two backends' row counts."""
    lines = []
    dask = results.get("dask_outputs")
    if dask:
        same = [d for d, ok in dask["same"].items() if ok]
        versus = dask.get("vs_reference") or {}
        lines.append(f"- Dask: the outputs of one worker and of two are identical for {len(same)} of "
                     f"{len(dask['same'])} datasets (content digests, every repeat)"
                     + (f"; the two workers' against `benchmarks/reference_digests.json`: "
                        f"{sum(v == 'same' for v in versus.values())} of {len(versus)} identical" if versus else "")
                     + ". Each run's wall time includes starting its local cluster.")
    lake = results.get("lake_vs_duckdb")
    if lake:
        lines.append("- DuckLake against DuckDB, rows after the cold run with dbt: " + "; ".join(
            f"`{t}` {a:,} / {b:,}" + ("" if a == b else " (**differ**)") for t, (a, b) in lake.items()) + ".")
    return lines
