"""Benchmark the product against raw-conversion baselines, side by side in one run; write BENCHMARKS.md.

``python -m benchmarks.run --scale 1.0 --repeat 3`` (20 to 40 minutes at scale 1.0 on 2 cores; ``--skip-dbt
--repeat 1 --scales ""`` for a five-minute look; ``--only dask,lake`` for some groups of rows: the baselines always
run, they are what the rows are compared to).
Every measurement is a separate process timed by wall clock, with the peak RSS of its whole process
tree sampled every 50 ms; the local repository server runs in this process (it stands for the
network). Ratios are to the single-process pyogrio read+write baseline of the same run. The runs' folders are
removed at the end (their logs stay); the generated corpus stays for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil

from benchmarks.digest import against_reference
from benchmarks.pairs import dask_rows, lake_rows
from pvdoi import DBT_PROJECT_DIR, DEFAULT_MANIFEST, PROJECT_ROOT
from pvdoi.archive import extract_archive, is_archive
from pvdoi.manifest import load_manifest
from pvdoi.testing.reposerver import RepoServer
from pvdoi.transform import dbt_vars

PVDOI = [sys.executable, "-m", "flows.cli"]
CHANGED = ("global_pv_inventory_sent2_spot_2021", "cv_polygons.geojson")
# groups of rows (--only); the baselines always run. dask: one Dask worker against two (cold ingest); lake: the
# DuckLake backend's cold run with dbt against DuckDB's (benchmarks/pairs.py)
GROUPS = ("ingest", "run", "dbt", "dask", "lake", "scaling")


def measure(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MB) of the process tree, exit code and stdout."""
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
        peak = 0
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - started
    return {"wall": wall, "peak_mb": peak / 2**20, "code": proc.returncode, "stdout": log.read_text()}


def sources(corpus: Path, work: Path) -> list[list[str]]:
    """The files the product reads, by the manifest's filters (archives extracted, untimed)."""
    result = []
    for spec in load_manifest(DEFAULT_MANIFEST).datasets:
        for path in sorted((corpus / spec.id).iterdir()):
            if not spec.files.matches(path.name):
                continue
            if is_archive(path.name):
                dest = work / "extracted" / spec.id
                members = extract_archive(str(path), str(dest), max_bytes=2**34, max_ratio=1000)
                files = [dest / m for m in members]
            else:
                files = [path]
            wanted = spec.read.name_filter()
            result += [[spec.id, str(f)] for f in files if wanted.matches(f.name)]
    return result


class Bench:
    def __init__(self, root: Path, server: RepoServer, repeat: int):
        self.root, self.server, self.repeat, self.rows = root, server, repeat, {}
        self.env = {**os.environ, **server.env(), "PREFECT_HOME": str(root / "prefect_home"),
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DBT_USE_COLORS": "false"}
        self.n = 0

    def once(self, name: str, cmd: list[str], env: dict | None = None) -> dict:
        self.n += 1
        result = measure(cmd, {**self.env, **(env or {})}, self.root / f"{self.n:03d}-{name}.log")
        if result["code"] != 0 and not name.startswith("baseline"):
            print(result["stdout"][-3000:])
            raise SystemExit(f"{name} failed with exit code {result['code']}")
        print(f"  {name}: {result['wall']:.1f} s, {result['peak_mb']:.0f} MB", flush=True)
        self.rows.setdefault(name, []).append(result)
        return result

    def clean(self) -> None:
        """Remove the runs' folders (GBs of downloads, outputs and warehouses at scale 1); keep their logs."""
        for path in self.root.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    def dirs(self, tag: str) -> list[str]:
        base = self.root / tag
        shutil.rmtree(base, ignore_errors=True)
        return ["--data-dir", str(base / "data"), "--cache-path", str(base / "cache")]


def run_all(scale: float, repeat: int, out_dir: Path, scales: list[float], *, groups=GROUPS) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / f"corpus-{scale:g}"
    results: dict = {"scale": scale, "repeat": repeat, "rows": {}}
    with RepoServer(corpus, scale=scale) as server:
        bench = Bench(Path(tempfile.mkdtemp(prefix="pvdoi-bench-", dir=out_dir)), server, repeat)
        src = sources(corpus, bench.root)
        (bench.root / "sources.json").write_text(json.dumps(src))
        for _ in range(repeat):
            for kind in ("pyogrio", "duckdb", "dlt"):
                bench.once(f"baseline_{kind}", [sys.executable, "-m", "benchmarks.baselines", kind,
                                                str(bench.root / "sources.json"), str(bench.root / kind)])
        for i in range(repeat if "dask" in groups else 0):  # before any file of the corpus is changed
            dask_rows(bench, PVDOI, results, scale, i)
        if "ingest" in groups:
            _ingest_rows(bench, server, corpus, results, scale)
        for _ in range(repeat if "run" in groups else 0):
            d = bench.dirs("run")
            bench.once("run_cold_no_dbt", PVDOI + ["run", "--all", "--no-dbt", *d])
            bench.once("run_unchanged_no_dbt", PVDOI + ["run", "--all", "--no-dbt", *d])
        for i in range(repeat if {"dbt", "lake"} & set(groups) else 0):
            _dbt_rows(bench, server, corpus, i, results, full="dbt" in groups, lake="lake" in groups)
        results["rows"] = bench.rows
        bench.clean()
        last = {k: _last_json(bench.rows[k][0]["stdout"]) for k in ("baseline_pyogrio", "baseline_duckdb",
                                                                   "baseline_dlt")}
        results["baseline_lost"] = {k: v.get("lost", v.get("error")) for k, v in last.items()}
        results["baseline_features"] = {k: v.get("features", 0) for k, v in last.items()}
        results["features"] = json.loads(bench.rows["baseline_pyogrio"][0]["stdout"].strip().splitlines()[-1])[
            "features"]
    for other in scales if "scaling" in groups else ():
        if other == scale:
            continue
        with RepoServer(out_dir / f"corpus-{other:g}", scale=other) as server:
            bench = Bench(Path(tempfile.mkdtemp(prefix="pvdoi-bench-", dir=out_dir)), server, repeat)
            for _ in range(repeat):
                bench.once("ingest_cold", PVDOI + ["ingest", "--all", "--json", *bench.dirs("ingest")])
            bench.clean()
            counts = json.loads(bench.rows["ingest_cold"][0]["stdout"][
                                bench.rows["ingest_cold"][0]["stdout"].index("{"):])
            results.setdefault("scaling", {})[other] = {
                "wall": statistics.median(r["wall"] for r in bench.rows["ingest_cold"]),
                "features": sum(r["counts"]["read"] for r in counts.values())}
    return results


def _ingest_rows(bench: Bench, server, corpus: Path, results: dict, scale: float) -> None:
    """Cold and unchanged ``pvdoi ingest --all``, then one file of one dataset changed (repeatedly)."""
    for _ in range(bench.repeat):
        d = bench.dirs("ingest")
        cold = bench.once("ingest_cold", PVDOI + ["ingest", "--all", "--json", *d])
        results.setdefault("ingest_reports", json.loads(cold["stdout"][cold["stdout"].index("{"):]))
        results.setdefault("outputs_vs_reference", against_reference(d[1], scale))
        bench.once("ingest_unchanged", PVDOI + ["ingest", "--all", "--json", *d])
    for i in range(bench.repeat):
        dataset, name = CHANGED
        doc = json.loads((corpus / dataset / name).read_bytes())
        doc["features"] = doc["features"][: len(doc["features"]) - 1 - i]
        server.replace_file(dataset, name, json.dumps(doc).encode())
        bench.once("ingest_one_changed", PVDOI + ["ingest", "--all", "--json", *d])


def _last_json(stdout: str) -> dict:
    """The JSON a baseline printed last, or what went wrong (dlt is an extra: ``pip install -e '.[bench]'``)."""
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"no result (printed {stdout.strip()[-200:]!r})"}


