"""``dbt build`` of the warehouse in this process (dbt's own runner and threads), its per-node results, and a record of
what each successful build was built from, so an unchanged warehouse is not built again.

What a build is a function of: each dataset's rows in ``raw_data`` (its catalog entry's GeoParquet SHA-256 and load
time, and its row count, which catches rows added or deleted by hand), the Overture areas (release, URL, bbox, rows),
the dbt project's files, and the vars. Each successful build appends that record to ``raw_data.dbt_builds``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pvdoi import DBT_PROJECT_DIR, PROJECT_ROOT
from pvdoi.duckdb_ext import NO_VACUUM, connect
from pvdoi.manifest import load_manifest

log = logging.getLogger("pvdoi.dbt")
BUILDS = "raw_data.dbt_builds"
_PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")
_DBT_SCHEMAS = ("staging", "prepared", "curated")
CHANGED_ENV = "PVDOI_DBT_CHANGED_DATASETS"  # macro changed_datasets (dbt_project/macros/incremental.sql)
GENERIC_STAGING = "stg_doi__installations"  # every dataset without a dbt_model of its own (macro stg_installations)
CATALOG_TESTS = "source:raw_data.datasets"  # selected in every partial build, for its tests


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's outcome: a model, a test, a unit test or a seed."""

    name: str
    kind: str
    status: str
    seconds: float
    rows_affected: int | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("error", "fail", "runtime error")


@dataclass(frozen=True)
class DbtBuild:
    """What the dbt stage did: ``built`` (all or ``selected``), ``skipped`` (nothing changed) or ``failed``."""

    status: str
    reason: str
    nodes: tuple[NodeResult, ...] = ()
    seconds: float = 0.0
    selected: tuple[str, ...] = ()
    inputs: dict = field(default_factory=dict)

    @property
    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.failed]

    def counts(self) -> dict[str, int]:
        """Nodes by ``kind status`` (``model success``, ``test pass``, ``test fail``...)."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[f"{n.kind} {n.status}"] = out.get(f"{n.kind} {n.status}", 0) + 1
        return dict(sorted(out.items()))


def dbt_vars(manifest_path: str | Path) -> dict:
    """The vars dbt reads the datasets from: ``pv_datasets``, each dataset's id, declared attributes, dbt_model and
    expected geometry types."""
    return {"pv_datasets": [{"id": d.id, "attributes": [a.dbt_var() for a in d.attributes], "dbt_model": d.dbt_model,
                             "geometry_types": d.geometry_types} for d in load_manifest(manifest_path).datasets]}


def project_hash(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A hash of the dbt project's own files (models, macros, tests, project and profile)."""
    h = hashlib.sha256()
    files = [p for entry in _PROJECT_FILES for p in sorted((project_dir / entry).rglob("*"))
             if p.is_file()]
    files += [project_dir / entry for entry in _PROJECT_FILES if (project_dir / entry).is_file()]
    for path in sorted(set(files)):
        h.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build_inputs(database_path: str, dbt_vars: dict) -> dict:
    """What a build of the warehouse now would be built from (see the module's docstring)."""
    con = connect(database_path, read_only=True, extensions=())
    try:
        datasets = con.execute("""
            SELECT dataset_id, d.geoparquet_sha256, f.rows, d.last_loaded_at::VARCHAR
            FROM (SELECT dataset_id, count(*) AS rows FROM raw_data.doi_pv_features GROUP BY 1) f
            LEFT JOIN raw_data.datasets d USING (dataset_id) ORDER BY 1""").fetchall()
        overture = con.execute("""
            SELECT release, source_url, fetch_bbox, count(*) FROM raw_data.overture_division_areas
            GROUP BY ALL ORDER BY ALL""").fetchall()
    finally:
        con.close()
    return {"datasets": {d: list(rest) for d, *rest in datasets}, "overture": [list(r) for r in overture],
            "project": project_hash(), "vars": dbt_vars}


def plan_build(database_path: str, inputs: dict, *, force: bool = False) -> tuple[str, list[str] | None, list | None]:
    """Whether and what to build, with why: ``("skip", None, None)``, a full build ``(why, None, None)`` or a partial
    one ``(why, selectors, changed datasets)``; the incremental models update the changed datasets' rows only (all
    of them when the list is None: the Overture areas changed)."""
    last = None if force else _last_build(database_path)
    if force:
        return "forced: every model and test", None, None
    if last is None:
        return "no earlier build recorded: every model and test", None, None
    previous, relations, relations_now = last
    if relations != relations_now:
        return "models missing from the warehouse since the last build: every model and test", None, None
    if previous == inputs:
        return "skip", None, None
    if previous.get("project") != inputs["project"] or previous.get("vars") != inputs["vars"]:
        return "the dbt project or its vars changed: every model and test", None, None
    own_models = {d["id"]: d["dbt_model"] for d in inputs["vars"].get("pv_datasets", []) if d.get("dbt_model")}
    changed = sorted(d for d in {*previous["datasets"], *inputs["datasets"]}
                     if previous["datasets"].get(d) != inputs["datasets"].get(d))
    selectors = sorted({f"{own_models.get(d, GENERIC_STAGING)}+" for d in changed if d in inputs["datasets"]})
    if set(previous["datasets"]) - set(inputs["datasets"]):
        selectors.append("int_installations_unioned+")  # a dataset left: the union and what follows
    if previous.get("overture") != inputs["overture"]:
        selectors.append("source:raw_data.overture_division_areas+")  # its tests, its staging and what follows
        changed = None  # every installation's country and region again
    selectors.append(CATALOG_TESTS)  # not the raw rows' tests: the union (built first) has them, on the same rows
    return "changed: " + " ".join(selectors), selectors, changed


