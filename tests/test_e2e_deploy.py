"""End to end on loopback: a real Prefect server, ``prefect deploy --all``, a process worker and the UI in Chromium.

The scenario a user lives through: deploy with ``deployments/deploy.sh``; start ``ingest-datasets`` for two
datasets from the UI's Run form; a repository fault fails one dataset, the run ends Failed naming it and the
failed-run automation's webhook says so; the fault is gone, Retry is pressed in the UI and only the failed
dataset runs again while the other comes back Cached; the run's task runs and the status artifact are seen
in the UI. Then the same deployments are served by ``deployments/serve.py`` without a work pool. The server,
the worker and ``serve.py`` are stopped by their process ids (process groups), also when a test fails.

Select or skip with ``-m e2e`` / ``-m "not e2e"``. Screenshots: the test's ``tmp_path`` and ``test-output/e2e/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from pvdoi.duckdb_ext import connect
from pvdoi.manifest import load_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).with_name("prefect"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
POOL, FLOW = "pvdoi-process", "pv-doi-ingest"
DEPLOYMENTS = ("ingest-all", "ingest-datasets", "refresh-force", "ingest-all-dask")
DASK = str(Path(sys.executable).with_name("dask"))
OK, FAILING = "ind_pv_solar_farms_2022", "chn_med_res_pv_2024"
FAULT = r"/github-api/repos/qingfengxitu/"  # the repository API of FAILING: re-read on every run
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SCREENSHOTS = ROOT / "test-output" / "e2e"


# -- processes ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else f"({path} missing)"


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``cmd`` in a session (process group) of its own, output to ``log``."""
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _stop(proc: subprocess.Popen, what: str) -> None:
    """Stop ``proc`` and its children by its process group id: SIGTERM, then SIGKILL after 20 s."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    assert proc.poll() is not None, f"{what} (pid {proc.pid}) did not stop"


def _run(cmd: list[str], env: dict[str, str], log: Path, timeout: float = 300) -> str:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{_tail(log)}"
    return done.stdout


# -- the Prefect REST API ---------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    env: dict[str, str]  # the settings that point a Prefect process at this server
    out: Path
    http: httpx.Client

    @property
    def ui(self) -> str:
        return f"{self.url}/v2"  # the UI a browser gets at "/" (Prefect 3.8 defaults to the V2 UI)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One API call, repeated on 503 as Prefect's own client does (SQLite's "database is locked" under load)."""
        for attempt in range(1, 7):
            r = self.http.request(method, path, **kwargs)
            if r.status_code != 503:
                break
            time.sleep(0.5 * attempt)
        return r

    def get(self, path: str):
        r = self.request("GET", path)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict, *, ok: bool = True):
        r = self.request("POST", path, json=body)
        if ok:
            assert r.is_success, f"POST {path}: {r.status_code} {r.text}"
        return r

    def deployment(self, name: str) -> dict:
        return self.get(f"/deployments/name/{FLOW}/{name}")

    def wait_run(self, flow_run_id: str, timeout: float = 300) -> dict:
        """The flow run once in a terminal state."""
        deadline, run = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            run = self.get(f"/flow_runs/{flow_run_id}")
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {flow_run_id} still {run.get('state_name')} after {timeout} s:\n"
                             f"{_tail(self.out / 'worker.log')}")

    def task_runs(self, flow_run_id: str) -> dict[str, list[str]]:
        """Per task run name, the state names of its task runs, oldest first (a Retry adds task runs)."""
        runs = self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}}).json()
        out: dict[str, list[str]] = {}
        for r in sorted(runs, key=lambda r: r["created"]):
            out.setdefault(r["name"], []).append(r["state_name"])
        return out

    def artifact(self, key: str, flow_run_id: str) -> list[dict]:
        """The data of the newest artifact ``key`` created by the flow run."""
        found = self.post("/artifacts/filter", {"artifacts": {"key": {"any_": [key]},
                                                              "flow_run_id": {"any_": [flow_run_id]}},
                                                "sort": "CREATED_DESC", "limit": 1}).json()
        assert found, f"flow run {flow_run_id} made no artifact {key!r}"
        data = found[0]["data"]
        return json.loads(data) if isinstance(data, str) else data


