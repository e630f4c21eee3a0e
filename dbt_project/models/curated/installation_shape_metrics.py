"""Shape metrics of polygonal installations, computed by a Hamilton dataflow inside dbt.

The dataflow's nodes live in `hamilton_nodes.shape_metrics` (an importable package of the project,
not a file of the dbt project): dbt hands over the polygons as WKB in chunks, Hamilton computes compactness,
orientation and rectangularity with vectorised shapely, and dbt materialises the returned frame.
"""


CHUNK_ROWS = 50_000  # polygons per Hamilton run: the metrics are per polygon, and memory stays bounded


def model(dbt, session):
    dbt.config(materialized="table")

    import os

    import pandas as pd
    from hamilton import base, driver

    from hamilton_nodes import shape_metrics

    installation_polygons = (
        dbt.ref("int_installations_unioned")
        .filter("geometry_class = 'polygon'")
        .project("installation_key, ST_AsWKB(geometry) as geometry_wkb")
        .order("installation_key")
    )
    dataflow = driver.Builder().with_modules(shape_metrics).with_adapters(base.DictResult()).build()

    def metrics(frame):
        return dataflow.execute(["shape_metrics"], inputs={"installation_polygons": frame})["shape_metrics"]

    chunks = [metrics(batch.to_pandas()) for batch in installation_polygons.to_arrow_reader(
        int(os.environ.get("PVDOI_SHAPE_METRICS_CHUNK_ROWS", CHUNK_ROWS)))]
    if not chunks:  # no polygons: still the typed columns
        chunks = [metrics(installation_polygons.limit(0).df())]
    return pd.concat(chunks, ignore_index=True)
