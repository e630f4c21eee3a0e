"""Fault injection, case by case: every failure named (dataset, file, cause), nothing lost, a rerun recovers.

The cases and their outcomes are registered with ``@case`` and rendered into the README's
"Failure behaviour" table (``python -m tests.failure_cases``); ``test_readme_table_is_current`` keeps
the two in step.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pvdoi.errors import (ArchiveError, ChecksumError, DownloadError, FileTooLargeError, ReadError, RepositoryError,
                          SchemaError, StorageError, WarehouseError)
from flows.dataflow import run_dataset
from flows.fanout import run_doi_pipeline
from pvdoi.warehouse import load_dataset, warehouse
from tests.conftest import ROOT, write_manifest
from tests.failure_cases import BEGIN, END, README, case, table

INDIA = "ind_pv_solar_farms_2022"
INDIA_FILE = "solar_farms_india_2021_merged_simplified.geojson"
INDIA_RAW = "/github-raw/microsoft/solar-farms-mapping/main/data/" + INDIA_FILE
DUNNETT = "global_harmonized_large_solar_farms_2020"
CHINA = "chn_med_res_pv_2024"


def _store(workdir: Path) -> list[Path]:
    root = workdir / "data" / "downloads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _india_bytes(repo) -> bytes:
    return (repo.files_dir / INDIA / INDIA_FILE).read_bytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _dunnett_zip_name(repo) -> str:
    return next(p.name for p in (repo.files_dir / DUNNETT).iterdir() if p.suffix == ".zip")


def _python(script: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


# -- network and repository ---------------------------------------------------------------------

@case(1, "503 and 429 with `Retry-After`, a few times, then success", "retried by urllib3, the waits honoured, succeeds")
@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured(repo, workdir, status):
    repo.inject(INDIA_RAW, "status", status=status, retry_after=1, times=2)
    started = time.monotonic()
    report = run_dataset(INDIA)
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits
    assert repo.count(INDIA_RAW) == 3 and report.counts["written"] == 1363


@case(2, "connection reset mid-download", "the download restarts and succeeds; no partial file in the store")
def test_connection_reset_mid_download(repo, workdir):
    repo.inject(INDIA_RAW, "reset", nbytes=100_000, times=2)
    report = run_dataset(INDIA)
    assert repo.count(INDIA_RAW) == 3 and report.downloaded_bytes == len(_india_bytes(repo))
    assert [p.name for p in _store(workdir)] == [INDIA_FILE]


@case(3, "response truncated (Content-Length larger than the body)", "detected as incomplete, retried, succeeds")
def test_truncated_response(repo, workdir):
    repo.inject(INDIA_RAW, "truncate", nbytes=1000, times=1)
    report = run_dataset(INDIA)
    assert repo.count(INDIA_RAW) == 2 and report.counts["read"] == 1363


@case(4, "checksum mismatch every time", "`ChecksumError` with expected and actual checksums after one re-download; "
      "nothing kept or cached; a rerun after the fault recovers")
def test_checksum_mismatch(repo, workdir):
    repo.inject(INDIA_RAW, "corrupt", times=-1)
    with pytest.raises(ChecksumError, match=rf"dataset '{INDIA}', file '{INDIA_FILE}'.*expected gitsha1:[0-9a-f]{{40}}, "
                                            rf"got gitsha1:[0-9a-f]{{40}}"):
        run_dataset(INDIA)
    assert repo.count(INDIA_RAW) == 2 and _store(workdir) == []
    repo.clear_faults()
    report = run_dataset(INDIA)
    assert report.downloaded_bytes > 0 and report.counts["written"] == 1363


@case(5, "404 for a record or a file", "fails at once (no retries), naming the URL")
def test_not_found(repo, workdir):
    manifest = write_manifest(workdir / "m.json", lambda raw: raw["datasets"][1]["repository"].update(record_id=999))
    with pytest.raises(RepositoryError, match=r"dataset 'uk_crowdsourced_pv_2020'.*GET http://127.0.0.1:\d+/zenodo/api/"
                                              r"records/999 answered HTTP 404"):
        run_dataset("uk_crowdsourced_pv_2020", manifest_path=manifest)
    assert repo.count("/records/999") == 1
    repo.inject(INDIA_RAW, "status", status=404, times=-1)
    with pytest.raises(DownloadError, match=rf"file '{INDIA_FILE}'.*{INDIA_RAW} answered HTTP 404"):
        run_dataset(INDIA)
    assert repo.count(INDIA_RAW) == 1


@case(6, "file larger than `max_mb` (declared, or undeclared and streamed)",
      "`FileTooLargeError` with both sizes; never a silent skip")
def test_file_too_large(repo, workdir):
    with pytest.raises(FileTooLargeError, match=r"published size 1.5 MB \(1611052 bytes\) exceeds max_mb=0.5 "
                                                r"\(524288 bytes\)"):
        run_dataset(INDIA, max_mb=0.5)
    assert repo.count(INDIA_RAW) == 0
    url = repo.base_url + INDIA_RAW
    manifest = write_manifest(workdir / "m.json", lambda raw: raw["datasets"][5].update(
        repository={"type": "url", "urls": [url]}))
    with pytest.raises(FileTooLargeError, match=r"streamed more than max_mb=0.5 \(524288 bytes\).*published size "
                                                r"unknown"):
        run_dataset(INDIA, max_mb=0.5, manifest_path=manifest)
    assert _store(workdir) == []


@case(7, "a record whose file list changed (new version of one file)",
      "only the changed file is downloaded; the others come from the store")
def test_changed_file_list(repo, workdir):
    dataset = "global_pv_inventory_sent2_spot_2021"
    first = run_dataset(dataset)
    cv = repo.files_dir / dataset / "cv_polygons.geojson"
    doc = json.loads(cv.read_bytes())
    doc["features"] = doc["features"][:3]
    repo.replace_file(dataset, "cv_polygons.geojson", json.dumps(doc).encode())
    second = run_dataset(dataset)
    assert repo.count("cv_polygons.geojson/content") == 2
    for name in ("predicted_polygons.geojson", "trn_polygons.geojson", "test_polygons.geojson"):
        assert repo.count(f"{name}/content") == 1
    assert second.counts["read"] < first.counts["read"] and "standardised_features" in second.cache.misses


# -- archives and files -------------------------------------------------------------------------

@case(8, "zip with a `../` path or an absolute path", "`ArchiveError`; nothing written outside the work folder")
@pytest.mark.parametrize("member", ["../../../escaped.gpkg", "/tmp/pvdoi-escaped.gpkg"])
def test_zip_traversal(repo, workdir, member):
    repo.replace_file(DUNNETT, _dunnett_zip_name(repo), _zip({"ok/solar_WGS84.gpkg": b"x", member: b"evil"}))
    with pytest.raises(ArchiveError, match=rf"dataset '{DUNNETT}', file '.*\.zip'.*refused .*member path"):
        run_dataset(DUNNETT)
    assert not list(workdir.rglob("escaped.gpkg")) and not os.path.exists("/tmp/pvdoi-escaped.gpkg")


@case(9, "zip bomb (small zip, huge expansion)", "`ArchiveError` from the limit, with compressed and expanded sizes")
def test_zip_bomb(repo, workdir):
    repo.replace_file(DUNNETT, _dunnett_zip_name(repo), _zip({"solar_WGS84.gpkg": b"\0" * (64 * 2**20)}))
    with pytest.raises(ArchiveError, match=r"decompression bomb: \d+ compressed bytes expand to 67108864 bytes "
                                           r"\(ratio \d+; limits"):
        run_dataset(DUNNETT)


@case(10, "corrupt zip, truncated GeoPackage, malformed GeoJSON", "`ArchiveError` / `ReadError` naming the file")
def test_corrupt_files(repo, workdir):
    repo.replace_file(DUNNETT, _dunnett_zip_name(repo), b"PK\x03\x04garbage" * 10)
    with pytest.raises(ArchiveError, match=r"file '.*\.zip'.*corrupt or unreadable archive"):
        run_dataset(DUNNETT)
    gpkg = next((repo.files_dir / DUNNETT).glob("*.zip"))
    with zipfile.ZipFile(gpkg) as zf:
        member = next(n for n in zf.namelist() if n.endswith("solar_WGS84.gpkg"))
        data = zf.read(member)
    repo.replace_file(DUNNETT, gpkg.name, _zip({member: data[: len(data) // 3]}))
    with pytest.raises(ReadError, match=r"file '.*solar_WGS84.gpkg'.*cannot (open|read)"):
        run_dataset(DUNNETT)
    repo.replace_file(INDIA, INDIA_FILE, b'{"type": "FeatureCollection", "features": [{"type": "Feat')
    with pytest.raises(ReadError, match=rf"file '{INDIA_FILE}'.*cannot (open|read)"):
        run_dataset(INDIA)


@case(11, "no file matches the filters", "`NoMatchingFilesError` listing the files present and the patterns")
def test_no_match(repo, workdir):
    manifest = write_manifest(workdir / "m.json", lambda raw: raw["datasets"][3]["read"].update(include=[r"\.fgb$"]))
    results = run_doi_pipeline([DUNNETT], manifest_path=manifest)
    error = results[DUNNETT].error
    assert results[DUNNETT].error_type == "NoMatchingFilesError"
    assert r"include=['\\.fgb$']" in error and "solar_WGS84.gpkg" in error and "wind_WGS84.gpkg" in error


@case(12, "missing CRS with none declared; projected metres in a file declared WGS84",
      "`SchemaError`, never silently wrong geometry; with a declared CRS the file is read with it")
def test_crs_problems(repo, workdir):
    repo.remove_file(CHINA, "PV_Test_2015.prj")
    manifest = write_manifest(workdir / "m.json", lambda raw: raw["datasets"][4].update(expected_crs=None))
    with pytest.raises(SchemaError, match=rf"dataset '{CHINA}', file 'PV_Test_2015.shp'.*no CRS and the manifest "
                                          "declares none"):
        run_dataset(CHINA, manifest_path=manifest)
    report = run_dataset(CHINA)  # the default manifest declares EPSG:4326
    assert any("PV_Test_2015.shp: no CRS in the file; used the declared EPSG:4326" in n for n in report.notes)
    doc = json.loads(_india_bytes(repo))
    for feature in doc["features"]:
        feature["geometry"] = {"type": "Polygon", "coordinates": [[[500000, 2000000], [500100, 2000000],
                                                                   [500100, 2000100], [500000, 2000000]]]}
    repo.replace_file(INDIA, INDIA_FILE, json.dumps(doc).encode())
    with pytest.raises(SchemaError, match=rf"file '{INDIA_FILE}'.*impossible for the geographic CRS"):
        run_dataset(INDIA)


@case(13, "invalid, empty, 3D and mixed geometries; non-UTF-8 attributes",
      "repaired or dropped and counted (`read = written + dropped`), never a crash")
def test_hostile_geometries_and_text(repo, workdir):
    report = run_dataset("uk_crowdsourced_pv_2020")
    c = report.counts
    assert c["repaired_invalid"] >= 1 and c["dropped_empty"] >= 2 and c["dropped_duplicate"] >= 1
    assert c["repaired_text"] >= 1
    assert c["read"] == c["written"] + c["dropped_empty"] + c["dropped_unrepairable"] + c["dropped_duplicate"]
    frame = gpd.read_parquet(report.geoparquet.path)
    assert not frame.has_z.any() and frame.is_valid.all() and len(frame) == c["written"]


# -- manifest and parameters --------------------------------------------------------------------

@case(14, "malformed JSON, unknown keys, missing fields, bad regex, duplicate or unsafe ids",
      "validation error naming the entry and field; nothing runs (no request made)")
@pytest.mark.parametrize(("edit", "message"), [
    (lambda raw: raw["datasets"][0].update(extra=1), "entry 0 ('usa_cali_usgs_pv_2016'), field 'extra'"),
    (lambda raw: raw["datasets"][2].update(id="a;drop"), "field 'id'"),
    (lambda raw: raw["datasets"][1]["files"].update(include=["["]), "bad regular expression '['"),
    (lambda raw: raw["datasets"][5].update(id="chn_med_res_pv_2024"), "duplicate dataset id"),
])
def test_bad_manifest_stops_everything(repo, workdir, monkeypatch, edit, message):
    manifest = write_manifest(workdir / "m.json", edit)
    monkeypatch.setenv("PVDOI_MANIFEST_PATH", manifest)  # the CLI sets it; monkeypatch restores it afterwards
    result = CliRunner().invoke(app, ["ingest", "--all", "--manifest", manifest])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert repo.requests == []


# -- process and storage ------------------------------------------------------------------------

KILL_AT_NODE = """
import os, signal
from hamilton.lifecycle import NodeExecutionHook
import flows.dataflow as p
class Kill(NodeExecutionHook):
    def run_before_node_execution(self, *, node_name, **kw):
        if node_name == {node!r}:
            os.kill(os.getpid(), signal.SIGKILL)
    def run_after_node_execution(self, **kw):
        pass
