"""Build and run the Overture divisions dataflow (``hamilton_nodes.overture``): the one entry the flow and tests use.

The fetch (``division_areas``) is cached like the dataset dataflows: its key is the release's URL and the
installations' bounding box, so a release is fetched once; how the bucket is reached (endpoint, keys) is not
part of the key. The warehouse table is created before anything is fetched, so dbt always finds it: empty
until a first fetch succeeds, and never emptied by a failed fetch (the previous release's rows stay).
"""

from __future__ import annotations

import hashlib
import logging
import time

import pyarrow as pa
from hamilton import driver
from hamilton.caching import fingerprinting

from hamilton_nodes import overture
from pvdoi.caching import _HashSink, register_fingerprints, stores
from pvdoi.pipeline import cache_summary, save_cache_events
from pvdoi.settings import Settings, get_settings
from pvdoi.warehouse import warehouse

log = logging.getLogger("pvdoi.overture")
FINAL_VARS = ["overture_division_areas_table"]


def build_overture_driver(*, cache_path: str | None) -> driver.Driver:
    """A Hamilton driver over the Overture module, with the crash-safe cache when ``cache_path`` is set."""
    builder = driver.Builder().with_modules(overture)
    if cache_path:
        register_fingerprints()
        fingerprinting.hash_value.register(pa.Table)(_fingerprint_arrow)
        metadata_store, result_store = stores(cache_path)
        builder = builder.with_cache(path=cache_path, metadata_store=metadata_store, result_store=result_store,
                                     ignore=["overture_s3"])
    return builder.build()


def s3_access(settings: Settings, *, endpoint: str | None = None) -> overture.S3Access:
    """The S3 access of the settings; ``endpoint`` (``host:port`` or ``http[s]://host:port``) overrides theirs."""
    endpoint = endpoint or settings.overture_s3_endpoint
    use_ssl, url_style = settings.overture_s3_use_ssl, settings.overture_s3_url_style
    if endpoint:
        scheme, _, host = endpoint.rpartition("://")
        endpoint = host.rstrip("/")
        use_ssl = (scheme != "http") if use_ssl is None else use_ssl
    return overture.S3Access(
        region=settings.overture_s3_region, endpoint=endpoint, use_ssl=True if use_ssl is None else use_ssl,
        url_style=url_style or ("path" if endpoint else "vhost"), key_id=settings.overture_s3_key_id,
        secret=settings.overture_s3_secret, timeout_s=settings.http_timeout_s, retries=settings.http_retries)


def ensure_division_areas_table(database_path: str) -> None:
    """Create ``raw_data.overture_division_areas`` (empty) if the warehouse lacks it, so dbt can always build."""
    with warehouse(database_path) as con:
        con.execute(overture.DDL)


def run_overture(database_path: str, *, release: str | None = None, base_url: str | None = None,
                 cache_path: str | None = None, s3_endpoint: str | None = None, settings: Settings | None = None,
                 enable_caching: bool = True) -> dict:
    """Load the Overture country and region areas around the warehouse's installations; return a small summary.

    ``release``, ``base_url`` and ``s3_endpoint`` default to the settings (``PVDOI_OVERTURE_*``). Raises
    :class:`~pvdoi.errors.OvertureSourceError` (naming the URL and release) when the source is unreachable,
    has no files for the release, or returns nothing for a non-empty bounding box.
    """
    settings = settings or get_settings()
    cache_path = (cache_path or settings.cache_path) if enable_caching else None
    inputs = {
        "database_path": database_path,
        "overture_release": release or settings.overture_release,
        "overture_base_url": base_url or settings.overture_base_url,
        "overture_s3": s3_access(settings, endpoint=s3_endpoint),
        "fallback_km": float(settings.overture_fallback_km),
    }
    started = time.perf_counter()
    ensure_division_areas_table(database_path)
    dr = build_overture_driver(cache_path=cache_path)
    result = dr.execute(FINAL_VARS, inputs=inputs)
    summary = dict(result["overture_division_areas_table"])
    summary["cache"] = cache_summary(dr) if cache_path else {"hits": [], "misses": [], "checked": [], "run_id": None}
    if cache_path:
        save_cache_events(dr, cache_path, "overture")
    summary["duration_s"] = round(time.perf_counter() - started, 3)
    log.info("Overture %s: %s, %d division areas (%s); cache hits %s", summary["release"], summary["status"],
             summary["rows"], summary["by_subtype"], summary["cache"]["hits"])
    return summary


def _fingerprint_arrow(obj: pa.Table, *args, **kwargs) -> str:
    """Hash of an Arrow table's schema and values (its IPC stream), at C speed."""
    h = hashlib.blake2b(digest_size=20)
    with pa.ipc.new_stream(pa.PythonFile(_HashSink(h), mode="w"), obj.schema) as writer:
        writer.write_table(obj)
    return fingerprinting._compact_hash(h.digest())
