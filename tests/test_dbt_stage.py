"""The dbt stage of the flow: one step, skipped when nothing changed, forced on demand, partial builds equal to full
ones, and its results as artifacts (a failing test named with its message)."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client

from flows.ingest_flow import pv_doi_ingest
from pvdoi.duckdb_ext import connect
from pvdoi.transform import CATALOG_TESTS
from tests.test_dbt_project import assert_same_tables, dbt_tables

pytestmark = pytest.mark.usefixtures("prefect_api")
INDIA, CHINA = "ind_pv_solar_farms_2022", "chn_med_res_pv_2024"
RAW_TESTS = [CATALOG_TESTS]  # selected for their tests


def _run(workdir, **kw):
    params = {"datasets": [INDIA, CHINA], "data_dir": str(workdir / "data"), "cache_path": str(workdir / "cache"),
              "overture": False}
    state = pv_doi_ingest(**{**params, **kw}, return_state=True)
    return state


def _artifact(key: str, flow_run_id):
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert found, f"no artifact {key} in flow run {flow_run_id}"
    return found[0].data


def _builds(workdir) -> list[tuple]:
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"), read_only=True, extensions=())
    try:
        return con.execute("SELECT nodes, selected FROM raw_data.dbt_builds ORDER BY built_at").fetchall()
    finally:
        con.close()


def _tables(workdir) -> dict:
    """Every table of the prepared and curated schemas: columns and rows in a stable order."""
    return dbt_tables(workdir / "data" / "eo_pv_data.duckdb")


def test_nothing_changed_skips_dbt_and_force_builds_again(repo, workdir):
    first = _run(workdir)
    assert first.is_completed(), first.message
    assert "dbt build: built" in _artifact("pv-dbt-build", first.state_details.flow_run_id)
    nodes = _artifact("pv-dbt-build-nodes", first.state_details.flow_run_id)
    rows = json.loads(nodes) if isinstance(nodes, str) else nodes
    assert {r["kind"] for r in rows} >= {"model", "test"} and all(r["status"] in ("success", "pass") for r in rows)
    assert len(_builds(workdir)) == 1 and _builds(workdir)[0][1] is None  # a full build

    second = _run(workdir)
    assert second.is_completed(), second.message
    summary = _artifact("pv-dbt-build", second.state_details.flow_run_id)
    assert "dbt build: skipped" in summary and "nothing changed" in summary
    assert len(_builds(workdir)) == 1  # dbt was not invoked: no second build recorded

    forced = _run(workdir, force_dbt=True)
    assert forced.is_completed(), forced.message
    assert "forced" in _artifact("pv-dbt-build", forced.state_details.flow_run_id)
    assert [b[1] for b in _builds(workdir)] == [None, None]


def test_one_changed_dataset_rebuilds_what_depends_on_it_and_equals_a_full_build(repo, workdir):
    assert _run(workdir).is_completed()
    india = next(p for p in (repo.files_dir / INDIA).iterdir() if p.suffix == ".geojson")
    doc = json.loads(india.read_bytes())
    doc["features"] = doc["features"][:100]
    repo.replace_file(INDIA, india.name, json.dumps(doc).encode())

    changed = _run(workdir)
    assert changed.is_completed(), changed.message
    [(_, selected)] = _builds(workdir)[1:]
    assert selected == "stg_doi__installations+ " + " ".join(RAW_TESTS)  # the generic staging and what depends on it
    partial = _tables(workdir)
    assert 100 < len(partial["prepared.int_installations_unioned"][1])
    india_rows = sum(1 for r in partial["curated.installations"][1] if INDIA in r)
    assert india_rows == 100  # the incremental models deleted India's old rows and inserted its new ones
    dbt_log = (workdir / "data" / "dbt_target" / "logs" / "dbt.log").read_text()
    assert dbt_log.count("Unable to do partial parsing") == 1  # the first build's; the partial one kept its parse

    assert _run(workdir, force_dbt=True).is_completed()  # --full-refresh: every table rebuilt whole
    assert_same_tables(partial, _tables(workdir))


def test_a_failing_test_is_named_in_the_artifact_and_the_run_fails(repo, workdir):
    assert _run(workdir).is_completed()
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"))  # a duplicated feature_uid in another dataset
    con.execute(f"INSERT INTO raw_data.doi_pv_features SELECT * REPLACE ('{CHINA}' AS dataset_id) "
                f"FROM raw_data.doi_pv_features WHERE dataset_id = '{INDIA}' LIMIT 1")
    con.close()
    state = _run(workdir, datasets=[INDIA])  # China is not loaded again: the row stays
    # a partial build: the raw rows' tests are the union's (pvdoi.transform.CATALOG_TESTS), which holds the row
    assert state.is_failed() and "unique_int_installations_unioned_feature_uid" in state.message
    nodes = _artifact("pv-dbt-build-nodes", state.state_details.flow_run_id)
    rows = json.loads(nodes) if isinstance(nodes, str) else nodes
    assert rows[0]["status"] == "fail" and rows[0]["node"] == "unique_int_installations_unioned_feature_uid"
    assert "Got 1 result" in rows[0]["message"]
    assert len(_builds(workdir)) == 1  # a failed build is not recorded: the next run builds again


def test_the_skip_check_notices_a_new_geoparquet_file_with_as_many_rows(repo, workdir):
    """What a build is recorded as built from is each dataset's loaded file (catalog SHA-256 and load time) and row
    count, not a hash of every row: a file whose rows changed but not their number is still built again."""
    from flows.dataflow import run_dataset
    from pvdoi.settings import get_settings
    from pvdoi.transform import DbtBuild, build_inputs, dbt_vars, plan_build, record_build
    from pvdoi.warehouse import ensure_division_areas_table, load_datasets, warehouse

    database, manifest_vars = str(workdir / "w.duckdb"), dbt_vars(get_settings().manifest_path)
    before = run_dataset(INDIA)
    with warehouse(database) as con:
        load_datasets(con, [before])
    ensure_division_areas_table(database)
    record_build(database, DbtBuild("built", "", inputs=build_inputs(database, manifest_vars)))
    assert plan_build(database, build_inputs(database, manifest_vars)) == ("skip", None, None)

    india = next(p for p in (repo.files_dir / INDIA).iterdir() if p.suffix == ".geojson")
    doc = json.loads(india.read_bytes())
    doc["features"][0]["properties"] = {k: "changed" if isinstance(v, str) else v
                                        for k, v in doc["features"][0]["properties"].items()}
    repo.replace_file(INDIA, india.name, json.dumps(doc).encode())
    after = run_dataset(INDIA)
    assert after.geoparquet.rows == before.geoparquet.rows and after.geoparquet.sha256 != before.geoparquet.sha256
    with warehouse(database) as con:
        assert load_datasets(con, [after])[0]["loaded"]
    reason, select, changed = plan_build(database, build_inputs(database, manifest_vars))
    assert (select, changed) == (["stg_doi__installations+", *RAW_TESTS], [INDIA]), reason


def test_a_changed_dataset_with_a_model_of_its_own_selects_that_model(tmp_path):
    """plan_build alone: the generic staging for the manifest's other datasets, a dbt_model for the one naming it."""
    from pvdoi.transform import DbtBuild, plan_build, record_build

    database = str(tmp_path / "w.duckdb")
    con = connect(database, extensions=())
    con.execute("CREATE SCHEMA raw_data")
    con.close()
    own = [{"id": "plain", "attributes": [], "dbt_model": None}, {"id": "special", "attributes": [],
                                                                  "dbt_model": "stg_special__installations"}]
    built = {"datasets": {"plain": [1], "special": [1]}, "overture": [], "project": "p", "vars": {"pv_datasets": own}}
    record_build(database, DbtBuild("built", "", inputs=built))
    assert plan_build(database, built) == ("skip", None, None)
    _, select, changed = plan_build(database, {**built, "datasets": {"plain": [1], "special": [2]}})
    assert select == ["stg_special__installations+", *RAW_TESTS] and changed == ["special"]
    _, select, changed = plan_build(database, {**built, "datasets": {"plain": [2], "special": [2]}})
    assert select == ["stg_doi__installations+", "stg_special__installations+", *RAW_TESTS]
    assert changed == ["plain", "special"]
    _, select, changed = plan_build(database, {**built, "datasets": {"special": [1]}})  # plain's rows left
    assert select == ["int_installations_unioned+", *RAW_TESTS] and changed == ["plain"]
    _, select, changed = plan_build(database, {**built, "datasets": {"plain": [2], "special": [1]}, "overture": [1]})
    # new areas: their tests, and every installation's country and region again
    assert "source:raw_data.overture_division_areas+" in select and changed is None
    reason, select, changed = plan_build(database, {**built, "project": "q"})
    assert "project" in reason and select is None  # a full build (--full-refresh)