def _dbt_rows(bench: Bench, server, corpus: Path, i: int, results: dict, *, full: bool = True,
              lake: bool = False) -> None:
    """Cold (and with ``lake`` the DuckLake backend's cold, back to back), then with ``full`` unchanged and
    one-changed runs with dbt, a forced dbt build, and plain `dbt build` on that warehouse.

    Overture is fetched from S3 on the internet: not here (tests/test_overture.py covers it on loopback).
    """
    if lake:
        d = lake_rows(bench, PVDOI, results, i)
    else:
        d = bench.dirs("run_dbt")
        bench.once("run_cold_with_dbt", PVDOI + ["run", "--all", "--no-overture", *d])
    if not full:
        return
    bench.once("run_unchanged_with_dbt", PVDOI + ["run", "--all", "--no-overture", *d])
    dataset, name = CHANGED
    doc = json.loads((corpus / dataset / name).read_bytes())
    doc["features"] = doc["features"][: len(doc["features"]) - 10 - i]
    server.replace_file(dataset, name, json.dumps(doc).encode())
    bench.once("run_one_changed_with_dbt", PVDOI + ["run", "--all", "--no-overture", *d])
    bench.once("run_forced_dbt", PVDOI + ["run", "--all", "--no-overture", "--force-dbt", *d])
    database = str(Path(d[1]) / "eo_pv_data.duckdb")
    con = duckdb.connect(database, read_only=True)
    bench.rows["run_forced_dbt"][-1]["dbt_s"] = con.execute(
        "SELECT seconds FROM raw_data.dbt_builds ORDER BY built_at DESC LIMIT 1").fetchone()[0]
    con.close()
    dbt = str(Path(sys.executable).parent / "dbt")
    bench.once("dbt_alone", [dbt, "build", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                             str(DBT_PROJECT_DIR), "--target-path", str(Path(d[1]) / "dbt_alone"),
                             "--vars", json.dumps({**dbt_vars(DEFAULT_MANIFEST), "database_path": database})])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scales", default="0.25,0.5", help="extra scales for the cold-ingest scaling rows")
    parser.add_argument("--out", default="benchmarks/out")
    parser.add_argument("--report", default="BENCHMARKS.md")
    parser.add_argument("--skip-dbt", action="store_true", help="leave out the runs with dbt build (quick look)")
    parser.add_argument("--only", help=f"comma-separated groups of rows to run, of {','.join(GROUPS)} "
                                       "(default: all; the baselines always run)")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",") if s]
    groups = [g for g in (args.only.split(",") if args.only else GROUPS) if g and not (args.skip_dbt and g == "dbt")]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    results = run_all(args.scale, args.repeat, Path(args.out), scales, groups=groups)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1, default=str))
    from benchmarks.report import write_report

    command = " ".join(["python -m benchmarks.run", *sys.argv[1:]])
    write_report(results, Path(args.report), command=command, machine=_machine())
    print(f"wrote {args.report}")


def _machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
            f"({platform.processor() or platform.machine()}), {mem:.0f} GiB RAM")


if __name__ == "__main__":
    main()
