"""What a run shows in the terminal and keeps in its log file.

Every run writes everything (tracebacks included) to ``<data>/logs/<time>-<command>.log``. The terminal gets one
or two lines per expected error, on stderr, without tracebacks or third-party banners unless ``-v``; ``-q`` keeps
errors and the final summary only. On a terminal the log lines print above the live display (rich); piped, they
stay plain lines. GDAL's warnings go to the log file only (the summary counts them per dataset; ``-v`` shows them).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

from pvdoi.features import gdal

STDERR = Console(stderr=True, highlight=False)
_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
_TASK_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | Task run %(task_run_name)r - %(message)s"
_FLOW_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | Flow run %(flow_run_name)r - %(message)s"


@dataclass
class Verbosity:
    """``-q`` (errors and the summary), default, or ``-v`` (everything, tracebacks included)."""

    level: int = 0  # -1 quiet, 0 default, 1 verbose

    @property
    def console_level(self) -> int:
        return {-1: logging.ERROR, 0: logging.INFO, 1: logging.DEBUG}[self.level]


VERBOSITY = Verbosity()


class _Brief(logging.Formatter):
    """The wrapped formatter's line without the traceback (the log file has it)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return self.inner.format(record).split("\nTraceback (most recent call last)")[0]


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record comes (a test runner swaps it and closes the old one)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _not_third_party_noise(record: logging.LogRecord) -> bool:
    """Hamilton's failure banner and its copy of the node's traceback, Prefect's two copies of a failed task's
    exception ("Task run failed with exception", "Finished in state Failed") and its three of rejected flow parameters
    (two ERROR, and the engine's INFO "Finished in state Failed"): the run's own error lines say it all.

    GDAL's warnings neither: the summary counts them per dataset and the log file has them.
    """
    if record.name == "pvdoi.gdal":
        return record.levelno >= logging.ERROR
    if record.name == "prefect.task_runs" and record.levelno >= logging.ERROR:
        return not record.getMessage().startswith(("Task run failed with exception", "Finished in state Failed"))
    if record.name in ("prefect.flows", "prefect.engine"):  # rejected parameters
        return not record.getMessage().startswith(("Parameter validation failed", "Validation of flow parameters",
                                                   'Finished in state Failed("Validation of flow parameters'))
    return not (record.name.startswith("hamilton") and record.levelno >= logging.ERROR)


def _counted_by_the_display(record: logging.LogRecord) -> bool:
    """urllib3's "Retrying ..." lines: the live display's row counts a dataset's retries (printed above the display
    they wrapped, one per try); the log file has each one."""
    return not (record.name == "urllib3.connectionpool" and record.getMessage().startswith("Retrying"))


def configure_logging(data_dir: str, command: str, *, live: bool = False) -> str:
    """Send the run's logs to its log file (everything) and to stderr (brief); returns the log file's path."""
    path = os.path.join(os.path.abspath(data_dir), "logs", f"{time.strftime('%Y%m%d-%H%M%S')}-{command}.log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    formatter = _formatter()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "PrefectConsoleHandler" or getattr(handler, "_pvdoi", False):
            root.removeHandler(handler)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(formatter)
    if live:
        from rich.logging import RichHandler

        to_terminal = RichHandler(console=STDERR, show_path=False, show_time=False, markup=False)
        to_terminal.setFormatter(_Brief(logging.Formatter("%(name)s - %(message)s")))
        to_terminal.setLevel(max(VERBOSITY.console_level, logging.WARNING))
        to_terminal.addFilter(_counted_by_the_display)
    else:
        to_terminal = _Stderr()
        to_terminal.setFormatter(formatter if VERBOSITY.level > 0 else _Brief(formatter))
        to_terminal.setLevel(VERBOSITY.console_level)
    if VERBOSITY.level <= 0:
        to_terminal.addFilter(_not_third_party_noise)
    for handler in (to_file, to_terminal):
        handler._pvdoi = True
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if VERBOSITY.level > 0 else logging.INFO)
    for noisy in ("httpx", "httpcore", "urllib3", "asyncio", "filelock", "hamilton"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if VERBOSITY.level > 0 else logging.WARNING)
    logging.captureWarnings(True)  # GDAL's and the libraries' warnings go to the log, not raw to the terminal
    warnings_logger = logging.getLogger("py.warnings")
    if not any(isinstance(f, gdal.PythonWarnings) for f in warnings_logger.filters):
        warnings_logger.addFilter(gdal.PythonWarnings())  # a file's GDAL warnings at open: counted as the others
    return path


def _formatter() -> logging.Formatter:
    """Prefect's formatter (flow and task run names) when Prefect runs in this process, else a plain one.

    ``pvdoi run`` imports Prefect (which configures logging) before this; ``pvdoi ingest`` never needs it.
    """
    if "prefect" not in sys.modules:
        return logging.Formatter(_FORMAT, datefmt="%H:%M:%S")
    from prefect.logging.formatters import PrefectFormatter

    return PrefectFormatter(_FORMAT, datefmt="%H:%M:%S", task_run_fmt=_TASK_FORMAT, flow_run_fmt=_FLOW_FORMAT)


def manifest_or_exit(path: str):
    """The manifest's datasets, or its error on one line and exit code 2 (for the commands that only read it)."""
    import typer

    from pvdoi.errors import PVDOIError
    from pvdoi.manifest import load_manifest

    try:
        return load_manifest(path).datasets
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None


def error(message: str, *, hint: str | None = None) -> None:
    """One or two lines on stderr: what failed, then what to do next."""
    # escaped: the product's messages start "[dataset 'x', file 'y']", which rich would take for a style and drop
    STDERR.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    if hint:
        STDERR.print(f"  {escape(hint)}", soft_wrap=True)
