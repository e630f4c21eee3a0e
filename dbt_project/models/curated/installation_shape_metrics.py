"""Shape metrics of polygonal installations, computed by a Hamilton dataflow inside dbt.

The dataflow's nodes live in `hamilton_nodes.shape_metrics` (an importable package of the project,
not a file of the dbt project): dbt hands over the polygons as WKB in chunks, Hamilton computes compactness,
orientation and rectangularity with vectorised shapely, and dbt materialises the returned frame.

Kept from one build to the next, keyed by installation (a polygon's metrics depend on its geometry alone): the
pre-hook `delete_changed_installations` (in the model's yml) deletes the rows of changed datasets and of installations
no longer in the union (all rows in a full build), and the model keeps the rest and measures the polygons the table
lacks. (A table, not dbt-duckdb's incremental materialisation: its Python path writes the new rows through another
connection, which the model's transaction cannot read.)
"""


CHUNK_ROWS = 20_000  # polygons per Hamilton run: the metrics are per polygon, and memory stays bounded


def model(dbt, session):
    dbt.config(materialized="table")

    import os

    import pandas as pd
    from hamilton import base, driver

    from hamilton_nodes import shape_metrics

    this = f"{dbt.this}"
    exists = session.execute("select count(*) from duckdb_tables() where schema_name = ? and table_name = ?",
                             [dbt.this.schema, dbt.this.identifier]).fetchone()[0]
    polygons = dbt.ref("int_installations_unioned").filter("geometry_class = 'polygon'")
    if exists:  # the rows the pre-hook left are up to date
        polygons = polygons.filter(f"installation_key not in (select installation_key from {this})")
    installation_polygons = (
        polygons
        .project("installation_key, ST_AsWKB(geometry) as geometry_wkb")
    )
    dataflow = driver.Builder().with_modules(shape_metrics).with_adapters(base.DictResult()).build()

    def metrics(frame):
        return dataflow.execute(["shape_metrics"], inputs={"installation_polygons": frame})["shape_metrics"]

    chunks = [metrics(batch.to_pandas()) for batch in installation_polygons.to_arrow_reader(
        int(os.environ.get("PVDOI_SHAPE_METRICS_CHUNK_ROWS", CHUNK_ROWS)))]
    if exists:
        chunks.insert(0, session.sql(f"select * from {this}").df())
    if not chunks:  # no polygons: still the typed columns
        chunks = [metrics(installation_polygons.limit(0).df())]
    return pd.concat(chunks, ignore_index=True)