def _upcoming(server: Server, deployment: dict, timeout: float = 120) -> list[tuple[datetime, dict]]:
    """(expected start, parameters) of the deployment's scheduled runs, once the scheduler has made some."""
    deadline = time.monotonic() + timeout
    while True:
        runs = server.post("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}},
                                                 "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).json()
        if runs:
            return [(datetime.fromisoformat(r["expected_start_time"]), r["parameters"]) for r in runs]
        assert time.monotonic() < deadline, (f"no scheduled run of {deployment['name']} after {timeout} s:\n"
                                             f"{_tail(server.out / 'server.log')}")
        time.sleep(1)


def _rows(database: Path) -> dict[str, int]:
    con = connect(str(database), read_only=True)
    try:
        return dict(con.execute("SELECT dataset_id, count(*) FROM raw_data.doi_pv_features GROUP BY 1").fetchall())
    finally:
        con.close()


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """Logs, data and the Prefect home of this module's run (and a clean test-output/e2e/)."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def server(out) -> Iterator[Server]:
    """``prefect server start`` on a free loopback port with its own PREFECT_HOME, healthy."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # nothing of the test session's
    env.update(PREFECT_HOME=str(out / "prefect-home"), PREFECT_API_URL=f"{url}/api", DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="true",
               PREFECT_API_LOG_RETRYABLE_ERRORS="true",  # SQLite "database is locked" answers (503) in server.log
               PREFECT_LOGGING_EXTRA_LOGGERS="hamilton,pvdoi", DBT_USE_COLORS="false")
    log = out / "server.log"
    proc = _start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log)
    http = httpx.Client(base_url=f"{url}/api", timeout=30)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"prefect server start exited {proc.returncode}:\n{_tail(log)}"
            try:
                if http.get("/health").json() is True:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the server was not healthy after 180 s:\n{_tail(log)}"
            time.sleep(0.5)
        yield Server(url, env, out, http)
    finally:
        http.close()
        _stop(proc, "prefect server")


@pytest.fixture(scope="module")
def repo_e2e(lookalike_dir):
    """The local repository server the flow runs download from (faults injected from the test)."""
    from pvdoi.testing.reposerver import RepoServer

    with RepoServer(lookalike_dir) as repo:
        yield repo


@pytest.fixture(scope="module")
def run_env(server, repo_e2e, out) -> dict[str, str]:
    """The environment of the worker (and so of its flow runs): the server, the repository, the outputs."""
    return {**server.env, **repo_e2e.env(), "PVDOI_DATA_DIR": str(out / "data"), "PVDOI_CACHE_PATH": str(out / "cache"),
            "PVDOI_HTTP_BACKOFF_FACTOR": "0.01", "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT": PREFECT,
            "PVDOI_DASK_ADDRESS": ""}  # unset in the worker (else every deployment goes to Dask) and for deploy.sh


@pytest.fixture()
def deployed(server, run_env, out) -> dict[str, dict]:
    """``deployments/deploy.sh`` (work pool + ``prefect --no-prompt deploy --all``) run from a fresh shell."""
    _run(["bash", "deployments/deploy.sh"], run_env, out / "deploy.log")
    return {name: server.deployment(name) for name in DEPLOYMENTS}


