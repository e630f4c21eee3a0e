"""GDAL's warnings while a file is read: logged naming dataset and file, counted per dataset, in any thread.

GDAL warns in two ways under pyogrio: while reading, through the calling thread's error handler (pyogrio's only in
the thread that imported it; elsewhere GDAL's default one, which writes to stderr), and while opening, as a Python
``RuntimeWarning`` (pyogrio's handler for the open). Both must land in the log and the count.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pyogrio
import pytest

from pvdoi.features import gdal


@pytest.fixture()
def repeated_ids(tmp_path) -> str:
    features = [{"type": "Feature", "id": i // 2, "properties": {"n": i},
                 "geometry": {"type": "Point", "coordinates": [i, 0]}} for i in range(6)]
    path = tmp_path / "repeated.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


@pytest.fixture()
def python_warnings_logged():
    """``logging.captureWarnings`` with the filter the command line adds (pytest's own capture set aside)."""
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    logger = logging.getLogger("py.warnings")
    python_warnings = gdal.PythonWarnings()
    logger.addFilter(python_warnings)
    yield
    logger.removeFilter(python_warnings)
    logging.captureWarnings(False)


def _read(path: str, **open_options) -> int:
    with pyogrio.open_arrow(path, batch_size=2, use_pyarrow=True, **open_options) as (_, reader):
        return sum(len(batch) for batch in reader)


def test_warnings_while_reading_and_opening_in_reader_threads_are_logged_and_counted(
        repeated_ids, python_warnings_logged, caplog, capfd):
    caplog.set_level(logging.WARNING)
    with gdal.counting("some_dataset") as counted:
        with ThreadPoolExecutor(1, initializer=gdal.reading, initargs=("some_dataset", "repeated.geojson")) as pool:
            assert pool.submit(_read, repeated_ids).result() == 6  # warns while reading
            assert pool.submit(_read, repeated_ids, NOT_AN_OPTION="1").result() == 6  # and while opening
    assert counted.count == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "pvdoi.gdal"]
    assert sum(m.startswith("some_dataset: repeated.geojson: GDAL: Warning 1: Several features with id = 0")
               for m in messages) == 2, messages
    assert any(m.startswith("some_dataset: repeated.geojson: GDAL: ") and "NOT_AN_OPTION" in m for m in messages)
    assert "Several features with id" not in capfd.readouterr().err  # nothing raw on stderr


def test_a_dataset_counts_only_its_own_files(repeated_ids, caplog):
    with gdal.counting("one") as one, gdal.counting("other") as other:
        with ThreadPoolExecutor(1, initializer=gdal.reading, initargs=("other", "repeated.geojson")) as pool:
            pool.submit(_read, repeated_ids).result()
    assert (one.count, other.count) == (0, 1)


def test_warnings_of_a_file_read_in_the_callers_own_thread_are_logged_and_counted(repeated_ids, caplog, capfd):
    """Without a read-ahead thread (a one-thread Dask worker), GDAL's handler is this thread's while each batch is
    parsed, and what it was afterwards."""
    from pvdoi.features import readahead

    def batches():
        with pyogrio.open_arrow(repeated_ids, batch_size=2, use_pyarrow=True) as (_, reader):
            yield from reader

    caplog.set_level(logging.WARNING)
    with gdal.counting("some_dataset") as counted, readahead.read_ahead(0):
        assert sum(len(b) for b in readahead.ahead(batches(), "some_dataset", "repeated.geojson")) == 6
    assert counted.count == 1
    assert any(r.getMessage().startswith("some_dataset: repeated.geojson: GDAL: Warning 1: Several features")
               for r in caplog.records if r.name == "pvdoi.gdal")
    assert "Several features with id" not in capfd.readouterr().err
    assert getattr(gdal._thread, "source", None) is None  # the thread reads no file any more
