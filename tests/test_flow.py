"""The Prefect flow under one temporary API: all datasets, retries, partial failure, Retry, warehouse."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.flow_engine import run_flow
from prefect.states import AwaitingRetry

from flows.ingest_flow import pv_doi_ingest
from pvdoi.duckdb_ext import connect

pytestmark = pytest.mark.usefixtures("prefect_api")
TWO = ["ind_pv_solar_farms_2022", "chn_med_res_pv_2024"]


def _params(workdir, **kw) -> dict:
    base = {"data_dir": str(workdir / "data"), "cache_path": str(workdir / "cache"), "run_dbt": False}
    base.update(kw)
    return base


def _rows(workdir) -> dict[str, int]:
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT dataset_id, count(*) FROM raw_data.doi_pv_features GROUP BY 1").fetchall())
    finally:
        con.close()


def _task_runs(flow_run_id) -> dict[str, list[str]]:
    """Per task run name, the final state names of its task runs, oldest first (a Retry adds task runs)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    out: dict[str, list[str]] = {}
    for r in sorted(runs, key=lambda r: r.created):
        out.setdefault(r.name, []).append(r.state.name)
    return out


def test_all_datasets_load_and_reloading_does_not_duplicate(repo, workdir):
    state = pv_doi_ingest(**_params(workdir), return_state=True)
    assert state.is_completed(), state.message
    results = state.result()
    assert set(results) == {"usa_cali_usgs_pv_2016", "uk_crowdsourced_pv_2020", "global_pv_inventory_sent2_spot_2021",
                            "global_harmonized_large_solar_farms_2020", "chn_med_res_pv_2024",
                            "ind_pv_solar_farms_2022"}
    rows = _rows(workdir)
    assert rows == {d: r.counts["written"] for d, r in results.items()}
    again = pv_doi_ingest(**_params(workdir), return_state=True)
    assert again.is_completed() and _rows(workdir) == rows
    with get_client(sync_client=True) as client:  # updated at most every second, always at the end
        [progress] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["pv-ingest-progress"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[again.state_details.flow_run_id])))
    assert float(progress.data) == 100.0
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"), read_only=True)
    catalog = con.execute("SELECT dataset_id, doi, features_written, files FROM raw_data.datasets").fetchall()
    index = con.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'doi_pv_features'").fetchall()
    con.close()
    assert len(catalog) == 6 and index == [("doi_pv_features_geometry_rtree",)]


def test_transient_503_is_retried_and_succeeds(repo, workdir):
    repo.inject(r"/github-raw/microsoft/", "status", status=503, times=2)
    state = pv_doi_ingest(datasets=["ind_pv_solar_farms_2022"], **_params(workdir), return_state=True)
    assert state.is_completed(), state.message
    assert repo.count("/github-raw/microsoft/") == 3


def test_corrupt_file_fails_alone_without_retry_loops_then_retry_reruns_only_it(repo, workdir):
    repo.inject(r"/github-raw/qingfengxitu/.*PV_Test_2015\.dbf", "corrupt", times=-1)
    state = pv_doi_ingest(datasets=TWO, **_params(workdir), return_state=True)
    assert state.is_failed()
    assert "1 of 2 datasets failed: chn_med_res_pv_2024 (ChecksumError" in state.message
    assert "file 'PV_Test_2015.dbf'" in state.message and "expected gitsha1:" in state.message
    assert repo.count("PV_Test_2015.dbf") == 2  # one download and one re-download, then a permanent failure
    assert _rows(workdir) == {"ind_pv_solar_farms_2022": 1363}

    flow_run_id = state.state_details.flow_run_id
    runs = _task_runs(flow_run_id)
    assert runs["ingest-chn_med_res_pv_2024"] == ["Failed"]  # one task run, failed at once: no retries


    repo.clear_faults()
    with get_client(sync_client=True) as client:  # what the UI's Retry button does
        client.set_flow_run_state(flow_run_id, AwaitingRetry(), force=True)
        flow_run = client.read_flow_run(flow_run_id)
    retried = run_flow(pv_doi_ingest, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
    assert retried.is_completed(), retried.message
    runs = _task_runs(flow_run_id)
    assert runs["ingest-ind_pv_solar_farms_2022"] == ["Completed", "Cached"]
    assert runs["ingest-chn_med_res_pv_2024"] == ["Failed", "Completed"]
    assert set(_rows(workdir)) == set(TWO)


def test_invalid_parameters_are_rejected_before_any_work(repo, workdir):
    state = pv_doi_ingest(datasets=["not_a_dataset"], **_params(workdir), return_state=True)
    assert state.is_failed()
    assert "datasets.0: Input should be 'usa_cali_usgs_pv_2016'" in state.message  # names the allowed values
    state = pv_doi_ingest(max_mb=-1, **_params(workdir), return_state=True)
    assert state.is_failed() and "max_mb: Input should be greater than 0" in state.message
    assert not (workdir / "data").exists()


def test_dbt_build_runs_on_the_warehouse_and_a_broken_row_fails_the_named_test(repo, workdir, monkeypatch):
    from tests.test_dbt_project import division_areas
    from tests.overture_release import write_overture_release

    monkeypatch.setenv("PVDOI_OVERTURE_BASE_URL", write_overture_release(workdir / "overture", division_areas()))
    state = pv_doi_ingest(datasets=["ind_pv_solar_farms_2022"], **_params(workdir, run_dbt=True), return_state=True)
    assert state.is_completed(), state.message
    db = str(workdir / "data" / "eo_pv_data.duckdb")
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM prepared.int_installations_unioned").fetchone()[0] == 1363
    assert con.execute("SELECT count(*) FROM curated.installation_shape_metrics").fetchone()[0] == 1363
    # Overture ran between the load and dbt: every Indian solar farm sits in the look-alike India area
    assert con.execute("SELECT country_code, count(*) FROM prepared.int_installations_divisions_assigned "
                       "GROUP BY 1").fetchall() == [("IN", 1363)]
    con.close()

    con = connect(db)  # a row of another dataset that duplicates an existing feature_uid
    con.execute("INSERT INTO raw_data.doi_pv_features SELECT * REPLACE ('chn_med_res_pv_2024' AS dataset_id) "
                "FROM raw_data.doi_pv_features LIMIT 1")
    con.close()
    state = pv_doi_ingest(datasets=["ind_pv_solar_farms_2022"], **_params(workdir, run_dbt=True), return_state=True)
    assert state.is_failed()
    assert state.message.startswith("0 of 1 datasets failed (and 1 later steps): dbt build (DbtBuildError")
    assert "unique_int_installations_unioned_feature_uid" in state.message  # a partial build: the union's test
    assert _rows(workdir) == {"ind_pv_solar_farms_2022": 1363, "chn_med_res_pv_2024": 1}  # raw data stays loaded

    monkeypatch.setenv("PVDOI_OVERTURE_RELEASE", "2025-01-22.0")  # a release the source does not have
    con = connect(db)
    con.execute("DELETE FROM raw_data.doi_pv_features WHERE dataset_id = 'chn_med_res_pv_2024'")
    con.close()
    state = pv_doi_ingest(datasets=["ind_pv_solar_farms_2022"], **_params(workdir, run_dbt=True), return_state=True)
    assert state.is_failed() and "overture divisions (OvertureSourceError" in state.message
    assert "2025-01-22.0" in state.message and "dbt build" not in state.message  # dbt still ran, on the old areas
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM curated.installations WHERE country_code = 'IN'").fetchone()[0] == 1363
    con.close()
