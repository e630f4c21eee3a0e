"""``pvdoi run`` and ``pvdoi demo``: the flow in this process on a temporary Prefect API, shown live, summarised."""

from __future__ import annotations

import importlib
import os
import sys

from flows.console import VERBOSITY, configure_logging, error
from flows.progress import live_display
from flows.summary import print_summary
from pvdoi.errors import PVDOIError
from pvdoi.settings import get_settings


def run_flow(datasets: list[str] | None, *, max_mb: float | None, no_cache: bool, data_dir: str | None,
             **params) -> bool:
    """Run the Prefect flow with ``params``, print its summary (datasets, dbt, log file); whether it failed."""
    from flows.prefect_api import prefect_api  # before anything imports Prefect: it launches the server first

    settings = get_settings()
    data_dir = os.path.abspath(data_dir or settings.data_dir)
    params.update(datasets=datasets or None, use_cache=not no_cache, data_dir=data_dir,
                  max_mb=max_mb if max_mb is not None else settings.max_mb)
    _prefect_home()
    live = sys.stderr.isatty() and VERBOSITY.level == 0
    log_path = None

    def meanwhile() -> None:  # while the temporary server boots: the flow's imports, then the logs (Prefect's first)
        nonlocal log_path
        importlib.import_module("flows.ingest_flow")
        importlib.import_module("fastapi.encoders")  # Prefect's, when it creates the flow run (0.2 s)
        log_path = configure_logging(data_dir, "run", live=live)

    try:
        with prefect_api(meanwhile=meanwhile):
            from flows.ingest_flow import pv_doi_ingest

            with live_display(live):
                state = pv_doi_ingest(**params, return_state=True)
    except RuntimeError as exc:  # the temporary server did not start (its own message says why)
        error(str(exc), hint="set PREFECT_HOME to a new folder, or PREFECT_API_URL to a running server")
        return True
    except PVDOIError as exc:  # the flow's module reads the manifest (its dataset choices): a broken one, one line
        error(str(exc), hint=f"details: {log_path}" if log_path else None)
        return True
    from flows.artifacts import read_run_results

    kept = read_run_results(data_dir, state.state_details.flow_run_id)
    if kept is None:  # rejected parameters or a crash: nothing ran
        error(f"the flow run ended {state.type.value.lower()}: {_brief(state.message)}", hint=f"details: {log_path}")
        return True
    results, dbt = kept
    print_summary(results, dbt, log_path)
    if state.is_failed():
        error(f"the flow run failed: {_brief(state.message)}", hint=f"details: {log_path}")
    return state.is_failed()


def _brief(message: str | None) -> str:
    """A state message without Prefect's wrapping, on one line (a rejected parameter keeps its allowed values)."""
    text = (message or "").replace("Validation of flow parameters failed with error:", "")
    text = text.replace("ParameterTypeError: Flow run received invalid parameters:", "invalid parameters:")
    joined = " ".join(line.strip(" -") for line in text.splitlines() if line.strip(" -"))
    return joined if len(joined) <= 400 else joined[:397] + "..."


def _prefect_home() -> None:
    """Prefect's home folder with its parents (a new ``PREFECT_HOME`` need not exist yet)."""
    home = os.environ.get("PREFECT_HOME") or os.path.join("~", ".prefect")
    os.makedirs(os.path.expanduser(home), exist_ok=True)
