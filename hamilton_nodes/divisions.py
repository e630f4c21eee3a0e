"""The Overture divisions dataflow: country and region areas around the installations, into one Parquet file.

Cached on the release's URL and the installations' bounding box, so a release is fetched once (how the bucket is
reached, ``overture_s3``, is not part of the key). The warehouse is only read here (the installations' extent);
``pvdoi.warehouse.load_division_areas`` loads the file the last node writes.
"""

from __future__ import annotations

import pyarrow as pa
from hamilton.function_modifiers import cache

from pvdoi import divisions
from pvdoi.errors import OvertureSourceError
from pvdoi.warehouse import divisions as stored_divisions


@cache(behavior="recompute")
def installations_bbox(database_path: str, fallback_km: float) -> divisions.Bbox | None:
    """The installations' extent (xmin, ymin, xmax, ymax) widened by the fallback distance, rounded out to 0.1°."""
    return stored_divisions.installations_bbox(database_path, fallback_km)


def division_areas_url(overture_base_url: str, overture_release: str) -> str:
    """The glob of the release's division_area GeoParquet files (S3, another endpoint's bucket, or a local path)."""
    base = overture_base_url.replace("{release}", overture_release)
    url = base if base.endswith(".parquet") or "*" in base else base.rstrip("/") + "/*.parquet"
    if not divisions.RELEASE_PATTERN.fullmatch(overture_release):
        raise OvertureSourceError(f"Overture release {overture_release!r} (URL {url}) is not a release id; "
                                  "release ids look like 2026-06-17.0 (see https://stac.overturemaps.org)")
    return url


def division_areas(division_areas_url: str, installations_bbox: divisions.Bbox | None, overture_release: str,
                   overture_s3: divisions.S3Access) -> pa.Table:
    """The country, dependency and region division areas whose bbox meets the installations' bbox (WKB geometry)."""
    return divisions.read_division_areas(division_areas_url, installations_bbox, overture_release, overture_s3)


def division_area_pieces(division_areas: pa.Table) -> pa.Table:
    """Each area's geometry cut along its longer side until every piece has at most 256 vertices (id, WKB list)."""
    return divisions.area_pieces(division_areas)


@cache(behavior="recompute")
def division_areas_file(division_areas: pa.Table, division_area_pieces: pa.Table, data_dir: str,
                        division_areas_url: str, overture_release: str,
                        installations_bbox: divisions.Bbox | None) -> dict:
    """The areas and their pieces in ``<data_dir>/overture/`` (kept when unchanged): its path, release, URL, bbox,
    rows per subtype and countries."""
    path, written = divisions.write_areas_file(division_areas, division_area_pieces, data_dir,
                                               url=division_areas_url, bbox=installations_bbox)
    subtypes = division_areas.column("subtype").to_pylist()
    return {"release": overture_release, "url": division_areas_url, "bbox": installations_bbox,
            "rows": division_areas.num_rows, "by_subtype": {s: subtypes.count(s) for s in sorted(set(subtypes))},
            "countries": len(set(division_areas.column("country").to_pylist()) - {None}),
            "status": "skipped" if installations_bbox is None else "fetched", "path": path, "written": written}
