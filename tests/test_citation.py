"""Citations and licences: each record's metadata as references (BibTeX, CSL-JSON), and where they are kept after a
run (raw_data.datasets, each GeoParquet file's metadata, curated.dataset_summary), and ``pvdoi cite``."""

from __future__ import annotations

import json
import os

import pytest
from pybtex.database import parse_string
from typer.testing import CliRunner

from flows.cli import app
from pvdoi import DEFAULT_MANIFEST
from pvdoi.citation import bibtex, csl_json, reference
from pvdoi.duckdb_ext import connect
from pvdoi.errors import WarehouseError
from pvdoi.features.geoparquet import file_reference
from pvdoi.http import Http
from pvdoi.manifest import DatasetSpec, load_manifest
from pvdoi.records import RecordInfo
from pvdoi.repositories import resolve_files
from pvdoi.settings import get_settings

runner = CliRunner()
# what the local repository server publishes for each kind of repository (pvdoi/testing/repo_api.py)
EXPECTED = {
    "uk_crowdsourced_pv_2020": ("10.5281/zenodo.4059881", "Zenodo", 2020, "Stowell", "CC-BY-4.0"),
    "global_pv_inventory_sent2_spot_2021": ("10.5281/zenodo.5005868", "Zenodo", 2021, "Kruitwagen", "CC-BY-4.0"),
    "usa_cali_usgs_pv_2016": ("10.6084/m9.figshare.3385780.v4", "figshare", 2016, "Bradbury", "CC0-1.0"),
    "ind_pv_solar_farms_2022": (None, "GitHub", 2021, "microsoft", "MIT"),
    "chn_med_res_pv_2024": (None, "GitHub", 2023, "qingfengxitu", "unspecified"),
}
LOADED = ["ind_pv_solar_farms_2022", "uk_crowdsourced_pv_2020", "usa_cali_usgs_pv_2016"]  # GitHub, Zenodo, figshare


def _references(ids) -> dict[str, dict]:
    settings, specs = get_settings(), load_manifest(str(DEFAULT_MANIFEST))
    return {d: reference(specs.get(d), resolve_files(specs.get(d), Http(settings), settings.repository_urls)[0])
            for d in ids}


def _check_bibtex(text: str, ids) -> None:
    entries = parse_string(text, "bibtex").entries
    assert list(entries) == list(ids)
    for dataset_id in ids:
        doi, publisher, year, first_author, licence = EXPECTED[dataset_id]
        entry = entries[dataset_id]
        assert entry.type == "dataset"
        assert entry.fields.get("doi") == doi and entry.fields["publisher"] == publisher
        assert entry.fields["year"] == str(year) and f"Licence: {licence}" in entry.fields["note"]
        assert " ".join(entry.persons["author"][0].last_names).strip("{}") == first_author  # an owner stays braced
        if doi is None:  # a GitHub repository: its page instead of a DOI
            assert entry.fields["url"].startswith("https://github.com/")


def _check_csl(text: str, ids) -> None:
    items = {item["id"]: item for item in json.loads(text)}
    assert list(items) == list(ids)
    for dataset_id in ids:
        doi, publisher, year, first_author, licence = EXPECTED[dataset_id]
        item = items[dataset_id]
        assert item["type"] == "dataset" and item.get("DOI") == doi and item["publisher"] == publisher
        assert item["issued"]["date-parts"][0][0] == year and item["title"] and item["license"] == licence
        first = item["author"][0]
        assert first.get("family", first.get("literal")) == first_author