original = p.build_driver
p.build_driver = lambda **kw: original(**{{**kw, "adapters": (*kw.get("adapters", ()), Kill())}})
p.run_dataset({dataset!r})
"""

KILL_IN_RENAME = """
import os, signal
real = os.replace
def replace(src, dst, *a, **kw):
    if str(dst).endswith(".parquet"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **kw)
os.replace = replace
import flows.dataflow as p
p.run_dataset({dataset!r})
"""


@case(15, "process killed (SIGKILL) in the middle of a dataset",
      "the rerun finishes it with the earlier steps from the cache; no partial GeoParquet anywhere")
def test_sigkill_mid_dataset(repo, workdir):
    dataset = "uk_crowdsourced_pv_2020"
    killed = _python(KILL_AT_NODE.format(node="standardised_features", dataset=dataset))
    assert killed.returncode == -9, killed.stderr
    out = workdir / "data" / "geoparquet"
    assert not out.exists() or not list(out.iterdir())
    report = run_dataset(dataset)
    assert "raw_layers" in report.cache.hits and "standardised_features" in report.cache.misses

    killed = _python(KILL_IN_RENAME.format(dataset=INDIA))  # killed between the temp file and the rename
    assert killed.returncode == -9, killed.stderr
    assert list(out.glob(f".{INDIA}.*.parquet.tmp")) and not (out / f"{INDIA}.parquet").exists()
    report = run_dataset(INDIA)
    assert sorted(p.name for p in out.iterdir()) == [f"{INDIA}.parquet", f"{dataset}.parquet"]
    assert "standardised_features" in report.cache.hits
    assert len(gpd.read_parquet(out / f"{INDIA}.parquet")) == 1363


KILL_IN_LOAD = """
import os, signal, json
import pvdoi.warehouse as w
import pvdoi.warehouse.connection as c
from pvdoi.results import DatasetResult
real_connect = c.connect
class Proxy:
    def __init__(self, con): self.con = con
    def execute(self, sql, *a):
        if sql.startswith("DELETE FROM raw_data.datasets"):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.con.execute(sql, *a)
    def close(self): self.con.close()
