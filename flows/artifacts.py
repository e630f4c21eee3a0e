"""What the Prefect UI shows: the run's per-dataset table, progress, and the cross-run status table."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from pvdoi.atomic import write_json_atomic
from pvdoi.results import DatasetResult
from pvdoi.transform import DbtBuild
from pvdoi.upstream import UpstreamCheck

STATUS_KEY = "pv-dataset-status"
STATUS_FILE = "dataset_status.json"
DBT_KEY = "pv-dbt-build"


def publish_results(results: dict[str, DatasetResult], failed_message: str | None, data_dir: str,
                    dbt: dict | None = None, *, upstream: UpstreamCheck | None = None) -> None:
    """Everything a run leaves for people: its table artifacts, the cross-run status (with each dataset's upstream
    check when ``upstream`` is given), its results file."""
    publish_run_table(results, failed_message)
    publish_status(results, data_dir, upstream=upstream)
    write_run_results(results, data_dir, dbt)


class Progress:
    """The run's progress artifact: the share of its datasets finished, sent at most every ``every_s`` seconds and
    always at 100 % (a run of unchanged datasets finishes them all within a second: each update is a request the
    flow waits for)."""

    def __init__(self, total: int, *, every_s: float = 1.0) -> None:
        self.total, self.done, self.every_s = total, 0, every_s
        self.artifact = create_progress_artifact(progress=0.0, key="pv-ingest-progress",
                                                 description="Datasets finished in this run")
        self.sent = time.monotonic()

    def finished(self) -> None:
        """One more dataset finished."""
        self.done += 1
        if self.done >= self.total or time.monotonic() - self.sent >= self.every_s:
            update_progress_artifact(self.artifact, progress=100.0 * self.done / self.total)
            self.sent = time.monotonic()


def run_rows(results: dict[str, DatasetResult]) -> list[dict]:
    """One row per dataset: status, rows, MB downloaded, checksums verified, cache hits/misses, duration, GDAL's
    warnings (in the run's log), error."""
    rows = []
    for dataset_id, r in results.items():
        done = r.ok
        c = r.counts
        rows.append({
            "dataset": dataset_id, "status": r.status, "rows_read": c["read"] if done else None,
            "rows_written": c["written"] if done else None, "rows_dropped": r.dropped if done else None,
            "mb_downloaded": round(r.downloaded_bytes / 2**20, 2) if done else None,
            "checksums_verified": sum(1 for f in r.files if f.get("checksum")) if done else None,
            "cache_hits": len(r.cache.hits) if done else None, "cache_misses": len(r.cache.misses) if done else None,
            "duration_s": r.duration_s if done else None, "gdal_warnings": r.gdal_warnings if done else None,
            "error": r.error,
        })
    return rows


def publish_run_table(results: dict[str, DatasetResult], failed_message: str | None) -> None:
    """The run's table artifact (and a short markdown summary naming the failures)."""
    create_table_artifact(table=run_rows(results), key="pv-ingest-run", description="Per-dataset results of this run")
    if failed_message:
        create_markdown_artifact(markdown=f"### Failed datasets\n\n{failed_message}", key="pv-ingest-failures",
                                 description="Datasets that failed in this run")


def read_status(data_dir: str) -> dict[str, dict]:
    """Each dataset's entry of the cross-run status (``data/dataset_status.json``); empty when there is none yet or it
    cannot be read (for the commands that only show it; :func:`publish_status` keeps its own strict read)."""
    try:
        with open(os.path.join(data_dir, STATUS_FILE), encoding="utf-8") as fh:
            status = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in status.items() if isinstance(v, dict)} if isinstance(status, dict) else {}


def publish_status(results: dict[str, DatasetResult], data_dir: str, *, upstream: UpstreamCheck | None = None
                   ) -> list[dict]:
    """Update the cross-run status (last status, last success, rows, checksums, cache hits, and whether the repository
    has a newer version: the answers of ``upstream``, asked while the run worked) and publish it."""
    path = os.path.join(data_dir, STATUS_FILE)
    status: dict[str, dict] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            status = json.load(fh)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for dataset_id, r in results.items():
        entry = status.get(dataset_id, {"dataset": dataset_id, "last_success": None, "rows": None,
                                        "source_checksums": None, "cache_hits": None})
        entry["licence_warning"] = r.licence_warning if r.ok else entry.get("licence_warning")
        entry["last_status"] = r.status
        entry["last_run"] = now
        entry["last_error"] = r.error
        if r.ok:
            entry.update(last_success=now, rows=r.counts["written"],
                         source_checksums=", ".join(f"{f['name']}={f['checksum']}" for f in r.files),
                         cache_hits=len(r.cache.hits))
        status[dataset_id] = entry
    if upstream is not None:  # one quick request per dataset of the run; "unknown" when unreachable
        last = {d: status[d].get("last_success") for d in results}
        for dataset_id, note in upstream.notes(last).items():
            status[dataset_id]["upstream"] = note
    write_json_atomic(path, status)
    table = [status[k] for k in sorted(status)]
    create_table_artifact(table=table, key=STATUS_KEY, description="State of each dataset across runs")
    return table


def run_results_path(data_dir: str, flow_run_id: object) -> str:
    """Where a flow run's per-dataset results are kept (``<data_dir>/flow_runs/<flow run id>.json``)."""
    return os.path.join(data_dir, "flow_runs", f"{flow_run_id}.json")


def write_run_results(results: dict[str, DatasetResult], data_dir: str, dbt: dict | None = None) -> str:
    """Keep this flow run's per-dataset results and its dbt stage beside the data (a failed run's state carries
    no data)."""
    from prefect.runtime import flow_run

    return write_json_atomic(run_results_path(data_dir, flow_run.id),
                             {"datasets": {d: r.as_dict() for d, r in results.items()}, "dbt": dbt})


def read_run_results(data_dir: str, flow_run_id: object) -> tuple[dict[str, DatasetResult], dict | None] | None:
    """The per-dataset results and the dbt stage that :func:`write_run_results` kept for a flow run, or None."""
    path = run_results_path(data_dir, flow_run_id)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        kept = json.load(fh)
    return {d: DatasetResult.from_dict(r) for d, r in kept["datasets"].items()}, kept.get("dbt")


def publish_dbt_build(build: DbtBuild) -> None:
    """The dbt stage as an artifact: why it built what it built (or skipped), and one row per model and test,
    the failed ones first."""
    counts = ", ".join(f"{n} {k}" for k, n in build.counts().items()) or "no nodes run"
    create_markdown_artifact(key=DBT_KEY, description="What the dbt stage did in this run", markdown=(
        f"### dbt build: {build.status}\n\n{build.reason}\n\n{counts}; {build.seconds:.1f} s"))
    if build.nodes:
        rows = sorted(build.nodes, key=lambda n: (not n.failed, n.kind != "model", n.name))
        create_table_artifact(key=f"{DBT_KEY}-nodes", description="dbt build: one row per model and test",
                              table=[{"node": n.name, "kind": n.kind, "status": n.status, "rows": n.rows_affected,
                                      "seconds": n.seconds, "message": n.message} for n in rows])
