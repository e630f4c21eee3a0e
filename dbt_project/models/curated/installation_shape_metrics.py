"""Shape metrics of polygonal installations, computed by a Hamilton dataflow inside dbt.

The dataflow's nodes live in `hamilton_nodes.shape_metrics` (an importable package of the project,
not a file of the dbt project): dbt hands over the polygons as WKB, Hamilton computes compactness,
orientation and rectangularity with vectorised shapely, and dbt materialises the returned frame.
"""


def model(dbt, session):
    dbt.config(materialized="table")

    from hamilton import base, driver

    from hamilton_nodes import shape_metrics

    installation_polygons = (
        dbt.ref("int_installations_unioned")
        .filter("geometry_class = 'polygon'")
        .project("installation_key, ST_AsWKB(geometry) as geometry_wkb")
        .order("installation_key")
        .df()
    )
    dataflow = driver.Builder().with_modules(shape_metrics).with_adapters(base.DictResult()).build()
    result = dataflow.execute(["shape_metrics"], inputs={"installation_polygons": installation_polygons})
    return result["shape_metrics"]