@pytest.fixture(scope="module")
def worker(server, run_env, out) -> Iterator[subprocess.Popen]:
    """``deployments/worker.sh``: a process worker polling the pool, registered with the server."""
    log = out / "worker.log"
    proc = _start(["bash", "deployments/worker.sh"], run_env, log)
    try:
        deadline = time.monotonic() + 120
        while not ((r := server.post(f"/work_pools/{POOL}/workers/filter", {}, ok=False)).is_success and r.json()):
            assert proc.poll() is None, f"the worker exited {proc.returncode}:\n{_tail(log)}"
            assert time.monotonic() < deadline, f"no worker registered after 120 s:\n{_tail(log)}"
            time.sleep(0.5)
        yield proc
    finally:
        _stop(proc, "prefect worker")


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP endpoint collecting the JSON bodies POSTed to it (the notification block's target)."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "chromium is missing: run ./scripts/test.sh (installs Debian's chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def _page(browser, shots: Path, name: str):
    """A fresh page; on an error, a screenshot of where it stood (``<name>-error.png``)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    except BaseException:
        _shot(page, shots, f"{name}-error")
        raise
    finally:
        context.close()


def _click_for_response(page, button, url_suffix: str, attempts: int = 3):
    """Click ``button`` and return the API response it causes; press again on a 503 as a person would.

    The UI does not retry: a 503 is Prefect's answer to SQLite's "database is locked" under load.
    """
    for _ in range(attempts):
        with page.expect_response(lambda r: r.url.endswith(url_suffix) and r.request.method == "POST") as caught:
            button.click()
        if caught.value.status != 503:
            return caught.value
        time.sleep(1)
    return caught.value


def _shot(page, shots: Path, name: str) -> Path:
    """A full-page screenshot under the test's output, copied to test-output/e2e/ for people to look at."""
    path = shots / f"{name}.png"
    try:
        page.wait_for_load_state("networkidle", timeout=5_000)  # let the run graph draw
    except Exception:  # the UI polls; a busy page is screenshot as it is
        pass
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)
    return path