def test_records_of_each_repository_become_references_that_parse(repo):
    """Zenodo creators ("Family, Given"), figshare authors ("Given Family") and a GitHub owner (one word, kept
    whole) as BibTeX a real parser reads and as CSL-JSON; the record's DOI (the version read) and year."""
    refs = _references(EXPECTED)
    _check_bibtex(bibtex(list(refs.values())), EXPECTED)
    _check_csl(csl_json(list(refs.values())), EXPECTED)
    assert len(refs["uk_crowdsourced_pv_2020"]["creators"]) == 7
    assert json.loads(csl_json([refs["ind_pv_solar_farms_2022"]]))[0]["author"] == [{"literal": "microsoft"}]
    # the manifest's licence wins (pinned, reviewed); the record's is kept beside it
    assert refs["uk_crowdsourced_pv_2020"]["record_licence"] == "cc-by-4.0"
    assert refs["chn_med_res_pv_2024"]["record_licence"] is None  # GitHub detects no licence
    assert refs["ind_pv_solar_farms_2022"]["record_licence"] == "MIT"


def _spec(**changes) -> DatasetSpec:
    raw = {"id": "toy", "title": "Toy", "doi": "10.1234/x", "license": "CC-BY-NC-4.0",
           "citation": "Someone et al. 2019, Journal 1:2", "repository": {"type": "url", "urls": ["http://x.org/t.gpkg"]}}
    return DatasetSpec.model_validate(raw | changes)


def test_special_characters_are_escaped_and_the_entry_still_parses():
    info = RecordInfo("zenodo", "1", "v1_0", "Solar {PV} & wind: 50% of $x_y #1 ~ ^ \\ 中国", "cc-by-4.0",
                      "10.5281/zenodo.1", creators=("Ó Briain, Seán", "Ben and Jerry Lab", "OpenAI"),
                      published="2024-02-29", publisher="Zenodo")
    text = bibtex([reference(_spec(), info)])
    entry = parse_string(text, "bibtex").entries["toy"]
    assert entry.fields["title"] == (r"Solar \textbraceleft{}PV\textbraceright{} \& wind: 50\% of \$x\_y \#1 "
                                     r"\textasciitilde{} \textasciicircum{} \textbackslash{} 中国")
    assert entry.fields["version"] == r"v1\_0"
    people = entry.persons["author"]
    assert len(people) == 3  # "and" inside a name does not split it
    assert " ".join(people[0].last_names) == "Ó Briain" and people[0].first_names == ["Seán"]
    assert people[2].last_names == ["{OpenAI}"]


def test_the_manifest_fills_in_what_the_record_leaves_out():
    """A plain URL record says nothing: title, licence and year come from the manifest, the DOI from its doi."""
    ref = reference(_spec())
    assert (ref["title"], ref["licence"], ref["year"], ref["doi"], ref["publisher"]) == (
        "Toy", "CC-BY-NC-4.0", 2019, "10.1234/x", "x.org")
    assert ref["citation"] == "x.org (2019). Toy [dataset]. x.org. https://doi.org/10.1234/x"
    github = reference(_spec(doi="https://github.com/o/r"))
    assert github["doi"] is None and github["url"] == "https://github.com/o/r"


@pytest.fixture(scope="module")
def run(prefect_api, lookalike_dir, tmp_path_factory):
    """One run of the flow over a GitHub, a Zenodo and a figshare dataset, with dbt (no Overture)."""
    from flows.ingest_flow import pv_doi_ingest
    from pvdoi.testing.reposerver import RepoServer

    work = tmp_path_factory.mktemp("cite")
    with RepoServer(lookalike_dir) as server, pytest.MonkeyPatch.context() as env:
        for key, value in server.env().items():
            env.setenv(key, value)
        state = pv_doi_ingest(datasets=LOADED, data_dir=str(work / "data"), cache_path=str(work / "cache"),
                              overture=False, return_state=True)
    assert state.is_completed(), state.message
    return work / "data"


