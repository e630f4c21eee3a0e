"""The terminal as a user meets it: expected errors in a line or two on stderr, clean JSON, 80 columns, a log file."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

INDIA = "ind_pv_solar_farms_2022"
INDIA_FILE = "solar_farms_india_2021_merged_simplified.geojson"
INDIA_RAW = "/github-raw/microsoft/solar-farms-mapping/main/data/" + INDIA_FILE
UK = "uk_crowdsourced_pv_2020"  # its look-alike GeoJSON repeats feature ids: GDAL warns "Several features with id"


def _pvdoi(workdir, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "COLUMNS": "80",
           "PREFECT_HOME": str(workdir / "prefect_home"), **env}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _pvdoi_on_a_terminal(workdir, *args: str, timeout: int = 600) -> tuple[int, str]:
    """The CLI on a pseudo-terminal 80 columns wide (stdout and stderr both it): exit code and what it showed."""
    import fcntl
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**{k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "COLUMNS")}, "TERM": "xterm",
           "PREFECT_HOME": str(workdir / "prefect_home")}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, stdin=child,
                            stdout=child, stderr=child, close_fds=True)
    os.close(child)
    shown, deadline = bytearray(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([main], [], [], 1)[0]:
                continue
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the program ended and closed the terminal
                break
            if not data:
                break
            shown += data
        returncode = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        proc.kill()
        os.close(main)
    return returncode, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", shown.decode("utf-8", errors="replace"))


def _summary_lines(stdout: str) -> list[str]:
    """The summary's lines but those naming a path (a path is as long as it is)."""
    return [line for line in stdout.splitlines() if not line.startswith(("log: ", "GeoParquet: "))]


def _data(workdir) -> list[str]:
    return ["--data-dir", str(workdir / "data"), "--cache-path", str(workdir / "cache")]


def test_an_expected_error_is_brief_on_stderr_and_whole_in_the_log_file(repo, workdir):
    repo.inject(INDIA_RAW, "corrupt", times=-1)
    out = _pvdoi(workdir, "ingest", INDIA, *_data(workdir))
    assert out.returncode == 1
    for stream in (out.stdout, out.stderr):
        assert "Traceback" not in stream and "Oh no an error" not in stream and "slack" not in stream, stream
    assert f"dataset '{INDIA}'" in out.stderr and f"file '{INDIA_FILE}'" in out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert "ChecksumError" in line and INDIA_FILE in line, out.stderr
    assert all(len(line) <= 80 for line in _summary_lines(out.stdout)), out.stdout
    log_line = out.stdout.strip().splitlines()[-1]
    assert log_line.startswith("log: ")
    log_path = log_line.removeprefix("log: ")
    log = open(log_path if os.path.isabs(log_path) else ROOT / log_path, encoding="utf-8").read()
    assert "Traceback (most recent call last)" in log and "ChecksumError" in log

    verbose = _pvdoi(workdir, "-v", "ingest", INDIA, *_data(workdir))
    assert "Traceback (most recent call last)" in verbose.stderr  # -v shows what the log file has


def test_a_failed_dataset_in_a_flow_run_is_said_by_the_run_not_echoed_by_prefect(repo, workdir):
    """On a terminal: the dataset's failure names its file on screen, without Prefect's two copies of the exception;
    the log file keeps them."""
    repo.inject(INDIA_RAW, "corrupt", times=-1)
    returncode, shown = _pvdoi_on_a_terminal(workdir, "run", INDIA, "--no-dbt", "--no-overture", *_data(workdir))
    assert returncode == 1, shown[-3000:]
    assert f"[dataset '{INDIA}', file '{INDIA_FILE}']" in shown.replace("\n", ""), shown
    assert "Task run failed with exception" not in shown and "Finished in state Failed" not in shown, shown
    log_path = re.findall(r"^log: (.+)$", shown, re.MULTILINE)[-1].strip()
    log = open(log_path if os.path.isabs(log_path) else ROOT / log_path, encoding="utf-8").read()
    assert "Finished in state Failed(\"Task run encountered an exception ChecksumError" in log


def test_json_stays_clean_on_failure_and_version_prints(repo, workdir):
    repo.inject(INDIA_RAW, "status", status=404, times=-1)
    out = _pvdoi(workdir, "-q", "ingest", INDIA, "--json", *_data(workdir))
    assert out.returncode == 1
    results = json.loads(out.stdout)
    assert results[INDIA]["status"] == "failed" and results[INDIA]["error_type"] == "DownloadError"
    assert "INFO" not in out.stderr  # -q: errors only
    version = _pvdoi(workdir, "--version")
    assert version.returncode == 0 and version.stdout.startswith("pvdoi ")


