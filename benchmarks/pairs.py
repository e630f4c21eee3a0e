"""Scaling-out rows of the benchmark, each an A/B pair measured back to back (the order alternating by repeat):

- cold ``pvdoi ingest --all`` on a temporary local Dask cluster of one single-threaded worker process against two
  (``--dask local:1`` / ``local:2``), their GeoParquet outputs compared by content digest;
- cold ``pvdoi run --all --no-overture`` (with ``dbt build``) on the DuckDB backend against the DuckLake backend
  (a SQLite catalog and its data files under the run's data folder), their tables' row counts compared.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.digest import against_reference, digests

PVDOI_INGEST = ["ingest", "--all", "--json"]
RUN_WITH_DBT = ["run", "--all", "--no-overture"]
COMPARED = ("raw_data.doi_pv_features", "curated.installations", "curated.dataset_summary", "curated.country_summary")


def _in_turn(pair: list, i: int) -> list:
    """The pair in this repeat's order: A first on even repeats, B first on odd ones."""
    return pair if i % 2 == 0 else pair[::-1]


def dask_rows(bench, pvdoi: list[str], results: dict, scale: float, i: int) -> None:
    """Rows ``ingest_cold_dask_1`` and ``ingest_cold_dask_2``; ``results["dask_outputs"]``: per dataset, whether the
    two runs wrote the same content (every repeat), and the two-worker outputs against the reference digests."""
    written, data = {}, {}
    for workers in _in_turn([1, 2], i):
        dirs = bench.dirs(f"dask_{workers}")
        bench.once(f"ingest_cold_dask_{workers}", pvdoi + [*PVDOI_INGEST, "--dask", f"local:{workers}", *dirs])
        written[workers], data[workers] = digests(dirs[1]), dirs[1]
    outputs = results.setdefault("dask_outputs", {"same": {}, "vs_reference": against_reference(data[2], scale)})
    for dataset in sorted(set(written[1]) | set(written[2])):
        same = written[1].get(dataset) is not None and written[1].get(dataset) == written[2].get(dataset)
        outputs["same"][dataset] = outputs["same"].get(dataset, True) and same


def lake_rows(bench, pvdoi: list[str], results: dict, i: int) -> list[str]:
    """Rows ``run_cold_with_dbt`` (DuckDB) and ``run_cold_with_dbt_lake`` (DuckLake, SQLite catalog);
    ``results["lake_vs_duckdb"]``: each compared table's rows in both. The DuckDB run's folder options."""
    duckdb_dirs, lake_dirs = bench.dirs("run_dbt"), bench.dirs("run_dbt_lake")
    pair = [("run_cold_with_dbt", duckdb_dirs, None),
            ("run_cold_with_dbt_lake", lake_dirs, {"PVDOI_WAREHOUSE_BACKEND": "ducklake"})]
    for name, dirs, env in _in_turn(pair, i):
        bench.once(name, pvdoi + [*RUN_WITH_DBT, *dirs], env=env)
    duckdb_rows = _counts(str(Path(duckdb_dirs[1]) / "eo_pv_data.duckdb"))
    lake_rows_ = _counts(f"ducklake:sqlite:{Path(lake_dirs[1]) / 'lake' / 'catalog.sqlite'}")
    results.setdefault("lake_vs_duckdb", {t: [duckdb_rows[t], lake_rows_[t]] for t in COMPARED})
    return duckdb_dirs


def _counts(database: str) -> dict[str, int]:
    from pvdoi.duckdb_ext import connect

    con = connect(database, read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COMPARED}
    finally:
        con.close()
