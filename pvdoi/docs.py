"""The dbt project's documentation site (``dbt docs generate``) for the warehouse, in a folder of the data."""

from __future__ import annotations

import json
import os

from pvdoi import DBT_PROJECT_DIR
from pvdoi.warehouse.connection import require_warehouse
from pvdoi.warehouse.lake import is_lake
from pvdoi.duckdb_ext import install_extensions
from pvdoi.errors import DbtBuildError
from pvdoi.warehouse import warehouse_lock


def generate_docs(database_path: str, out_dir: str, *, dbt_vars: dict | None = None) -> str:
    """``dbt docs generate`` against the warehouse into ``out_dir``; the path of its ``index.html``."""
    from dbt.cli.main import dbtRunner

    from pvdoi.transform import release_dbt_duckdb

    require_warehouse(database_path, DbtBuildError)
    install_extensions(("spatial",))
    out_dir = os.path.abspath(out_dir)
    args = ["docs", "generate", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
            str(DBT_PROJECT_DIR), "--target-path", out_dir, "--log-path", os.path.join(out_dir, "logs"),
            "--vars", json.dumps({**(dbt_vars or {}), "database_path": database_path if is_lake(database_path)
                                                          else os.path.abspath(database_path)})]
    with warehouse_lock(database_path):
        try:
            result = dbtRunner().invoke(args)
        finally:
            release_dbt_duckdb()
    index = os.path.join(out_dir, "index.html")
    if not result.success or not os.path.exists(index):
        raise DbtBuildError(f"dbt docs generate failed for {database_path}: {result.exception or 'see the log'}")
    return index
