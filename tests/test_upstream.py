"""Upstream versions: a newer Zenodo record, figshare version or GitHub commit is reported, with the manifest field
to change; an unreachable or odd repository is "unknown" and never fails the check, the command or the run."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
import urllib3
from typer.testing import CliRunner
from urllib3.util import Timeout

from flows.check_cli import check_lines
from flows.cli import app
from pvdoi import DEFAULT_MANIFEST, upstream
from pvdoi.manifest import load_manifest, parse_manifest
from pvdoi.settings import get_settings
from pvdoi.upstream import Upstream, UpstreamCheck, check_dataset, check_upstream, upstream_notes
from tests.conftest import write_manifest

UK = "uk_crowdsourced_pv_2020"  # zenodo, no concept id in the look-alike's table
KRUITWAGEN = "global_pv_inventory_sent2_spot_2021"  # zenodo with a concept id
BRADBURY = "usa_cali_usgs_pv_2016"  # figshare
INDIA = "ind_pv_solar_farms_2022"  # github, one file path
CHINA = "chn_med_res_pv_2024"  # github, the repository root
NEWER_FIELD = {UK: "repository.record_id", KRUITWAGEN: "repository.record_id", BRADBURY: "repository.version",
               INDIA: "repository.ref", CHINA: "repository.ref"}


def _spec(dataset_id: str, manifest=None):
    return (manifest or load_manifest(DEFAULT_MANIFEST)).get(dataset_id)


def _recent() -> str:
    """A last successful run a minute ago (after the look-alike's first commits, before any newer one)."""
    return (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(timespec="seconds")


def _check(dataset_id: str, manifest=None, last_success: str | None = None) -> Upstream:
    [result] = check_upstream([_spec(dataset_id, manifest)], get_settings(), last_success={dataset_id: last_success})
    return result


@pytest.mark.parametrize("dataset_id", [UK, KRUITWAGEN, BRADBURY, INDIA, CHINA])
def test_current_until_the_repository_publishes_a_newer_version(repo, dataset_id):
    before = _check(dataset_id, last_success=_recent())
    assert before.status == "current", before
    repo.publish_new_version(dataset_id)
    after = _check(dataset_id, last_success=_recent())
    assert after.status == "newer", after
    assert after.pinned == before.pinned and after.latest != before.latest
    assert NEWER_FIELD[dataset_id] in after.message


def test_newer_reports_the_new_record_and_version(repo):
    repo.publish_new_version(UK)
    repo.publish_new_version(UK)
    uk = _check(UK)
    assert (uk.pinned, uk.latest) == ("4059881", "4061881")
    assert uk.message == "record 4061881 (version 3.0) is newer: set repository.record_id to 4061881 in the manifest"
    repo.publish_new_version(BRADBURY)
    bradbury = _check(BRADBURY)
    assert (bradbury.pinned, bradbury.latest) == ("v4", "v5")
    assert bradbury.message == "v5 is newer: set repository.version to 5 in the manifest"


def test_the_server_answers_like_the_real_apis_after_a_new_version(repo):
    http = urllib3.PoolManager(retries=False, timeout=Timeout(10))
    base = repo.base_url
    repo.publish_new_version(KRUITWAGEN)
    concept = http.request("GET", f"{base}/zenodo/api/records/5005867", redirect=False)
    assert concept.status == 301 and concept.headers["Location"] == f"{base}/zenodo/api/records/5006868"
    latest = http.request("GET", f"{base}/zenodo/api/records/5005868/versions/latest", redirect=False)
    assert latest.status == 302 and latest.headers["Location"] == f"{base}/zenodo/api/records/5006868"
    new, old = (http.request("GET", f"{base}/zenodo/api/records/{r}").json() for r in (5006868, 5005868))
    assert (new["id"], new["metadata"]["version"], new["conceptrecid"]) == (5006868, "2.0", "5005867")
    assert (old["id"], old["metadata"]["version"]) == (5005868, "1.0")  # the pinned record stays as it was
    assert [f["key"] for f in new["files"]] == [f["key"] for f in old["files"]]

    repo.publish_new_version(BRADBURY)
    versions = http.request("GET", f"{base}/figshare/v2/articles/3385780/versions").json()
    assert [v["version"] for v in versions] == [4, 5] and versions[-1]["url"].endswith("/versions/5")
    assert http.request("GET", f"{base}/figshare/v2/articles/3385780").json()["version"] == 5
    assert http.request("GET", f"{base}/figshare/v2/articles/3385780/versions/4").json()["version"] == 4


def test_github_commits_are_filtered_by_path_and_ref(repo):
    http = urllib3.PoolManager(retries=False, timeout=Timeout(10))
    commits = f"{repo.base_url}/github-api/repos/microsoft/solar-farms-mapping/commits"
    path = "data/solar_farms_india_2021_merged_simplified.geojson"
    first = http.request("GET", f"{commits}?sha=main&path={path}").json()
    assert len(first) == 1 and first[0]["commit"]["committer"]["date"] == "2024-01-15T09:30:00Z"
    repo.publish_new_version(INDIA, touching=["README.md"])
    assert http.request("GET", f"{commits}?sha=main&path={path}").json() == first
    assert len(http.request("GET", f"{commits}?sha=main").json()) == 2
    assert http.request("GET", f"{commits}?sha={'0' * 40}").status == 404
    pinned = http.request("GET", f"{commits}?sha={first[0]['sha']}").json()
    assert [c["sha"] for c in pinned] == [first[0]["sha"]]


def test_a_commit_that_does_not_touch_the_selected_path_is_not_newer(repo):
    repo.publish_new_version(INDIA, touching=["README.md"])
    assert _check(INDIA, last_success=_recent()).status == "current"
    repo.publish_new_version(INDIA)
    assert _check(INDIA, last_success=_recent()).status == "newer"


def test_github_never_ingested_is_unknown_and_names_the_newest_commit(repo):
    result = _check(INDIA, last_success=None)
    assert result.status == "unknown" and "never ingested" in result.message and "2024-01-15" in result.message


def test_a_commit_pin_is_newer_when_the_branch_moves_on(repo, tmp_path):
    http = urllib3.PoolManager(retries=False, timeout=Timeout(10))
    api = f"{repo.base_url}/github-api/repos/microsoft/solar-farms-mapping/commits?sha=main"
    sha = http.request("GET", api).json()[0]["sha"]
    manifest = load_manifest(write_manifest(tmp_path / "m.json", lambda raw: next(
        d for d in raw["datasets"] if d["id"] == INDIA)["repository"].update(ref=sha)))
    assert _check(INDIA, manifest).status == "current"
    repo.publish_new_version(INDIA)
    result = _check(INDIA, manifest)
    assert result.status == "newer" and result.pinned == sha[:7]
    newest = http.request("GET", api).json()[0]["sha"]
    assert f"set repository.ref to {newest} in the manifest" in result.message


def test_figshare_without_a_version_pin_follows_the_latest(repo, tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "m.json", lambda raw: next(
        d for d in raw["datasets"] if d["id"] == BRADBURY)["repository"].pop("version")))
    repo.publish_new_version(BRADBURY)
    result = _check(BRADBURY, manifest)
    assert (result.status, result.pinned, result.message) == ("current", "latest", "follows latest (v5)")


def test_plain_urls_are_unknown():
    raw = json.loads(DEFAULT_MANIFEST.read_text())
    raw["datasets"][0]["repository"] = {"type": "url", "urls": ["https://example.org/a.geojson"]}
    spec = parse_manifest(raw).datasets[0]
    result = check_dataset(spec, None, {})
    assert result.status == "unknown" and "no versions" in result.message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def unreachable(monkeypatch):
    base = f"http://127.0.0.1:{_closed_port()}"
    for name in ("ZENODO_URL", "FIGSHARE_API_URL", "GITHUB_API_URL", "GITHUB_RAW_URL"):
        monkeypatch.setenv(f"PVDOI_{name}", base)
    return base


def test_an_unreachable_repository_is_unknown_and_never_raises(unreachable):
    specs = load_manifest(DEFAULT_MANIFEST).datasets
    results = check_upstream(specs, get_settings(), last_success={s.id: _recent() for s in specs})
    assert [r.id for r in results] == [s.id for s in specs]
    assert all(r.status == "unknown" and "check failed" in r.message for r in results), results


def test_server_errors_and_retry_after_give_unknown_without_waiting(repo):
    repo.inject(r"/versions/latest", "status", status=503, times=-1)
    repo.inject(r"/figshare/.*/versions$", "status", status=429, retry_after=3600, times=-1)
    started = time.monotonic()
    uk, bradbury = _check(UK), _check(BRADBURY)
    assert time.monotonic() - started < 15
    assert uk.status == bradbury.status == "unknown"
    assert "503" in uk.message or "too many 503" in uk.message, uk.message
    assert repo.count("/zenodo/api/records/4059881/versions/latest") == 2  # one retry


def test_a_slow_repository_times_out_to_unknown(repo, monkeypatch):
    monkeypatch.setattr(upstream, "TIMEOUT", Timeout(connect=1.0, read=0.3))
    repo.inject(r"/versions/latest", "slow", delay=1.0, times=-1)
    result = _check(UK)
    assert result.status == "unknown" and "timed out" in result.message, result
    time.sleep(1.5)  # let the server's slow answers finish before it stops


class _OddHttp:
    """Answers every request with the same document."""

    def __init__(self, doc):
        self.doc = doc

    def get_json(self, url, **kw):
        return self.doc


@pytest.mark.parametrize("dataset_id", [UK, BRADBURY, INDIA])
@pytest.mark.parametrize("doc", [{"hits": []}, [], [{"version": "four"}], "<html>", [{"sha": "x"}]])
def test_an_unexpected_document_is_unknown(dataset_id, doc):
    urls = get_settings().repository_urls
    result = check_dataset(_spec(dataset_id), _OddHttp(doc), urls, last_success=_recent())
    if dataset_id == INDIA and doc == []:  # an empty commit list is an answer: nothing touches the path
        assert result.status == "unknown" and "no commit" in result.message
        return
    assert result.status == "unknown" and "unexpected document" in result.message, result


def test_the_command_prints_a_line_per_dataset_within_80_columns(repo, workdir):
    data = workdir / "data"
    data.mkdir()
    (data / "dataset_status.json").write_text(json.dumps({d: {"last_success": _recent()} for d in (INDIA, CHINA)}))
    repo.publish_new_version(UK)
    repo.publish_new_version(INDIA)
    result = CliRunner().invoke(app, ["datasets", "check", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # stderr may hold another test's log lines (its handler on the root logger)
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    ids = load_manifest(DEFAULT_MANIFEST).ids
    rows = {line.split()[0]: line.split()[1] for line in lines[:len(ids)]}
    assert rows == {d: "newer" if d in (UK, INDIA) else "current" for d in ids}, lines
    advice = " ".join(line.strip() for line in lines[len(ids):])
    assert "set repository.record_id to 4060881" in advice and "pin repository.ref to a commit sha" in advice

    as_json = CliRunner().invoke(app, ["datasets", "check", "--json", "--data-dir", str(data)])
    assert as_json.exit_code == 0
    assert {e["id"]: e["status"] for e in json.loads(as_json.stdout)} == rows


def test_the_command_exits_0_when_repositories_are_unreachable(unreachable, workdir):
    result = CliRunner().invoke(app, ["datasets", "check"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # stderr may hold another test's log lines (its handler on the root logger)
    ids = load_manifest(DEFAULT_MANIFEST).ids
    assert [line.split()[:2] for line in lines[:len(ids)]] == [[d, "unknown"] for d in ids]
    assert all(len(line) <= 80 for line in lines)


def test_the_command_reads_the_manifest_given_and_names_a_bad_one(repo, workdir):
    copy = write_manifest(workdir / "m.json", lambda raw: next(
        d for d in raw["datasets"] if d["id"] == BRADBURY)["repository"].pop("version"))
    repo.publish_new_version(BRADBURY)
    result = CliRunner().invoke(app, ["datasets", "check", "--manifest", copy])
    assert result.exit_code == 0 and f"{BRADBURY}" in result.stdout
    assert next(line for line in result.stdout.splitlines() if line.startswith(BRADBURY)).split()[1:] == [
        "current", "latest", "(v5)"]
    missing = CliRunner().invoke(app, ["datasets", "check", "--manifest", str(workdir / "nope.json")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_check_lines_cut_long_ids_and_messages():
    long = Upstream("x" * 70, "unknown", None, None, "y" * 200)
    lines = check_lines([long, Upstream("a", "current", "v1", "v1", "v1 is the latest")])
    assert all(len(line) <= 80 for line in lines) and lines[1].split() == ["a", "current", "v1"]


def test_the_run_notes_say_unknown_when_the_check_cannot_run(tmp_path):
    notes = upstream_notes([UK, "nope"], str(tmp_path / "missing.json"), {})
    assert set(notes) == {UK, "nope"} and all(n.startswith("unknown: check failed") for n in notes.values())


@pytest.mark.usefixtures("prefect_api")
def test_every_run_s_status_artifact_carries_the_upstream_line(repo, workdir):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    from flows.ingest_flow import pv_doi_ingest

    repo.publish_new_version(UK)
    state = pv_doi_ingest(datasets=[UK, INDIA], data_dir=str(workdir / "data"), cache_path=str(workdir / "cache"),
                          run_dbt=False, overture=False, return_state=True)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["pv-dataset-status"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    table = artifact.data if isinstance(artifact.data, list) else json.loads(artifact.data)
    notes = {row["dataset"]: row["upstream"] for row in table}
    assert notes[UK] == ("newer: record 4060881 (version 2.0) is newer: set repository.record_id to 4060881 in the "
                         "manifest")
    assert notes[INDIA].startswith("current: follows main; newest commit"), notes[INDIA]  # ingested just now
    kept = json.loads((workdir / "data" / "dataset_status.json").read_text())
    assert {d: kept[d]["upstream"] for d in (UK, INDIA)} == notes


def test_a_run_asks_once_at_its_start_and_judges_a_branch_against_its_own_success(repo):
    """The flow starts the check with its datasets and reads the notes at its end: the repositories are asked once,
    while the run works, and a followed branch is judged against the last success the run itself recorded."""
    check = UpstreamCheck([UK, INDIA, "nope"], str(DEFAULT_MANIFEST))
    first = check.notes({INDIA: None})
    repo.publish_new_version(UK)
    repo.publish_new_version(INDIA)  # both after the run asked: not in its notes
    second = check.notes({INDIA: _recent()})
    assert first[UK] == second[UK] and second[UK].startswith("current: record 4059881")
    assert first[INDIA].startswith("unknown: never ingested") and second[INDIA].startswith("current: follows main")
    assert second["nope"] == "unknown: not in the manifest"
    asked_again = UpstreamCheck([UK, INDIA], str(DEFAULT_MANIFEST)).notes({INDIA: _recent()})
    assert asked_again[UK].startswith("newer") and asked_again[INDIA].startswith("newer"), asked_again