c.connect = lambda path, **kw: Proxy(real_connect(path, **kw))
report = DatasetResult.from_dict(json.loads(open({report!r}).read()))
with w.warehouse({db!r}) as con:
    w.load_dataset(con, report)
"""


def _load(db: str, reports: list[dict]) -> None:
    with warehouse(db) as con:
        for report in reports:
            load_dataset(con, report)


def _warehouse_rows(db: str) -> dict[str, int]:
    from pvdoi.duckdb_ext import connect

    con = connect(db, read_only=True)
    try:
        return dict(con.execute("SELECT dataset_id, count(*) FROM raw_data.doi_pv_features GROUP BY 1").fetchall())
    finally:
        con.close()


@case(16, "process killed in the middle of the warehouse load",
      "the database opens with every dataset's previous good rows; a rerun completes the load")
def test_sigkill_mid_warehouse_load(repo, workdir):
    db = str(workdir / "data" / "eo_pv_data.duckdb")
    reports = [run_dataset(d) for d in (INDIA, CHINA)]
    _load(db, reports)
    before = _warehouse_rows(db)
    doc = json.loads(_india_bytes(repo))
    doc["features"] = doc["features"][:100]
    repo.replace_file(INDIA, INDIA_FILE, json.dumps(doc).encode())
    new = run_dataset(INDIA)
    (workdir / "report.json").write_text(json.dumps(new.as_dict()))
    killed = _python(KILL_IN_LOAD.format(report=str(workdir / "report.json"), db=db))
    assert killed.returncode == -9, killed.stderr
    assert _warehouse_rows(db) == before == {INDIA: 1363, CHINA: reports[1].counts["written"]}
    _load(db, [new])
    assert _warehouse_rows(db) == {**before, INDIA: 100}


HOLD_LOCK = """
import time, pvdoi.warehouse as w
with w.warehouse({db!r}) as con:
    print("locked", flush=True)
    time.sleep({seconds})
