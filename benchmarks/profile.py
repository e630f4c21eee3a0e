"""Where one dataset's cold ingest spends its time: seconds per Hamilton node, and the rest (cache, start-up).

``python -m benchmarks.profile uk_crowdsourced_pv_2020 --scale 1.0`` serves the benchmark corpus of that
scale (generated if missing) from the local repository server and runs the dataset once, cold, in this
process, with a Hamilton lifecycle hook timing each node.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hamilton.lifecycle import NodeExecutionHook

from pvdoi.testing.reposerver import RepoServer


class NodeTimer(NodeExecutionHook):
    """Wall seconds of every node executed (cache hits do not execute)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def run_before_node_execution(self, *, node_name: str, **kwargs) -> None:
        self._started[node_name] = time.perf_counter()

    def run_after_node_execution(self, *, node_name: str, **kwargs) -> None:
        self.seconds[node_name] = time.perf_counter() - self._started.pop(node_name)


def profile(dataset_id: str, scale: float, out_dir: Path) -> tuple[float, dict[str, float]]:
    """Total seconds of a cold ``run_dataset`` and the seconds of each node."""
    import flows.dataflow as pipeline

    timer = NodeTimer()
    with RepoServer(out_dir / f"corpus-{scale:g}", scale=scale) as server:
        os.environ.update(server.env())
        build = pipeline.build_driver
        pipeline.build_driver = lambda **kw: build(**{**kw, "adapters": (*kw.get("adapters", ()), timer)})
        try:
            work = tempfile.mkdtemp(prefix="pvdoi-profile-", dir=out_dir)
            started = time.perf_counter()
            pipeline.run_dataset(dataset_id, data_dir=f"{work}/data", cache_path=f"{work}/cache")
            total = time.perf_counter() - started
        finally:
            pipeline.build_driver = build
    return total, timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    total, seconds = profile(args.dataset, args.scale, out)
    print(f"{args.dataset} at scale {args.scale:g}: {total:.2f} s cold")
    for node, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {node:<24} {s:6.2f} s  {100 * s / total:4.0f} %")
    rest = total - sum(seconds.values())
    print(f"  {'(cache writes, driver)':<24} {rest:6.2f} s  {100 * rest / total:4.0f} %")


if __name__ == "__main__":
    main()