def test_a_run_with_a_new_prefect_home_whose_parents_do_not_exist(repo, workdir):
    home = workdir / "not" / "yet" / "there" / "prefect"
    out = _pvdoi(workdir, "run", INDIA, "--no-dbt", *_data(workdir), PREFECT_HOME=str(home), timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (home / "prefect.db").exists()
    assert all(len(line) <= 80 for line in _summary_lines(out.stdout)), out.stdout
    assert "Traceback" not in out.stderr


def test_datasets_lists_each_dataset_with_its_source_licence_and_citation(workdir):
    from typer.testing import CliRunner

    from flows.cli import app
    from pvdoi import DEFAULT_MANIFEST

    manifest = json.loads(DEFAULT_MANIFEST.read_text())["datasets"]
    result = CliRunner().invoke(app, ["datasets", "--json", "--data-dir", str(workdir / "data")])
    assert result.exit_code == 0, result.output
    entries = {e["id"]: e for e in json.loads(result.output)}
    assert list(entries) == [d["id"] for d in manifest]
    for d in manifest:
        e = entries[d["id"]]
        assert (e["doi"], e["license"], e["citation"]) == (d["doi"], d["license"], d.get("citation"))
        assert e["licence_warning"] == (d["license"] == "unspecified") and e["last_status"] is None
    text = CliRunner().invoke(app, ["datasets", "--data-dir", str(workdir / "data")]).output
    assert "never run" in text and "(licence restricts use or is unspecified)" in text


def test_a_rejected_parameter_is_one_line_naming_the_allowed_values(workdir):
    out = _pvdoi(workdir, "run", "not_a_dataset", *_data(workdir))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert "invalid parameters: datasets.0: Input should be" in line and INDIA in line, out.stderr


@pytest.mark.parametrize("licence, warned", [("CC-BY-4.0", False), ("MIT", False), ("CC0-1.0", False),
                                             ("CC-BY-NC-4.0", True), ("CC-BY-ND-4.0", True), ("unspecified", True)])
def test_licences_that_need_a_look_are_flagged(licence, warned):
    from pvdoi.results import DatasetResult

    assert (DatasetResult("x", license=licence).licence_warning is not None) == warned


def test_a_run_summary_warns_of_an_unspecified_licence(repo, workdir):
    out = _pvdoi(workdir, "ingest", "chn_med_res_pv_2024", *_data(workdir))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "chn_med_res_pv_2024: licence unspecified: ask the authors before reusing it" in out.stdout


def test_the_live_display_row_shows_bytes_then_features_so_far():
    from rich.console import Console

    from flows.progress import PROGRESS, live_display
    from pvdoi import events

    def row() -> str:
        console = Console(width=80, record=True, file=open(os.devnull, "w"))
        console.print(PROGRESS.table())
        return next(line for line in console.export_text().splitlines() if line.startswith("ds"))

    with live_display(True):
        PROGRESS.stage("ds", "download")
        events.emit("ds", "bytes", 1_500_000)
        assert "1.5 MB" in row()
        events.emit("ds", "bytes", -1_500_000)  # a restarted download takes its bytes back
        events.emit("ds", "bytes", 700_000)
        PROGRESS.stage("ds", "read")
        assert "0.7 MB" in row()
        events.emit("ds", "features", 32_768)
        assert "32,768 features" in row()
    events.emit("ds", "features", 1)  # the display has ended: nobody listens any more
    assert "32,768 features" in row()


@pytest.mark.parametrize("command", [["ingest"], ["run", "--no-dbt", "--no-overture"]], ids=["ingest", "run"])
def test_the_live_display_shows_no_raw_gdal_line_and_the_summary_counts_them(repo, workdir, command):
    returncode, shown = _pvdoi_on_a_terminal(workdir, *command, UK, *_data(workdir))
    assert returncode == 0, shown[-3000:]
    assert "Warning 1:" not in shown and "Several features with id" not in shown, shown
    # one live display: no progress bar of its own per downloaded file, no Prefect complaint from a reader thread
    assert " kB" not in shown and "API without a flow run id" not in shown, shown
    [counted] = re.findall(rf"^{UK}: (\d+) GDAL warnings? \(in the log\)$", shown, re.MULTILINE)
    log_path = re.findall(r"^log: (.+)$", shown, re.MULTILINE)[-1].strip()
    log = open(log_path if os.path.isabs(log_path) else ROOT / log_path, encoding="utf-8").read()
    logged = re.findall(rf"pvdoi.gdal - {UK}: \S+: GDAL: Warning 1: Several features with id = \d+", log)
    assert int(counted) == len(logged) >= 1, log


def test_retries_reach_the_dataset_row_and_not_the_terminal_lines(repo):
    """A 503 twice then the file: the row counts two retries; urllib3's "Retrying" lines stay out of the display."""
    import logging

    from flows.console import _counted_by_the_display
    from flows.progress import PROGRESS, live_display
    from pvdoi import events
    from pvdoi.http import Http
    from pvdoi.settings import Settings

    repo.inject(r"/zenodo/api/records/", "status", status=503, times=2)
    seen: list[tuple[str, str, int]] = []
    with live_display(True), events.listening(lambda *event: seen.append(event)):
        PROGRESS.stage("ds", "resolve")
        Http(Settings(http_backoff_factor=0.01)).get_json(f"{repo.base_url}/zenodo/api/records/5005868",
                                                         dataset_id="ds")
        assert "2 retries" in str(PROGRESS.table().columns[2]._cells)
    assert seen == [("ds", "retries", 1)] * 2
    retrying = logging.LogRecord("urllib3.connectionpool", logging.WARNING, "", 0, "Retrying (Retry(total=4))", (),
                                 None)
    assert not _counted_by_the_display(retrying)


def test_every_dataset_row_of_the_summary_fits_one_line_of_80_columns(monkeypatch):
    """The longest dataset ids (40 characters) with the widest figures: each row whole on its own line."""
    from rich.console import Console

    from flows import console as terminal
    from flows import summary
    from pvdoi import DEFAULT_MANIFEST
    from pvdoi.manifest import load_manifest
    from pvdoi.results import DatasetResult, GeoParquetOutput

    ids = [d.id for d in load_manifest(DEFAULT_MANIFEST).datasets]
    results = {i: DatasetResult(i, counts={"read": 265_406, "written": 265_402}, downloaded_bytes=999 * 2**20,
                                duration_s=123.4, geoparquet=GeoParquetOutput(f"/d/{i}.parquet", "0", 1, 265_402))
               for i in ids}
    results[ids[0]] = DatasetResult(ids[0], status="failed", error="x", error_type="DownloadError")
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    monkeypatch.setattr(summary, "console", console)
    monkeypatch.setattr(terminal, "STDERR", console)
    summary.print_summary(results)
    lines = console.export_text().splitlines()
    assert max(len(i) for i in ids) >= 40
    for i in ids:
        [row] = [line for line in lines if line.startswith(i + " ")]
        assert ("failed" if i == ids[0] else "265,402") in row and len(row) <= 80, lines


def test_an_error_line_keeps_the_dataset_and_file_it_names(monkeypatch):
    """The product's errors start "[dataset 'x', file 'y']": shown as they are, not taken for rich markup."""
    from rich.console import Console

    from flows import console as terminal
    from flows import summary
    from pvdoi.errors import ReadError
    from pvdoi.results import DatasetResult

    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    monkeypatch.setattr(terminal, "STDERR", console)
    failed = DatasetResult.failed(INDIA, ReadError("no layer", dataset_id=INDIA, file=INDIA_FILE))
    summary.print_summary({INDIA: failed})
    terminal.error(str(ReadError("no layer", dataset_id=INDIA, file=INDIA_FILE)), hint="[see] the log")
    shown = console.export_text()
    assert shown.count(f"[dataset '{INDIA}', file '{INDIA_FILE}'] no layer") == 2 and "  [see] the log" in shown


def test_every_row_of_the_live_display_fits_one_line_of_80_columns():
    """The live display at the end of a run (six datasets loaded, dbt's counts beside them): each dataset id whole on
    its own line, no line past 80 columns; the 40-character id used to fold onto a second line."""
    from rich.console import Console

    from flows.progress import PROGRESS
    from pvdoi import DEFAULT_MANIFEST
    from pvdoi.manifest import load_manifest

    ids = [d.id for d in load_manifest(DEFAULT_MANIFEST).datasets]
    PROGRESS.clear()
    for i in ids:
        PROGRESS.done(i, "loaded", "265,402 rows")
    PROGRESS.done("dbt build", "built", "9 model success, 110 test pass")
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(PROGRESS.table())
    PROGRESS.clear()
    lines = console.export_text().splitlines()
    assert max(len(i) for i in ids) >= 40 and all(len(line) <= 80 for line in lines), lines
    for i in ids:
        [row] = [line for line in lines if line.startswith(i + " ")]
        assert "loaded" in row and "265,402 rows" in row, lines


def test_a_rejected_parameter_is_said_once_and_prefects_copies_stay_in_the_log(workdir):
    """Prefect logs a rejected parameter twice at ERROR, with pydantic's raw list, and its engine's INFO line ends the
    run with it again; the terminal shows the run's one error line, the log file keeps Prefect's."""
    out = _pvdoi(workdir, "run", "not_a_dataset", *_data(workdir))
    assert out.returncode == 1
    assert not [line for line in out.stderr.splitlines() if "ERROR" in line], out.stderr
    assert "Parameter validation failed" not in out.stderr
    assert [line for line in out.stderr.splitlines() if "Input should be" in line] == [
        line for line in out.stderr.splitlines() if line.startswith("error:")], out.stderr
    [log] = (workdir / "data" / "logs").glob("*-run.log")
    assert "Parameter validation failed" in log.read_text()


def test_a_manifest_that_is_not_json_is_one_error_line_not_a_traceback(workdir):
    """The flow's module reads the manifest when it is imported (its dataset choices); a broken manifest named by
    PVDOI_MANIFEST_PATH ends the run with the manifest's error on one line."""
    bad = workdir / "bad.json"
    bad.write_text('{"datasets": [')
    out = _pvdoi(workdir, "run", "--all", *_data(workdir), PVDOI_MANIFEST_PATH=str(bad))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert str(bad) in line and "is not valid JSON" in line, out.stderr