"""


_OPEN_CACHE = """
import os, sys, time
from pvdoi.caching import WalSQLiteMetadataStore
while not os.path.exists(sys.argv[1] + ".go"):  # all start together
    time.sleep(0.001)
store = WalSQLiteMetadataStore(sys.argv[1])
store.initialize(sys.argv[2])
print(store.connection.execute("PRAGMA journal_mode").fetchone()[0],
      store.connection.execute("PRAGMA synchronous").fetchone()[0])  # 1: NORMAL (no fsync per commit)
"""


def test_parallel_datasets_open_a_new_cache_at_once(tmp_path):
    # The first parallel run creates the cache: every process switches it to WAL while the others create
    # the tables; SQLite answers that switch with "database is locked" at once (no busy handler).
    for attempt in range(3):
        cache = tmp_path / f"cache{attempt}"
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_CACHE, str(cache), f"run{i}"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
        time.sleep(2)  # every process imported and waiting
        Path(f"{cache}.go").touch()
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, [err[-500:] for _, err in outs]
        assert [out.strip() for out, _ in outs] == ["wal 1"] * 4


@case(17, "two runs at once against the same database and cache",
      "the second waits for the writer lock (or fails with `WarehouseError` naming the lock after its timeout); "
      "outputs, cache and database stay consistent")
def test_two_runs_at_once(repo, workdir):
    procs = [subprocess.Popen([sys.executable, "-m", "flows.cli", "ingest", INDIA, CHINA, "--json"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for stdout, _ in outs:
        results = json.loads(stdout[stdout.index("{"):])
        assert {r["status"] for r in results.values()} == {"completed"}
    db = str(workdir / "data" / "eo_pv_data.duckdb")
    reports = [run_dataset(d) for d in (INDIA, CHINA)]
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(db=db, seconds=3)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(WarehouseError, match=r"is in use by another run \(lock .*eo_pv_data.duckdb.lock held"):
        with warehouse(db, lock_timeout_s=0.5):
            pass
    started = time.monotonic()
    _load(db, reports)  # waits for the holder, then loads
    assert time.monotonic() - started > 1.0
    holder.wait(timeout=30)
    assert _warehouse_rows(db) == {INDIA: 1363, CHINA: reports[1].counts["written"]}


@case(18, "a cache entry deleted or corrupted on disk", "that node recomputes; no crash; same output")
def test_corrupted_cache_entries(repo, workdir):
    first = run_dataset(INDIA)
    results = workdir / "cache" / "results"
    entries = sorted(results.iterdir())
    assert entries
    for i, entry in enumerate(entries):
        if i % 2:
            entry.unlink()
        else:
            entry.write_bytes(entry.read_bytes()[:10])
    again = run_dataset(INDIA)
    assert again.cache.misses and again.counts == first.counts
    assert len(gpd.read_parquet(again.geoparquet.path)) == 1363


FILL_DISK = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
import flows.dataflow as p
from pvdoi.errors import PVDOIError
try:
    p.run_dataset({dataset!r})
except PVDOIError as exc:
    print(type(exc).__name__, exc)
"""


