"""``curated.installations`` out of the warehouse into a file people can open: GeoParquet, GeoPackage, FlatGeobuf, CSV.

GeoParquet 1.1 is written by geopandas (zstd, a bbox covering column, row groups of 64k rows) with the rows sorted
along a Hilbert curve (DuckDB spatial's ``ST_Hilbert``), so a row group covers a small area and a reader filtering
on the bbox skips most of them. The other formats go through GDAL (pyogrio). Files are written to a temporary name
beside the target and renamed, as every output of the product.
"""

from __future__ import annotations

import os
import tempfile

import geopandas as gpd
import shapely

from pvdoi.atomic import publish
from pvdoi.duckdb_ext import connect, connect_lake, is_lake
from pvdoi.errors import ExportError, WarehouseError
from pvdoi.warehouse.connection import require_warehouse

FORMATS = {"geoparquet": ".parquet", "gpkg": ".gpkg", "fgb": ".fgb", "csv": ".csv"}
DRIVERS = {"gpkg": "GPKG", "fgb": "FlatGeobuf", "csv": "CSV"}
COLUMNS = ("installation_key", "dataset_id", "doi", "license", "feature_uid", "source_installation_id",
           "geometry_type", "area_m2", "best_area_m2", "capacity_mw", "best_capacity_mw", "install_date",
           "install_date_precision", "country_code", "country_name", "region_code", "region_name",
           "mapped_by_n_datasets", "centroid_lon", "centroid_lat")
ROW_GROUP_SIZE = 65_536


def export_installations(database_path: str, output: str, *, fmt: str = "geoparquet",
                         datasets: list[str] | None = None, countries: list[str] | None = None,
                         at: int | None = None) -> int:
    """Write the selected installations to ``output`` in ``fmt`` (from a lake as it was at snapshot ``at`` when
    given); the number of rows written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if at is not None and not is_lake(database_path):
        raise ExportError(f"--at {at} reads a DuckLake snapshot; {database_path} is a DuckDB file")
    frame = _installations(database_path, datasets, countries, at)
    if frame.empty:
        raise ExportError(f"no installations match datasets={datasets or 'all'} countries={countries or 'all'} "
                          f"in {database_path}")
    folder = os.path.dirname(os.path.abspath(output)) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=FORMATS[fmt], dir=folder)
    os.close(fd)
    os.unlink(tmp)  # GDAL creates the file itself (a GeoPackage must not pre-exist)
    try:
        if fmt == "geoparquet":
            frame.to_parquet(tmp, schema_version="1.1.0", write_covering_bbox=True, compression="zstd",
                             row_group_size=ROW_GROUP_SIZE, index=False)
        else:
            import pyogrio

            options = {"GEOMETRY": "AS_WKT"} if fmt == "csv" else {}
            pyogrio.write_dataframe(frame, tmp, driver=DRIVERS[fmt], layer="installations", **options)
        publish(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(frame)


def _installations(database_path: str, datasets: list[str] | None, countries: list[str] | None,
                   at: int | None = None) -> gpd.GeoDataFrame:
    """The selected rows of ``curated.installations`` with each dataset's licence, along a Hilbert curve."""
    require_warehouse(database_path, ExportError)
    where, params = [], []
    if datasets:
        where.append(f"i.dataset_id IN ({', '.join('?' for _ in datasets)})")
        params += list(datasets)
    if countries:
        where.append(f"upper(i.country_code) IN ({', '.join('?' for _ in countries)})")
        params += [c.upper() for c in countries]
    columns = ", ".join("d.license" if c == "license" else f"i.{c}" for c in COLUMNS)
    sql = f"""
        SELECT {columns}, ST_AsWKB(i.geometry) AS wkb
        FROM curated.installations i LEFT JOIN raw_data.datasets d USING (dataset_id)
        {'WHERE ' + ' AND '.join(where) if where else ''}
        ORDER BY ST_Hilbert(i.geometry, ST_Extent(ST_MakeEnvelope(-180, -90, 180, 90))), i.installation_key"""
    con = connect(database_path, read_only=True) if at is None else connect_lake(database_path, snapshot=at)
    try:
        table = con.execute(sql, params).fetch_arrow_table()
    except Exception as exc:  # a warehouse without the curated models, a locked file
        raise WarehouseError(f"cannot read curated.installations from {database_path}: {exc}; has `pvdoi run` "
                             "built it (dbt)?") from None
    finally:
        con.close()
    frame = table.drop_columns(["wkb"]).to_pandas()
    geometry = shapely.from_wkb(table.column("wkb").to_numpy(zero_copy_only=False))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")
