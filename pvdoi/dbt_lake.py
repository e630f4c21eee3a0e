"""dbt-duckdb's plugin for the ``lake`` target of ``dbt_project/profiles.yml``: the S3 secret of the lake's data path,
made by the same function from the same settings as the loads' (:func:`pvdoi.duckdb_ext.s3_secret`: each
``PVDOI_LAKE_S3_*``, else its ``PVDOI_S3_*``; without keys, the AWS credential chain).

A profile's ``secrets:`` block cannot do that: it cannot leave out a key that is unset, and a credential chain given
an empty ``KEY_ID`` signs with the empty key.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from pvdoi.duckdb_ext import s3_secret
from pvdoi.settings import get_settings


class Plugin(BasePlugin):
    """Creates the secret on every connection dbt opens, before the lake is attached."""

    def configure_connection(self, conn) -> None:
        settings = get_settings()
        data_path, s3 = settings.lake_data_path or "", settings.s3(lake=True)
        if data_path.startswith("s3://"):
            s3_secret(conn, "pvdoi_lake", data_path.rstrip("/") + "/", s3)
        elif s3.endpoint or s3.key_id:  # the data path a first load recorded in the catalog may be a bucket
            s3_secret(conn, "pvdoi_lake", "s3://", s3)
