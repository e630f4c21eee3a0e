"""The manifest is the only place a dataset exists: no dataset id of doi_manifest.json appears in the product's code,
SQL or YAML.

Searched: pvdoi/, flows/, hamilton_nodes/, deployments/, dbt_project/ (without dbt's target/ and logs/) and
prefect.yaml. Not searched: the manifest itself, tests/, benchmarks/ (measurements of named datasets), and
pvdoi/testing/ (the local repository server and its look-alike data generators, which stand in for the real
repositories and so know the six published datasets by name).
"""

from __future__ import annotations

import json
from pathlib import Path

from pvdoi import DBT_PROJECT_DIR, DEFAULT_MANIFEST, PROJECT_ROOT

SEARCHED = ["pvdoi", "flows", "hamilton_nodes", "deployments", "dbt_project", "prefect.yaml"]
SKIPPED = [PROJECT_ROOT / "pvdoi" / "testing", DBT_PROJECT_DIR / "target", DBT_PROJECT_DIR / "logs"]
SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".md", ".json", ".toml", ".txt", ".cfg", ".ini", ".jinja", ".csv"}


def _files() -> list[Path]:
    out = []
    for name in SEARCHED:
        root = PROJECT_ROOT / name
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            skipped = any(path.is_relative_to(s) for s in SKIPPED) or "__pycache__" in path.parts
            if path.is_file() and path.suffix in SUFFIXES and not skipped:
                out.append(path)
    return out


def test_no_dataset_id_outside_the_manifest():
    ids = [d["id"] for d in json.loads(DEFAULT_MANIFEST.read_text(encoding="utf-8"))["datasets"]]
    files = _files()
    assert len(files) > 50 and any(p.suffix == ".sql" for p in files)  # the search does look somewhere
    found = [f"{path.relative_to(PROJECT_ROOT)}:{n}: {dataset_id}"
             for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             for dataset_id in ids if dataset_id in line]
    assert not found, "dataset ids outside the manifest:\n" + "\n".join(found)
