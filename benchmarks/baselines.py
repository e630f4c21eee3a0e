"""Raw-conversion baselines, each run as its own process by ``benchmarks.run``.

``python -m benchmarks.baselines {pyogrio,duckdb,dlt} SOURCES_JSON OUT_DIR`` reads the list of source
files (``[[dataset_id, path], ...]``) and prints ``{"features": N, "lost": {...}}`` as its last line.

- pyogrio: ``pyogrio.read_arrow`` → ``pyarrow.parquet.write_table`` per file (single process).
- duckdb: ``CREATE TABLE … AS SELECT * FROM ST_Read(file)`` per file into one DuckDB file.
- dlt: the original project's path: ``geopandas.read_file`` → geometry as WKT → ``dlt`` pipeline into
  DuckDB (a DataFrame per file).
"""

from __future__ import annotations

import json
import os
import sys
import warnings


def _pyogrio(sources, out):
    import pyarrow.parquet as pq
    import pyogrio

    total, lost = 0, {}
    for i, (dataset, path) in enumerate(sources):
        try:
            _, table = pyogrio.read_arrow(path)
            pq.write_table(table, os.path.join(out, f"{i}.parquet"))
            total += table.num_rows
        except Exception as exc:  # counted as lost, as a user of this path would lose it
            lost[f"{dataset}:{os.path.basename(path)}"] = f"{type(exc).__name__}: {exc}"[:200]
    return total, lost


def _duckdb(sources, out):
    from pvdoi.duckdb_ext import connect

    con = connect(os.path.join(out, "st_read.duckdb"))
    total, lost = 0, {}
    for i, (dataset, path) in enumerate(sources):
        try:
            con.execute(f"CREATE TABLE t{i} AS SELECT * FROM ST_Read(?)", [path])
            total += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
        except Exception as exc:  # counted as lost
            lost[f"{dataset}:{os.path.basename(path)}"] = f"{type(exc).__name__}: {exc}"[:200]
    con.close()
    return total, lost


def _dlt(sources, out):
    import dlt
    import geopandas as gpd

    pipeline = dlt.pipeline(pipeline_name="pv_before", destination=dlt.destinations.duckdb(
        os.path.join(out, "dlt.duckdb")), dataset_name="raw", pipelines_dir=os.path.join(out, "dlt_pipelines"))
    total, lost = 0, {}
    for dataset, path in sources:
        try:
            frame = gpd.read_file(path)
            frame["geometry"] = frame.geometry.to_wkt()
            pipeline.run(frame, table_name=dataset, write_disposition="append")
            total += len(frame)
        except Exception as exc:  # counted as lost
            lost[f"{dataset}:{os.path.basename(path)}"] = f"{type(exc).__name__}: {exc}"[:200]
    return total, lost


def main() -> None:
    warnings.filterwarnings("ignore")
    kind, sources_json, out = sys.argv[1:4]
    with open(sources_json, encoding="utf-8") as fh:
        sources = json.load(fh)
    os.makedirs(out, exist_ok=True)
    total, lost = {"pyogrio": _pyogrio, "duckdb": _duckdb, "dlt": _dlt}[kind](sources, out)
    print(json.dumps({"features": total, "lost": lost}))


if __name__ == "__main__":
    main()
