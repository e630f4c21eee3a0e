"""What the Prefect UI shows: the run's per-dataset table, progress, and the cross-run status table."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pvdoi.atomic import write_json_atomic

STATUS_KEY = "pv-dataset-status"
STATUS_FILE = "dataset_status.json"


def run_rows(results: dict[str, dict]) -> list[dict]:
    """One row per dataset: status, rows, MB downloaded, checksums verified, cache hits/misses, duration, error."""
    rows = []
    for dataset_id, r in results.items():
        if r.get("status") != "completed":
            rows.append({"dataset": dataset_id, "status": r.get("status", "failed"), "rows_read": None,
                         "rows_written": None, "rows_dropped": None, "mb_downloaded": None,
                         "checksums_verified": None, "cache_hits": None, "cache_misses": None, "duration_s": None,
                         "error": r.get("error")})
            continue
        c = r["counts"]
        rows.append({
            "dataset": dataset_id, "status": "completed", "rows_read": c["read"], "rows_written": c["written"],
            "rows_dropped": c["read"] - c["written"], "mb_downloaded": round(r.get("downloaded_bytes", 0) / 2**20, 2),
            "checksums_verified": sum(1 for f in r["files"] if f.get("checksum")),
            "cache_hits": len(r["cache"]["hits"]), "cache_misses": len(r["cache"]["misses"]),
            "duration_s": r.get("duration_s"), "error": None,
        })
    return rows


def publish_run_table(results: dict[str, dict], failed_message: str | None) -> None:
    """The run's table artifact (and a short markdown summary naming the failures)."""
    create_table_artifact(table=run_rows(results), key="pv-ingest-run", description="Per-dataset results of this run")
    if failed_message:
        create_markdown_artifact(markdown=f"### Failed datasets\n\n{failed_message}", key="pv-ingest-failures",
                                 description="Datasets that failed in this run")


def publish_status(results: dict[str, dict], data_dir: str) -> list[dict]:
    """Update the cross-run status (last status, last success, rows, checksums, cache hits) and publish it."""
    path = os.path.join(data_dir, STATUS_FILE)
    status: dict[str, dict] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            status = json.load(fh)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for dataset_id, r in results.items():
        entry = status.get(dataset_id, {"dataset": dataset_id, "last_success": None, "rows": None,
                                        "source_checksums": None, "cache_hits": None})
        entry["last_status"] = r.get("status")
        entry["last_run"] = now
        entry["last_error"] = r.get("error")
        if r.get("status") == "completed":
            entry.update(last_success=now, rows=r["counts"]["written"],
                         source_checksums=", ".join(f"{f['name']}={f['checksum']}" for f in r["files"]),
                         cache_hits=len(r["cache"]["hits"]))
        status[dataset_id] = entry
    write_json_atomic(path, status)
    table = [status[k] for k in sorted(status)]
    create_table_artifact(table=table, key=STATUS_KEY, description="State of each dataset across runs")
    return table


def run_results_path(data_dir: str, flow_run_id: object) -> str:
    """Where a flow run's per-dataset results are kept (``<data_dir>/flow_runs/<flow run id>.json``)."""
    return os.path.join(data_dir, "flow_runs", f"{flow_run_id}.json")


def write_run_results(results: dict[str, dict], data_dir: str) -> str:
    """Keep this flow run's per-dataset results beside the data: a failed run's state carries none."""
    from prefect.runtime import flow_run

    return write_json_atomic(run_results_path(data_dir, flow_run.id), results)
