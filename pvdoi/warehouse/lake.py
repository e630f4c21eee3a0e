"""The DuckLake backend: the warehouse as a lake (a catalog database plus Parquet data files), for several writers.

A lake is named by its URI, ``ducklake:sqlite:<catalog file>`` (several processes on one machine) or
``ducklake:postgres:<libpq conninfo>`` (several machines); ``PVDOI_WAREHOUSE_BACKEND=ducklake`` makes it the
warehouse (:meth:`pvdoi.settings.Settings.warehouse_path`). Its data files go to ``PVDOI_LAKE_DATA_PATH`` (a folder or
an ``s3://`` URL), by default ``files/`` beside a SQLite catalog. A connection is an in-memory DuckDB with the lake
attached as ``lake`` and in use, so the warehouse's SQL (``raw_data.doi_pv_features``...) runs unchanged.

There is no file lock: each dataset's load is one DuckLake transaction (one snapshot), and two writers that
commit at once are told by DuckLake (a transaction conflict, or SQLite's "database is locked"); the loser's
transaction is rolled back and :func:`retry_on_conflict` runs it again, with random exponential backoff
(tenacity: already in the environment and made for exactly this, where a hand loop would re-implement jitter and
the give-up rule). DuckLake keeps no indexes, so there is no R-tree; spatial functions work as before.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import duckdb
from tenacity import Retrying, retry_if_exception, retry_if_result, stop_after_attempt, wait_random_exponential

from pvdoi.duckdb_ext import LAKE, catalog_file, connect_lake, is_lake
from pvdoi.errors import WarehouseError

__all__ = ["LAKE", "catalog_file", "commit_message", "connect_lake", "in_lake", "is_conflict", "is_lake",
           "lake_ddl", "lake_warehouse", "retry_conflicted_build", "retry_on_conflict", "rollback"]
log = logging.getLogger("pvdoi.warehouse")
AUTHOR = "pvdoi"
CONFLICT_ATTEMPTS = 8
BUILD_ATTEMPTS = 4


@contextmanager
def lake_warehouse(uri: str, ddl: str):
    """A connection to the lake with the warehouse's schema created (``ddl``: the DuckDB schema's statements; DuckLake
    has no indexes, primary keys or unique constraints, so those are left out). Attached again when another process
    was creating the same new catalog at that moment."""
    con = retry_on_conflict(connect_lake, uri)
    try:
        retry_on_conflict(con.execute, lake_ddl(ddl))
        yield con
    finally:
        con.close()


def lake_ddl(ddl: str) -> str:
    """The DuckDB schema's statements without what DuckLake lacks (indexes, PRIMARY KEY)."""
    statements = [s for s in ddl.split(";") if s.strip() and "CREATE INDEX" not in s.upper()]
    return ";".join(s.replace(" PRIMARY KEY", "") for s in statements) + ";"


def in_lake(con) -> bool:
    """This connection works in the lake (the DuckLake backend)."""
    return con.execute("SELECT current_database()").fetchone()[0] == LAKE


def commit_message(con, message: str, **extra) -> None:
    """Label the open transaction's snapshot (the Prefect flow run id, if any, is added to ``extra``); a no-op outside
    a lake."""
    if not in_lake(con):
        return
    try:
        from prefect.runtime import flow_run

        extra.setdefault("run_id", flow_run.id)
    except ImportError:  # pragma: no cover - Prefect is a dependency; the label is only a label
        pass
    con.execute(f"CALL {LAKE}.set_commit_message(?, ?, extra_info => ?)",
                [AUTHOR, message, json.dumps(extra, default=str)])


def rollback(con) -> None:
    """ROLLBACK the open transaction, if there still is one (a failed DuckLake COMMIT has already ended it)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


def is_conflict(exc: BaseException) -> bool:
    """A concurrent writer got there first: DuckLake's transaction conflict, or its catalog busy (also as the
    WarehouseError a load wraps it in)."""
    return isinstance(exc, (duckdb.Error, WarehouseError)) and _conflict_text(str(exc))


_CONFLICTS = ("conflict", "database is locked", "could not serialize",
              # PostgreSQL: two processes creating a new lake's catalog tables at once
              "duplicate key value", 'relation "ducklake_',
              # two dbt builds at once: both rename their model's __dbt_tmp relation to the model's name
              "another entry with this name already exists", "cannot rename")


def _conflict_text(text: str) -> bool:
    return any(sign in text.lower() for sign in _CONFLICTS)


def retry_conflicted_build(database_path: str, build_once):
    """``build_once()`` (a :class:`pvdoi.transform.DbtBuild`); on a lake, run again whole when it failed on a write
    conflict with another writer (another run's loads: a refused commit; or a dbt build by something that does not
    take the build lock, :func:`pvdoi.warehouse.warehouse_lock`: a model's relation created or renamed by both at
    once), up to ``BUILD_ATTEMPTS`` times with random exponential backoff; the last build's
    result either way. A DuckDB file has one writer: built once."""
    if not is_lake(database_path):
        return build_once()

    def conflicted(build) -> bool:
        texts = (build.reason, *(n.message for n in build.nodes))
        return build.status == "failed" and any(_conflict_text(t or "") or "already exists" in (t or "").lower()
                                                for t in texts)

    retrying = Retrying(retry=retry_if_result(conflicted), stop=stop_after_attempt(BUILD_ATTEMPTS),
                        wait=wait_random_exponential(multiplier=0.5, max=10.0),
                        retry_error_callback=lambda state: state.outcome.result(),
                        before_sleep=lambda state: log.info("dbt build met a write conflict; building again"))
    return retrying(build_once)


def retry_on_conflict(fn, *args, attempts: int = CONFLICT_ATTEMPTS, **kwargs):
    """``fn(*args, **kwargs)``, run again (whole: ``fn`` is one transaction) after a write conflict, up to ``attempts``
    times with random exponential backoff (0.1 s doubling, at most 5 s); other errors and the last conflict raise."""
    retrying = Retrying(retry=retry_if_exception(is_conflict), stop=stop_after_attempt(attempts),
                        wait=wait_random_exponential(multiplier=0.1, max=5.0), reraise=True,
                        before_sleep=lambda state: log.info("write conflict (%s); attempt %d again",
                                                            state.outcome.exception(), state.attempt_number + 1))
    return retrying(fn, *args, **kwargs)



def snapshots(uri: str, *, limit: int | None = None) -> list[dict]:
    """The lake's snapshots, newest first: id, time, author, message, the run id, dataset and rows its load
    recorded (loads by ``pvdoi``; other commits, dbt's among them, have none) and DuckLake's own list of changes."""
    con = connect_lake(uri, read_only=True, extensions=())
    try:
        rows = con.execute(f"SELECT snapshot_id, snapshot_time, author, commit_message, commit_extra_info, changes "
                           f"FROM {LAKE}.snapshots() ORDER BY snapshot_id DESC"
                           + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    finally:
        con.close()
    out = []
    for snapshot, time, author, message, extra, changes in rows:
        info = _json_or_empty(extra)
        out.append({"snapshot": snapshot, "time": time.isoformat(timespec="seconds"), "author": author,
                    "message": message, "run_id": info.get("run_id"), "dataset_id": info.get("dataset_id"),
                    "rows": info.get("rows"), "changes": {k: list(v) for k, v in (changes or {}).items()}})
    return out


def _json_or_empty(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:  # a commit labelled by someone else, not in JSON
        return {}
    return value if isinstance(value, dict) else {}
