"""A separate writer of a lake for tests/test_ducklake.py: ``python tests/lake_writer.py LAKE_URI REPORT_PICKLE N``
replaces the pickled dataset's rows N times (each a new load: a GeoParquet checksum of its own each time). With
``--stop-before-commit`` it prints ``ready`` once the rows are replaced inside the open transaction and waits there,
to be killed."""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import time

import pvdoi.warehouse.datasets as datasets
from pvdoi.warehouse import load_datasets, warehouse


def main(uri: str, report_path: str, times: int, stop_before_commit: bool) -> None:
    with open(report_path, "rb") as f:
        report = pickle.load(f)
    if stop_before_commit:
        original = datasets.commit_message

        def stop(con, message, **extra):
            original(con, message, **extra)
            print("ready", flush=True)
            time.sleep(600)

        datasets.commit_message = stop
    with warehouse(uri) as con:
        for n in range(times):
            label = f"{os.getpid()} load {n}"  # a checksum of its own: never the file already loaded
            changed = report.replace(geoparquet=dataclasses.replace(report.geoparquet, sha256=label))
            [loaded] = load_datasets(con, [changed])
            assert loaded["loaded"], loaded
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), "--stop-before-commit" in sys.argv)