def _query(data, sql: str) -> list[tuple]:
    con = connect(str(data / "eo_pv_data.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_citation_and_licence_in_the_catalog_the_geoparquet_files_and_the_dataset_summary(run):
    catalog = {r[0]: r[1:] for r in _query(run, "SELECT dataset_id, citation, license, year, publisher, creators, "
                                                "geoparquet_path, reference FROM raw_data.datasets")}
    summary = {r[0]: r[1:] for r in _query(run, "SELECT dataset_id, citation, license, year, publisher "
                                                "FROM curated.dataset_summary")}
    assert set(catalog) == set(summary) == set(LOADED)
    for dataset_id in LOADED:
        doi, publisher, year, first_author, licence = EXPECTED[dataset_id]
        citation, license_, year_, publisher_, creators, path, ref = catalog[dataset_id]
        assert (license_, year_, publisher_) == (licence, year, publisher)
        assert citation.startswith(first_author) and (doi or "https://github.com/") in citation
        assert json.loads(creators)[0].startswith((first_author, "Kyle"))
        assert summary[dataset_id] == (citation, licence, year, publisher)
        in_file = file_reference(path)
        assert in_file == json.loads(ref)
        assert (in_file["doi"], in_file["citation"], in_file["licence"]) == (doi, citation, licence)


def test_pvdoi_cite_writes_bibtex_and_csl_json_and_refuses_an_unknown_dataset(run, tmp_path):
    database = str(run / "eo_pv_data.duckdb")
    result = runner.invoke(app, ["cite", "--database", database])
    assert result.exit_code == 0, result.output
    _check_bibtex(result.stdout, sorted(LOADED))  # default: every dataset loaded, by id

    out = tmp_path / "refs" / "refs.json"
    result = runner.invoke(app, ["cite", LOADED[1], LOADED[0], "--format", "csl-json", "-o", str(out),
                                 "--database", database])
    assert result.exit_code == 0, result.output
    _check_csl(out.read_text(encoding="utf-8"), LOADED[1::-1])  # in the order asked

    result = runner.invoke(app, ["cite", LOADED[0], "no_such_dataset", "--database", database])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no_such_dataset" in result.stderr and LOADED[0] in result.stderr

    result = runner.invoke(app, ["cite", "--database", str(tmp_path / "missing.duckdb")])
    assert result.exit_code == 2 and "pvdoi run" in result.stderr


def test_a_catalog_made_before_references_gains_their_columns_and_cites_from_its_row(tmp_path):
    """A warehouse whose raw_data.datasets predates the reference columns gets them on the next connection (the
    load then fills them); `pvdoi cite` makes a reference from an old row's DOI, title and licence meanwhile."""
    from pvdoi.warehouse.connection import DDL, REFERENCE_COLUMNS, warehouse
    from pvdoi.warehouse.datasets import loaded_references

    path = str(tmp_path / "old.duckdb")
    con = connect(path)
    con.execute("\n".join(line for line in DDL.splitlines() if not line.startswith("ALTER TABLE raw_data.datasets")))
    con.execute("INSERT INTO raw_data.datasets VALUES ('old', 'doi:10.5281/zenodo.1', 'Old & {odd} title', "
                "'CC0-1.0', 'zenodo', '1', '2', '[]', 1, 1, 1, '{}', '/x.parquet', 'abc', now()::TIMESTAMP)")
    con.close()
    with warehouse(path, spatial=False) as con:
        columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                             "WHERE table_name = 'datasets'").fetchall()}
    assert set(REFERENCE_COLUMNS) <= columns
    [ref] = loaded_references(path)
    assert (ref["doi"], ref["licence"], ref["version"], ref["year"]) == ("10.5281/zenodo.1", "CC0-1.0", "2", None)
    entry = parse_string(bibtex([ref]), "bibtex").entries["old"]
    assert entry.fields["title"] == r"Old \& \textbraceleft{}odd\textbraceright{} title" and "author" not in entry.persons

    writer = connect(path)  # a writer holds the file: a clear error, not DuckDB's traceback
    try:
        with pytest.raises(WarehouseError, match="cannot open the warehouse"):
            loaded_references(path)
    finally:
        writer.close()