# -- the tests ------------------------------------------------------------------------------------
def test_deploy_all_creates_the_four_deployments(server, deployed):
    manifest_ids = load_manifest(str(ROOT / "doi_manifest.json")).ids
    spec = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    assert set(deployed) == set(spec)
    for name, d in deployed.items():
        assert d["entrypoint"] == "flows.ingest_flow:pv_doi_ingest" and d["work_pool_name"] == POOL
        assert d["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        assert d["global_concurrency_limit"]["limit"] == 1  # one writer: the next run waits (ENQUEUE)
        assert d["concurrency_options"]["collision_strategy"] == "ENQUEUE"
        assert d["enforce_parameter_schema"] is True
        datasets = d["parameter_openapi_schema"]["properties"]["datasets"]["anyOf"][0]
        assert datasets["type"] == "array" and datasets["items"]["enum"] == list(manifest_ids)  # the UI's multi-select
        crons = [(s["schedule"]["cron"], s["active"]) for s in d["schedules"]]
        assert crons == [(s["cron"], True) for s in spec[name]["schedules"]]
    assert len(deployed["ingest-all"]["schedules"]) == 1 and deployed["ingest-datasets"]["schedules"] == []
    assert deployed["refresh-force"]["parameters"] == {"force_download": True}
    # the Dask variant: on demand, a temporary local cluster of two workers unless PVDOI_DASK_ADDRESS named one
    assert deployed["ingest-all-dask"]["parameters"] == {"dask_address": "local:2"}
    assert deployed["ingest-all-dask"]["schedules"] == [] and "dask" in deployed["ingest-all-dask"]["tags"]
    # the server's scheduler makes the upcoming runs: nightly at 02:30 UTC, Sundays at 04:00 UTC forced
    nightly, weekly = _upcoming(server, deployed["ingest-all"]), _upcoming(server, deployed["refresh-force"])
    assert {(t.hour, t.minute) for t, _ in nightly} == {(2, 30)} and all(p == {} for _, p in nightly)
    assert {(t.weekday(), t.hour, t.minute) for t, _ in weekly} == {(6, 4, 0)}
    assert all(p == {"force_download": True} for _, p in weekly)

    pool = server.get(f"/work_pools/{POOL}")
    assert pool["type"] == "process" and pool["concurrency_limit"] == 1

    # enforce_parameter_schema: the server refuses bad parameters before any run exists
    bad = server.post(f"/deployments/{deployed['ingest-datasets']['id']}/create_flow_run",
                      {"parameters": {"datasets": ["not_a_dataset"]}}, ok=False)
    assert bad.status_code == 409 and "Validation failed for field 'datasets[0]'" in bad.text
    assert "'not_a_dataset' is not one of" in bad.text and OK in bad.text  # names the allowed values
    bad = server.post(f"/deployments/{deployed['ingest-datasets']['id']}/create_flow_run",
                      {"parameters": {"max_mb": 0}}, ok=False)
    assert bad.status_code == 409 and "Validation failed for field 'max_mb'" in bad.text


def test_run_from_the_ui_fail_retry_in_the_ui_and_watch(server, deployed, worker, run_env, repo_e2e, webhook,
                                                        browser, out, tmp_path):
    deployment_id = deployed["ingest-datasets"]["id"]
    hook_url, notifications = webhook
    _pause_schedules(server, deployed)
    _run([sys.executable, "deployments/alerts.py", "--webhook-url", hook_url], run_env, out / "alerts.log")

    # 1. the UI's Run form: two datasets from the multi-select, dbt off, submit
    with _page(browser, tmp_path, "run-form") as page:
        page.goto(f"{server.ui}/deployments/deployment/{deployment_id}/run")
        page.get_by_role("tab", name="list").first.click()  # datasets: a list instead of None (= all)
        page.get_by_text("Select", exact=True).click()  # the multi-select of the manifest's ids
        options = page.get_by_role("option")
        options.first.wait_for()
        assert options.all_inner_texts() == list(load_manifest(str(ROOT / "doi_manifest.json")).ids)
        for dataset_id in (OK, FAILING):
            page.get_by_role("option", name=dataset_id, exact=True).click()
        page.keyboard.press("Escape")
        run_dbt = page.locator("xpath=//*[normalize-space(text())='run_dbt (Optional)']"
                               "/ancestor::*[.//button[@role='switch']][1]//button[@role='switch']")
        run_dbt.click()
        assert run_dbt.get_attribute("aria-checked") == "false"
        _shot(page, tmp_path, "1-run-form")
        created = _click_for_response(page, page.get_by_role("button", name="Submit"), "/create_flow_run")
        assert created.status == 201, created.text()
        first = created.json()
    assert sorted(first["parameters"]["datasets"]) == sorted([OK, FAILING]) and first["parameters"]["run_dbt"] is False

    run = server.wait_run(first["id"])
    assert run["state_type"] == "COMPLETED", run["state"]["message"]
    written = {r["dataset"]: r["rows_written"] for r in server.artifact("pv-ingest-run", first["id"])}
    assert _rows(out / "data" / "eo_pv_data.duckdb") == written and set(written) == {OK, FAILING}
    assert all(n > 0 for n in written.values())

    # 2. a server fault on FAILING's repository: the run fails and names it, the automation notifies
    repo_e2e.inject(FAULT, "status", status=503, times=-1)
    second = server.post(f"/deployments/{deployment_id}/create_flow_run",
                         {"parameters": {"datasets": [OK, FAILING], "run_dbt": False}}).json()
    run = server.wait_run(second["id"])
    message = run["state"]["message"]
    assert run["state_type"] == "FAILED" and message.startswith(f"1 of 2 datasets failed: {FAILING} ("), message
    assert "503" in message, message
    runs = server.task_runs(second["id"])
    assert runs[f"ingest-{OK}"] == ["Completed"] and runs[f"ingest-{FAILING}"] == ["Failed"]  # retried inside one run
    deadline = time.monotonic() + 60
    while not any(second["name"] in n["subject"] for n in notifications) and time.monotonic() < deadline:
        time.sleep(0.5)
    note = next((n for n in notifications if second["name"] in n["subject"]), None)
    assert note is not None, f"no notification for {second['name']} within 60 s; got {notifications}"
    assert note["subject"] == f"pv-doi-ingest: run {second['name']} Failed" and message in note["body"]

    # 3. the fault is fixed; Retry pressed in the UI: the same flow run, AwaitingRetry, only FAILING runs again
    repo_e2e.clear_faults()
    with _page(browser, tmp_path, "retry") as page:
        page.goto(f"{server.ui}/runs/flow-run/{second['id']}?tab=Details")
        page.get_by_text("Failed", exact=True).first.wait_for()
        page.get_by_text(f"1 of 2 datasets failed: {FAILING} (", exact=False).first.wait_for()  # the state message
        _shot(page, tmp_path, "2-failed-run")
        page.get_by_role("button", name="Open menu").first.click()
        page.get_by_role("menuitem", name="Retry").click()
        dialog = page.get_by_role("alertdialog")
        dialog.get_by_text("AwaitingRetry").wait_for()
        _shot(page, tmp_path, "3-retry-dialog")
        retried = _click_for_response(page, dialog.get_by_role("button", name="Retry"),
                                      f"/flow_runs/{second['id']}/set_state")
        assert retried.ok and retried.json()["state"]["name"] == "AwaitingRetry", retried.text()
    run = server.wait_run(second["id"])
    assert run["state_type"] == "COMPLETED", run["state"]["message"]
    assert run["run_count"] == 2
    runs = server.task_runs(second["id"])
    assert runs[f"ingest-{OK}"] == ["Completed", "Cached"]  # not executed again
    assert runs[f"ingest-{FAILING}"] == ["Failed", "Completed"]  # the only dataset that ran again
    assert _rows(out / "data" / "eo_pv_data.duckdb") == written
    status = {r["dataset"]: r for r in server.artifact("pv-dataset-status", second["id"])}
    assert status[FAILING]["last_status"] == "completed" and status[FAILING]["rows"] == written[FAILING]
    assert status[OK]["last_status"] == "completed" and status[OK]["source_checksums"]

    # 4. what the UI shows for the retried run: the dataset task runs, the status artifact
    with _page(browser, tmp_path, "watch") as page:
        page.goto(f"{server.ui}/runs/flow-run/{second['id']}?tab=TaskRuns")
        for name in (f"ingest-{OK}", f"ingest-{FAILING}"):
            page.get_by_text(name, exact=True).first.wait_for()
        page.get_by_text("Cached", exact=True).first.wait_for()
        page.get_by_text("Completed", exact=True).first.wait_for()
        _shot(page, tmp_path, "4-retried-run-task-runs")
        page.goto(f"{server.ui}/runs/flow-run/{second['id']}?tab=Artifacts")
        for key in ("pv-dataset-status", "pv-ingest-run"):
            page.get_by_text(key, exact=True).first.wait_for()
        _shot(page, tmp_path, "5-retried-run-artifacts")
        page.goto(f"{server.ui}/artifacts/key/pv-dataset-status")
        page.get_by_text("State of each dataset across runs").first.wait_for()
        page.get_by_role("link").filter(has_text=second["name"]).first.wait_for()
        page.locator("main a[href*='/artifacts/artifact/']").first.click()  # the newest version
        table = page.get_by_role("table")
        for text in ("dataset", "last_status", "last_success", "rows", "source_checksums", "cache_hits", OK, FAILING):
            table.get_by_text(text, exact=True).first.wait_for()
        page.set_viewport_size({"width": 2200, "height": 1000})
        _shot(page, tmp_path, "6-dataset-status-artifact")
        table.evaluate("t => { for (let e = t; e; e = e.parentElement) if (e.scrollWidth > e.clientWidth) "
                       "{ e.scrollLeft = e.scrollWidth; break; } }")  # the columns right of the long checksums
        _shot(page, tmp_path, "7-dataset-status-artifact-right")


def _pause_schedules(server: Server, deployed: dict[str, dict]) -> None:
    """No nightly or weekly run may cut in (the pool runs one at a time)."""
    for name in ("ingest-all", "refresh-force"):
        assert server.request("PATCH", f"/deployments/{deployed[name]['id']}", json={"paused": True}).is_success


def test_the_dask_variant_sends_its_dataset_tasks_to_a_dask_scheduler_and_worker(server, worker, run_env, out):
    """README's set-up: ``dask scheduler``, a ``dask worker --nthreads 1`` with the project on its path and the run's
    settings in its environment, the variant deployed with ``PVDOI_DASK_ADDRESS`` naming the scheduler; a run of
    ``ingest-all-dask`` on the work pool's worker sends its dataset tasks through that scheduler and loads them in the
    flow run."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask_env = {**run_env, "PYTHONPATH": str(ROOT)}  # the same code as the flow run's
    scheduler = _start([DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                        "--no-dashboard"], dask_env, out / "dask-scheduler.log")
    dask_worker = _start([DASK, "worker", address, "--nthreads", "1", "--no-dashboard", "--local-directory",
                          str(out / "dask-worker")], dask_env, out / "dask-worker.log")
    try:
        _run([PREFECT, "--no-prompt", "deploy", "--name", "ingest-all-dask"], {**run_env, "PVDOI_DASK_ADDRESS": address},
             out / "deploy-dask.log")  # deploy.sh deploys --all the same way
        deployment = server.deployment("ingest-all-dask")
        assert deployment["parameters"] == {"dask_address": address}
        flow_run = server.post(f"/deployments/{deployment['id']}/create_flow_run",
                               {"parameters": {"datasets": [OK], "run_dbt": False}}).json()
        run = server.wait_run(flow_run["id"], timeout=240)
        assert run["state_type"] == "COMPLETED", f"{run['state']['message']}\n{_tail(out / 'dask-worker.log')}"
        assert server.task_runs(flow_run["id"])[f"ingest-{OK}"] == ["Completed"]
        logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}}).json()
        assert any(m["message"].startswith(f"dataset tasks on the Dask cluster at {address}") for m in logs)
        from distributed import Client

        with Client(address, timeout=30) as client:  # the scheduler ran the task
            assert "ingest_dataset" in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        written = {r["dataset"]: r["rows_written"] for r in server.artifact("pv-ingest-run", flow_run["id"])}
        assert written[OK] > 0 and _rows(out / "data" / "eo_pv_data.duckdb")[OK] == written[OK]
    finally:
        _stop(dask_worker, "dask worker")
        _stop(scheduler, "dask scheduler")


def test_serve_runs_the_same_deployments_without_a_work_pool(server, deployed, repo_e2e, run_env, out):
    refused = subprocess.run([sys.executable, "deployments/serve.py"], env=run_env, cwd=ROOT, capture_output=True,
                             text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "is deployed to the work pool 'pvdoi-process'" in refused.stderr, refused.stderr
    log = out / "serve.log"
    proc = _start([sys.executable, "deployments/serve.py", "--replace"], run_env, log)
    try:
        deadline = time.monotonic() + 120
        while True:  # serve.py registers the deployments of prefect.yaml, without the work pool
            assert proc.poll() is None, f"serve.py exited {proc.returncode}:\n{_tail(log)}"
            assert time.monotonic() < deadline, f"serve.py registered not all after 120 s:\n{_tail(log)}"
            found = [server.request("GET", f"/deployments/name/{FLOW}/{name}") for name in DEPLOYMENTS]
            if all(f.is_success and f.json()["work_pool_name"] is None for f in found):
                break
            time.sleep(0.5)
        served = {n: server.deployment(n) for n in DEPLOYMENTS}
        assert [s["schedule"]["cron"] for s in served["ingest-all"]["schedules"]] == ["30 2 * * *"]
        assert served["refresh-force"]["parameters"] == {"force_download": True}
        assert served["ingest-all-dask"]["parameters"] == {"dask_address": "local:2"}  # as deploy.sh's default
        assert {d["entrypoint"] for d in served.values()} == {"flows.ingest_flow.pv_doi_ingest"}  # a module path
        assert all(d["global_concurrency_limit"]["limit"] == 1 for d in served.values())
        flow_run = server.post(f"/deployments/{served['ingest-datasets']['id']}/create_flow_run",
                               {"parameters": {"datasets": [OK], "run_dbt": False}}).json()
        run = server.wait_run(flow_run["id"], timeout=180)
        assert run["state_type"] == "COMPLETED", f"{run['state']['message']}\n{_tail(log)}"
        assert server.task_runs(flow_run["id"])[f"ingest-{OK}"] == ["Completed"]
    finally:
        _stop(proc, "serve.py")
