"""Serve the deployments of ``prefect.yaml`` from one long-running process: no work pool, no worker.

For a single machine. With ``PREFECT_API_URL`` pointing at a Prefect server::

    .venv/bin/python deployments/serve.py

registers ``ingest-all``, ``ingest-datasets``, ``refresh-force`` and ``ingest-all-dask`` with the schedules,
parameters and concurrency limits that ``prefect deploy --all`` gives them (``{{ $NAME }}`` in ``prefect.yaml`` filled
from the environment, as ``prefect deploy`` does, with ``deploy.sh``'s defaults), then runs their flow runs (one at a time,
in the project root) until stopped with Ctrl-C or SIGTERM (Prefect's runner then pauses the deployments'
schedules; starting serve.py again resumes them). The UI's Run form and Retry work as with a worker.

It is this or the work pool: both register the same deployment names, so deployments already made by
``prefect deploy`` (bound to the work pool) are refused unless ``--replace`` deletes them first;
``deployments/deploy.sh`` later makes them work-pool deployments again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = ROOT / "prefect.yaml"
# prefect.yaml's environment placeholders and their values when unset (the same as deployments/deploy.sh's)
PLACEHOLDER_DEFAULTS = {"PVDOI_DASK_ADDRESS": "local:2"}


def deployments(prefect_yaml: Path = PREFECT_YAML) -> list:
    """One ``RunnerDeployment`` per deployment of ``prefect.yaml`` (its work pool left out)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.ingest_flow import pv_doi_ingest

    spec = yaml.safe_load(filled(prefect_yaml.read_text(encoding="utf-8")))
    out = []
    for d in spec["deployments"]:
        if d.get("entrypoint") != "flows.ingest_flow:pv_doi_ingest":
            raise ValueError(f"deployment {d['name']!r}: serve.py only serves flows.ingest_flow:pv_doi_ingest, "
                             f"not {d.get('entrypoint')!r}")
        limit = d.get("concurrency_limit")
        out.append(pv_doi_ingest.to_deployment(
            name=d["name"], description=d.get("description"), tags=d.get("tags"),
            parameters=d.get("parameters") or {},
            schedules=[Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
                       for s in d.get("schedules") or []],
            concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
            enforce_parameter_schema=d.get("enforce_parameter_schema", True),
            entrypoint_type=EntrypointType.MODULE_PATH,  # as prefect.yaml's, for the Dask scheduler and workers
        ))
    return out


def filled(text: str) -> str:
    """``text`` with each ``{{ $NAME }}`` replaced by the environment's value, else (unset or empty) its default."""
    def value(match: re.Match) -> str:
        name = match[1]
        found = os.environ.get(name) or PLACEHOLDER_DEFAULTS.get(name)
        if not found:
            raise SystemExit(f"prefect.yaml uses {{{{ ${name} }}}}: set {name} (no default for it)")
        return found

    return re.sub(r"\{\{\s*\$(\w+)\s*\}\}", value, text)


def free_names(names: list[str], *, replace: bool) -> None:
    """Make sure no deployment of these names is bound to a work pool (a worker would run it too)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                found = client.read_deployment_by_name(f"pv-doi-ingest/{name}")
            except ObjectNotFound:
                continue
            if not found.work_pool_name:
                continue
            if not replace:
                raise SystemExit(f"deployment pv-doi-ingest/{name} is deployed to the work pool "
                                 f"{found.work_pool_name!r}; run serve.py --replace to delete it and serve it from "
                                 "here (deployments/deploy.sh restores the work-pool deployments)")
            client.delete_deployment(found.id)


def main(argv: list[str] | None = None) -> None:
    """Serve every deployment of ``prefect.yaml`` until stopped."""
    parser = argparse.ArgumentParser(prog="deployments/serve.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=1, help="flow runs at a time (default 1: one warehouse writer)")
    parser.add_argument("--replace", action="store_true", help="delete work-pool deployments of the same names")
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # flow runs start here: the entrypoint and the default ./data, ./.hamilton_cache resolve
    sys.path.insert(0, str(ROOT))
    from prefect import serve

    served = deployments()
    free_names([d.name for d in served], replace=args.replace)
    serve(*served, limit=args.limit)


if __name__ == "__main__":
    main()
