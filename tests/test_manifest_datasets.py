"""A dataset the product has never seen flows from one manifest entry to the curated models, and a dataset taken out
of the manifest leaves them: no edit anywhere else.

The new dataset is a second entry for the files of the India look-alike (the local repository server serves them),
under a new id and with one declared attribute of its own. Its polygons are India's, so cross-dataset matching pairs
every one of them with its twin.
"""

from __future__ import annotations

import json

import pytest

from pvdoi import DEFAULT_MANIFEST
from pvdoi.duckdb_ext import connect

pytestmark = pytest.mark.usefixtures("prefect_api")
NEW = "never_seen_solar_farms_2031"
TWIN = "ind_pv_solar_farms_2022"


def _manifest(path, *, with_new: bool) -> str:
    raw = json.loads(DEFAULT_MANIFEST.read_text())
    twin = next(d for d in raw["datasets"] if d["id"] == TWIN)
    new = {**twin, "id": NEW, "title": "A dataset the product has never seen",
           "attributes": [{"name": "state_upper", "type": "text", "json_key": "State", "transform": "upper",
                           "description": "The state in capitals."}]}
    raw["datasets"] = [twin, new] if with_new else [twin]
    path.write_text(json.dumps(raw))
    return str(path)


def _query(workdir, sql: str) -> list[tuple]:
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _run(workdir, monkeypatch, manifest: str):
    from flows.ingest_flow import pv_doi_ingest

    monkeypatch.setenv("PVDOI_MANIFEST_PATH", manifest)
    return pv_doi_ingest(datasets=None, data_dir=str(workdir / "data"), cache_path=str(workdir / "cache"),
                         run_dbt=True, overture=False, return_state=True)  # None: every dataset of the manifest


def test_a_new_manifest_entry_reaches_the_curated_models_and_a_removed_one_leaves_them(repo, workdir, monkeypatch):
    state = _run(workdir, monkeypatch, _manifest(workdir / "with_new.json", with_new=True))
    assert state.is_completed(), state.message
    [(rows, states, same)] = _query(workdir, f"""
        select count(*), count(state_upper), count(*) filter (where state_upper = upper(source_attributes ->> 'State'))
        from staging.stg_doi__installations where dataset_id = '{NEW}'""")
    assert rows == states == same > 100
    assert _query(workdir, f"select count(state_upper) from staging.stg_doi__installations "
                           f"where dataset_id = '{TWIN}'") == [(0,)]  # an attribute of the new dataset only
    [(curated,)] = _query(workdir, f"select count(*) from curated.installations where dataset_id = '{NEW}'")
    assert curated == rows
    [(installations, reconciled)] = _query(workdir, f"select n_installations, is_count_reconciled "
                                                    f"from curated.dataset_summary where dataset_id = '{NEW}'")
    assert (installations, reconciled) == (rows, True)
    [(matched,)] = _query(workdir, f"""
        select count(*) from prepared.int_installations_cross_dataset_matched
        where dataset_id_a = '{TWIN}' and dataset_id_b = '{NEW}'""")  # every polygon meets its twin
    assert matched >= rows

    state = _run(workdir, monkeypatch, _manifest(workdir / "without_new.json", with_new=False))
    assert state.is_completed(), state.message  # its rows stay in raw_data: a warning, not a failure
    for table in ("curated.installations", "curated.dataset_summary", "prepared.int_installations_unioned",
                  "staging.stg_doi__installations"):
        assert _query(workdir, f"select count(*) from {table} where dataset_id = '{NEW}'") == [(0,)], table
    assert _query(workdir, "select count(*) from prepared.int_installations_cross_dataset_matched") == [(0,)]
    columns = {c for (c,) in _query(workdir, "select column_name from (describe curated.installations)")}
    assert "state_upper" not in columns and "state_name" in columns
    assert _query(workdir, f"select count(*) from raw_data.doi_pv_features where dataset_id = '{NEW}'") == [(rows,)]