@case(19, "the disk fills while downloading or writing (a 200 kB file size limit stands in for a full disk)",
      "`StorageError` naming the file and the OS error; no partial file; the previous output is intact")
def test_disk_full(repo, workdir):
    first = run_dataset(INDIA)
    path = Path(first.geoparquet.path)
    before = path.read_bytes()
    doc = json.loads(_india_bytes(repo))
    doc["features"] = doc["features"][:1300]
    repo.replace_file(INDIA, INDIA_FILE, json.dumps(doc).encode())
    out = _python(FILL_DISK.format(dataset=INDIA, limit=200_000))  # the new 1.5 MB source cannot be stored
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"StorageError [dataset '{INDIA}', file '{INDIA_FILE}'] cannot store the download")
    assert "File too large" in out.stdout and [p.name for p in _store(workdir)] == [INDIA_FILE]

    from pvdoi.http import Http
    from pvdoi.repositories import resolve_files
    from pvdoi.settings import get_settings
    from pvdoi.store import fetch
    settings = get_settings()
    spec = __import__("pvdoi.manifest", fromlist=["x"]).load_manifest(settings.manifest_path).get(INDIA)
    remote = resolve_files(spec, Http(settings), settings.repository_urls)[1][0]
    fetch(remote, store_dir=str(workdir / "data" / "downloads"), http=Http(settings), max_mb=10, dataset_id=INDIA)
    # the source in the store; no room for the output, and at 40 kB none for the cache's SQLite journal either
    for limit in (200_000, 40_000):
        out = _python(FILL_DISK.format(dataset=INDIA, limit=limit))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"StorageError [dataset '{INDIA}', file '{INDIA}.parquet'] cannot write "), out
        assert "File too large" in out.stdout
    # a new cache cannot even be created
    out = _python(FILL_DISK.format(dataset=INDIA, limit=4096), PVDOI_CACHE_PATH=str(workdir / "new_cache"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"StorageError [dataset '{INDIA}', file 'metadata_store.db'] cannot open the "
                                 "Hamilton cache at "), out.stdout
    assert path.read_bytes() == before and not list(path.parent.glob(".*.tmp"))
    assert run_dataset(INDIA).counts["written"] == 1300


def test_storage_error_is_a_pvdoi_error():
    assert issubclass(StorageError, Exception) and StorageError("x").transient is False


def test_readme_table_is_current():
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "README lacks the failure table markers"
    current = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert current == table(), "run `python -m tests.failure_cases` to regenerate the README table"


# -- secrets and safety -------------------------------------------------------------------------

SECRET = "ghp_pvdoiTestToken0123456789"


def _everything_written(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@case(21, "a repository token (environment variable or Prefect Secret block)",
      "sent only to its own repository's URLs; never in logs, reports, artifacts, outputs or the cache")
@pytest.mark.parametrize("source", ["env", "block"])
def test_token_stays_with_its_repository(repo, workdir, monkeypatch, caplog, source, request):
    if source == "env":
        monkeypatch.setenv("PVDOI_GITHUB_TOKEN", SECRET)
    else:
        request.getfixturevalue("prefect_api")
        from prefect.blocks.system import Secret

        Secret(value=SECRET).save("pvdoi-github-token", overwrite=True)
        monkeypatch.setenv("PVDOI_GITHUB_TOKEN_BLOCK", "pvdoi-github-token")
    caplog.set_level("DEBUG")
    # in one process, so that every log record reaches caplog and the Secret block resolves against the test API
    results = run_doi_pipeline([INDIA, "uk_crowdsourced_pv_2020"], max_workers=1)
    assert {r.status for r in results.values()} == {"completed"}
    sent = {path: auth for path, auth in repo.authorizations}
    github = [p for p in sent if p.startswith(("/github-api/", "/github-raw/"))]
    others = [p for p in sent if not p.startswith(("/github-api/", "/github-raw/"))]
    assert github and others
    assert all(sent[p] == f"Bearer {SECRET}" for p in github)
    assert all(sent[p] is None for p in others)  # Zenodo never sees the GitHub token
    assert SECRET not in caplog.text and SECRET not in json.dumps({d: r.as_dict() for d, r in results.items()})
    assert SECRET.encode() not in _everything_written(workdir)  # cache, downloads, GeoParquet, last-run file
    from pvdoi.settings import get_settings
    assert SECRET not in repr(get_settings()) and SECRET not in str(get_settings().model_dump())
