"""One live display per run: a row per dataset with its stage and elapsed time, and one row for dbt.

The dataflow reports its stages through a Hamilton lifecycle hook (:class:`StageHook`), the load and dbt tasks
through :func:`stage`; the command line shows :data:`PROGRESS` with rich's ``Live`` on a terminal.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from hamilton.lifecycle import NodeExecutionHook
from rich.table import Table

from pvdoi import events

# the dataflow's nodes, by the stage a person would name
STAGES = {"dataset_spec": "resolve", "published_record": "resolve", "selected_files": "resolve",
          "downloaded_files": "download", "source_files": "extract", "raw_layers": "read",
          "standardised_features": "standardise", "geoparquet_file": "read+standardise+write",
          "dataset_report": "write"}


class RunProgress:
    """Each dataset's stage, when it started, and what it ended with (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, list] = {}
        self._moved: dict[str, dict[str, int]] = {}  # dataset -> bytes downloaded, features read so far

    def moved(self, name: str, kind: str, amount: int) -> None:
        """A :mod:`pvdoi.events` listener: ``name`` downloaded bytes or read features."""
        with self._lock:
            counts = self._moved.setdefault(name, {"bytes": 0, "features": 0})
            counts[kind] = counts.get(kind, 0) + amount

    def __reduce__(self):  # sent to a Dask worker (with a task pickled by value): that process's own PROGRESS
        return _progress, ()

    def stage(self, name: str, stage: str, detail: str = "") -> None:
        with self._lock:
            row = self._rows.setdefault(name, [stage, time.monotonic(), detail, None])
            row[0], row[2] = stage, detail or row[2]

    def done(self, name: str, outcome: str, detail: str = "") -> None:
        with self._lock:
            row = self._rows.setdefault(name, [outcome, time.monotonic(), detail, None])
            row[0], row[2], row[3] = outcome, detail or row[2], time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._moved.clear()

    def _so_far(self, name: str) -> str:
        """What a running dataset has done so far: features read once reading started, else bytes downloaded."""
        counts = self._moved.get(name) or {}
        if counts.get("features"):
            return f"{counts['features']:,} features"
        done = [f"{counts['bytes'] / 1e6:.1f} MB"] if counts.get("bytes") else []
        retries = counts.get("retries", 0)
        return ", ".join(done + ([f"{retries} {'retry' if retries == 1 else 'retries'}"] if retries else []))

    def table(self) -> Table:
        # one line a row at 80 columns, as the summary's: one space between columns, every name whole (the longest
        # dataset id has 40 characters); a long detail (dbt's counts) is cut rather than a name folded
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), show_header=True, header_style="bold")
        now = time.monotonic()
        with self._lock:
            table.add_column("dataset", no_wrap=True, min_width=max(map(len, self._rows), default=7))
            table.add_column("stage", no_wrap=True)
            table.add_column("", justify="right", no_wrap=True, overflow="ellipsis")
            table.add_column("s", justify="right", no_wrap=True)
            for name, (stage, started, detail, ended) in self._rows.items():
                table.add_row(name, stage, detail or self._so_far(name), f"{(ended or now) - started:.0f}")
        return table


PROGRESS = RunProgress()


def _progress() -> RunProgress:
    return PROGRESS


class StageHook(NodeExecutionHook):
    """Tells :data:`PROGRESS` which stage a dataset's dataflow is in."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run_before_node_execution(self, *, node_name: str, **kwargs) -> None:
        if node_name in STAGES:
            PROGRESS.stage(self.name, STAGES[node_name])

    def run_after_node_execution(self, **kwargs) -> None:
        pass


@contextmanager
def live_display(enabled: bool):
    """rich's ``Live`` over :data:`PROGRESS` on stderr while the block runs (nothing when not ``enabled``)."""
    PROGRESS.clear()
    if not enabled:
        yield
        return
    from rich.live import Live

    from flows.console import STDERR

    with events.listening(PROGRESS.moved), \
            Live(get_renderable=PROGRESS.table, console=STDERR, refresh_per_second=4, transient=True):
        yield