def run_build(database_path: str, target_dir: str, *, dbt_vars: dict, select: list[str] | None = None,
              changed: list[str] | None = None, threads: int | None = None, runner=None,
              on_node: Callable[[int], None] | None = None) -> DbtBuild:
    """``dbt build`` in this process: everything with ``--full-refresh`` (the incremental models rebuilt whole), or
    only ``select``, where the incremental models update the ``changed`` datasets' rows (all rows when None), the
    tests whose ``where`` names ``__changed_datasets__`` read those rows only (dbt_project/README.md), and the unit
    tests are left out (they test the SQL, unchanged since the last build: a changed project is built whole). Its
    node results (raises nothing for failed tests: they are in the result). ``runner`` is dbt's ``dbtRunner()``
    unless another with its ``invoke(args)`` is given (prefect-dbt's, for a Prefect task per node). ``on_node`` is
    told how many nodes have finished."""
    from dbt.cli.main import dbtRunner

    finished = 0

    def event(message) -> None:
        nonlocal finished
        if on_node and message.info.name == "NodeFinished":
            finished += 1
            on_node(finished)

    args = ["build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", target_dir, "--log-path", str(Path(target_dir) / "logs"), "--quiet",
            "--vars", json.dumps({**dbt_vars, "database_path": database_path})]
    args += ["--threads", str(threads)] if threads else []
    args += ["--select", *select, "--exclude-resource-type", "unit_test"] if select else ["--full-refresh"]
    release_freed_memory()
    started = time.perf_counter()
    # the changed datasets not as a var: with the same vars every build, dbt keeps the last parse (partial parsing)
    os.environ[CHANGED_ENV] = json.dumps(changed) if select and changed is not None else ""
    try:
        result = (runner or dbtRunner(callbacks=[event])).invoke(args)
    finally:
        os.environ.pop(CHANGED_ENV, None)
        release_dbt_duckdb()
    seconds = round(time.perf_counter() - started, 3)
    if result.exception is not None and result.result is None:
        return DbtBuild("failed", f"dbt could not run: {result.exception}", seconds=seconds)
    nodes = tuple(_node(r) for r in (getattr(result.result, "results", None) or []))
    failed = not result.success or any(n.failed for n in nodes)
    return DbtBuild("failed" if failed else "built", "", nodes, seconds, tuple(select or ()))


def release_freed_memory() -> None:
    """Hand the memory this process freed (the ingest's frames and Arrow buffers) back to the system before dbt runs
    in it: glibc and Arrow's pool keep freed pages for reuse (about 80 MB of the flow's peak at scale 1)."""
    import ctypes
    import gc

    import pyarrow

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def record_build(database_path: str, build: DbtBuild) -> None:
    """Remember what a successful build was built from (and how many relations it left), for the next run's plan."""
    con = connect(database_path, extensions=())
    try:
        con.execute(f"{NO_VACUUM}; CREATE TABLE IF NOT EXISTS {BUILDS} (built_at TIMESTAMP, inputs JSON, relations "
                    "INTEGER, nodes INTEGER, seconds DOUBLE, selected VARCHAR)")  # its checkpoint: not the build's vacuum
        con.execute(f"INSERT INTO {BUILDS} VALUES (?, ?, ?, ?, ?, ?)",
                    [datetime.now(timezone.utc).replace(tzinfo=None), json.dumps(build.inputs),
                     _relations_of(con), len(build.nodes), build.seconds, " ".join(build.selected) or None])
    finally:
        con.close()


def release_dbt_duckdb() -> None:
    """Close the database dbt-duckdb keeps open in this process after an in-process invoke."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()
    DuckDBConnectionManager.close_all_connections()


def _node(r) -> NodeResult:
    node = r.node
    kind = getattr(node, "resource_type", "node")
    rows = (getattr(r, "adapter_response", None) or {}).get("rows_affected")
    message = r.message if str(r.status) in ("error", "fail", "warn", "runtime error") else None
    return NodeResult(node.name, str(getattr(kind, "value", kind)), str(getattr(r.status, "value", r.status)),
                      round(float(r.execution_time or 0.0), 3), rows if isinstance(rows, int) and rows >= 0 else None,
                      message)


def _last_build(database_path: str) -> tuple[dict, int, int] | None:
    """The last recorded build's inputs and relation count, and the relations there are now (one connection)."""
    con = connect(database_path, read_only=True, extensions=())
    try:
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw_data' "
                             "AND table_name = 'dbt_builds'").fetchone()[0]
        row = exists and con.execute(f"SELECT inputs, relations FROM {BUILDS} ORDER BY built_at DESC").fetchone()
        return (json.loads(row[0]), row[1], _relations_of(con)) if row else None
    finally:
        con.close()


def _relations_of(con) -> int:
    return con.execute("SELECT (SELECT count(*) FROM duckdb_tables() WHERE list_contains($s, schema_name)) + "
                       "(SELECT count(*) FROM duckdb_views() WHERE list_contains($s, schema_name))",
                       {"s": list(_DBT_SCHEMAS)}).fetchone()[0]


if __name__ == "__main__":  # python -m pvdoi.transform --vars [MANIFEST]: the vars for dbt run by hand
    from pvdoi.settings import get_settings

    if sys.argv[1:2] != ["--vars"] or len(sys.argv) > 3:
        sys.exit("usage: python -m pvdoi.transform --vars [MANIFEST]  (default: PVDOI_MANIFEST_PATH or doi_manifest.json)")
    print(json.dumps(dbt_vars(sys.argv[2] if len(sys.argv) == 3 else get_settings().manifest_path)))
