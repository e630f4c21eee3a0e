"""Introspection of the Hamilton cache for ``pvdoi cache`` and ``pvdoi visualize``."""

from __future__ import annotations

import json
import os
import shutil

from hamilton.caching.cache_key import decode_key

from pvdoi.caching import WalSQLiteMetadataStore
from flows.dataflow import build_driver
from flows.fanout import LAST_RUN_FILE


def last_run(cache_path: str) -> dict:
    """Per dataset: the last run's status, run id, hits and misses."""
    path = os.path.join(cache_path, LAST_RUN_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def run_keys(cache_path: str, run_id: str) -> list[dict]:
    """The cache keys of one run, decoded (node, code version, dependencies' data versions)."""
    store = WalSQLiteMetadataStore(cache_path)
    rows = []
    for entry in store.get_run(run_id):
        decoded = decode_key(entry["cache_key"])
        rows.append({"node": entry["node_name"], "data_version": entry["data_version"],
                     "code_version": decoded.get("code_version"),
                     "dependencies": decoded.get("dependencies_data_versions", {})})
    return sorted(rows, key=lambda r: r["node"])


def run_logs(cache_path: str, dataset_id: str, run_id: str) -> list[dict]:
    """The cache events of the dataset's run ``run_id`` (kept for its last run only)."""
    path = os.path.join(cache_path, "run_logs", f"{dataset_id}.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        events = [json.loads(line) for line in fh if line.strip()]
    return [e for e in events if e.get("run_id") == run_id]


def clear(cache_path: str) -> bool:
    """Delete the cache directory (only safe while no run is alive); whether there was one."""
    if not os.path.isdir(cache_path):
        return False
    shutil.rmtree(cache_path)
    return True


def visualize(output: str, *, cache_path: str | None = None, dataset_id: str | None = None) -> list[str]:
    """Render the dataflow to SVG/PNG, nodes coloured by the dataset's last cached run (DOT text without Graphviz)."""
    status = {}
    if cache_path and dataset_id:
        cache = (last_run(cache_path).get(dataset_id) or {}).get("cache") or {}
        status = {n: kind for kind in ("hits", "misses", "checked") for n in cache.get(kind, [])}
    colours = {"hits": "#b7e4c7", "misses": "#ffd6a5", "checked": "#cfe2ff"}
    legends = {"hits": "cache hit", "misses": "executed (miss)", "checked": "always re-checked"}

    def style(*, node, node_class):
        kind = status.get(node.name)
        if kind is None:
            return {}, node_class, None
        return {"style": "filled", "fillcolor": colours[kind]}, node_class, legends[kind]

    dr = build_driver(cache_path=None)
    base, ext = os.path.splitext(output)
    fmt = ext.lstrip(".") or "svg"
    dot = dr.display_all_functions(custom_style_function=style, render_kwargs={"format": fmt, "view": False})
    with open(base + ".dot", "w", encoding="utf-8") as fh:
        fh.write(dot.source)
    if shutil.which("dot") is None:
        return [base + ".dot"]
    dot.format = fmt
    return [base + ".dot", dot.render(base, cleanup=True)]
