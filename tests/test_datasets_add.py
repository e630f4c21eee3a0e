"""``pvdoi datasets add``: a dataset the product has never seen, found by its DOI, proposed as a manifest entry,
appended with ``--write``, and run through the whole flow into the curated models; and its errors.

The never-seen dataset is served by the local repository server and listed by no manifest: solar parks in England,
a GeoPackage in the British National Grid (EPSG:27700) with its own column names, in a Zenodo record whose DOI
(DataCite's test prefix 10.5072) only the DOI resolver's redirect leads to.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyogrio
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pvdoi.duckdb_ext import connect
from pvdoi.landing import repository_of_url
from tests.conftest import ROOT, write_manifest

NEW_DOI = "10.5072/pvdoi.solar-parks-england"
PARKS = "gb_solar_parks_2031"  # the server's folder of the new dataset (no manifest id)
PARKS_FILE = "solar_parks_england.gpkg"
INDIA_NAME = "solar_farms_india_2021_merged_simplified.geojson"
SMALL = "usa_cali_usgs_pv_2016"  # the one dataset of the manifest copy besides the new one (120 features)
PRODUCT = ["pvdoi", "flows", "hamilton_nodes", "dbt_project", "deployments", "doi_manifest.json", "prefect.yaml"]
runner = CliRunner()


@pytest.fixture()
def resolver(repo, monkeypatch):
    """The local repository server, standing in for doi.org too."""
    monkeypatch.setenv("PVDOI_DOI_RESOLVER_URL", repo.doi_resolver_url)
    return repo


def _copy(workdir: Path) -> str:
    """A copy of the default manifest reduced to one small dataset."""
    return write_manifest(workdir / "copy.json",
                          lambda raw: raw.update(datasets=[d for d in raw["datasets"] if d["id"] == SMALL]))


def _add(*args: str):
    return runner.invoke(app, ["datasets", "add", *args])


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *PRODUCT], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def _query(workdir: Path, sql: str) -> list[tuple]:
    con = connect(str(workdir / "data" / "eo_pv_data.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_never_seen_dataset_added_by_its_doi_reaches_the_curated_models(resolver, workdir, monkeypatch):
    from tests.overture_release import write_overture_release
    from tests.test_cli import _pvdoi_run
    from tests.test_dbt_project import division_areas

    before = _git_status()
    copy = _copy(workdir)
    added = _add(NEW_DOI, "--write", "--manifest", copy)
    assert added.exit_code == 0, added.output
    [entry] = [d for d in json.loads(Path(copy).read_text())["datasets"] if d["doi"] == NEW_DOI]
    new = entry["id"]
    assert entry["repository"] == {"type": "zenodo", "record_id": 9100001} and resolver.count("/doi/") == 1

    # countries from Overture's division areas: a local copy of the release (England in GB), as test_flow does
    monkeypatch.setenv("PVDOI_OVERTURE_BASE_URL", write_overture_release(workdir / "overture", division_areas()))
    log = _pvdoi_run(workdir, "--all", "--manifest", copy, timeout=1200)
    assert f"Task run 'ingest-{new}'" in log and "dbt build built" in log, log[-3000:]

    [(rows, areas, published, capacity, dated, gb, england, operators, mountings, panels)] = _query(workdir, f"""
        select count(*), count(area_m2) filter (where area_m2 > 1000),
               count(*) filter (where source_area_m2 = (source_attributes ->> 'panel_area_m2')::double),
               count(*) filter (where abs(capacity_mw * 1000 - (source_attributes ->> 'kwp')::double) < 1e-6),
               count(install_date), count(*) filter (where country_code = 'GB'),
               count(*) filter (where region_code = 'GB-ENG'),
               count(*) filter (where operator = (source_attributes ->> 'operator')),
               count(*) filter (where mounting in ('fixed', 'tracker')),
               count(*) filter (where n_panels = (source_attributes ->> 'n_panels')::bigint)
        from curated.installations where dataset_id = '{new}'""")
    assert rows == areas == published == capacity == gb == england == mountings == panels == 300
    assert 250 < dated < 300 and 200 < operators < 300  # some parks have no date or operator
    [(installations, reconciled)] = _query(workdir, f"select n_installations, is_count_reconciled "
                                                    f"from curated.dataset_summary where dataset_id = '{new}'")
    assert (installations, reconciled) == (300, True)
    [(small,)] = _query(workdir, f"select count(*) from curated.installations where dataset_id = '{SMALL}'")
    assert small > 0 and _query(workdir, f"select count(operator) from curated.installations "
                                         f"where dataset_id = '{SMALL}'") == [(0,)]
    assert _git_status() == before  # no file of the product changed: the manifest copy was the one edit


def test_the_proposal_guesses_crs_count_and_columns(resolver, workdir):
    copy = _copy(workdir)
    text = Path(copy).read_text()
    result = _add(NEW_DOI, "--manifest", copy, "--json")
    assert result.exit_code == 0, result.output
    proposal = json.loads(result.stdout)
    entry, notes = proposal["entry"], proposal["notes"]
    info = pyogrio.read_info(resolver.files_dir / PARKS / PARKS_FILE)
    assert entry["id"].startswith("ground_mounted_solar_parks_in_england")
    assert (entry["title"], entry["doi"], entry["license"]) == ("Ground-mounted solar parks in England", NEW_DOI,
                                                                "CC-BY-4.0")
    assert (entry["expected_crs"], entry["expected_count"]) == ("EPSG:27700", info["features"]) == ("EPSG:27700", 300)
    assert entry["files"] == {"include": [r"^solar_parks_england\.gpkg$"]}  # the README is no vector file
    assert entry["columns"] == {"unified_id": {"from": ["site_ref"]}, "source_area_m2": {"from": ["panel_area_m2"]},
                                "capacity_mw": {"from": ["kwp"], "scale": 0.001},
                                "install_date": {"from": ["commissioned"]}}
    assert [(a["name"], a["type"], a["json_key"]) for a in entry["attributes"]] == [
        ("operator", "text", "operator"), ("mounting", "text", "mounting"), ("n_panels", "bigint", "n_panels")]
    assert entry["geometry_types"] == ["Polygon", "MultiPolygon"]
    assert any("kwp" in n and "kW" in n for n in notes) and any(n.startswith("unified_id ← ") for n in notes)
    checksums = {f["name"]: f["checksum"].split(":")[0] for f in proposal["files"]}
    assert checksums == {PARKS_FILE: "md5", "README.txt": "md5"}
    assert Path(copy).read_text() == text  # without --write nothing is written

    human = _add(NEW_DOI, "--manifest", copy, "--id", "gb_parks")
    assert human.exit_code == 0, human.output
    assert "# guess: capacity_mw ← 'kwp' (its name says kW); scale 0.001" in human.stdout
    assert '"id": "gb_parks"' in human.stdout and "not written" in human.stdout


def test_a_file_of_several_layers_gives_its_largest(resolver, workdir):
    import geopandas as gpd
    import shapely

    parks = gpd.read_file(resolver.files_dir / PARKS / PARKS_FILE)
    two = workdir / "two_layers.gpkg"
    parks.head(40).to_file(two, layer="parks_2030", driver="GPKG")
    gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[shapely.Point(400000, 200000)] * 2, crs=parks.crs).to_file(
        two, layer="substations", driver="GPKG")
    resolver.remove_file(PARKS, PARKS_FILE)
    resolver.add_file(PARKS, "two_layers.gpkg", two.read_bytes())
    result = _add(NEW_DOI, "--manifest", _copy(workdir), "--json")
    assert result.exit_code == 0, result.output
    proposal = json.loads(result.stdout)
    entry = proposal["entry"]
    assert entry["read"] == {"layer": "parks_2030"} and entry["expected_count"] == 40
    assert entry["files"] == {"include": [r"^two_layers\.gpkg$"]}
    assert any("left out layers 'substations'" in n for n in proposal["notes"])


def test_km2_is_measured_and_well_known_dois_need_no_resolver(resolver, workdir):
    result = _add("10.6084/m9.figshare.11310269.v6", "--manifest", _copy(workdir), "--id", "farms", "--json")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["entry"]
    assert entry["columns"]["source_area_m2"] == {"from": ["panel.area"], "scale": 1e6}  # km², from the values
    assert entry["read"] == {"include": [r"^solar_WGS84\.gpkg$"]} and entry["expected_crs"] == "EPSG:4326"
    assert resolver.count("/doi/") == 0  # 10.6084/m9.figshare.N.vV names its article itself


def test_write_keeps_the_manifest_lines_and_a_plain_url_is_a_source(resolver, workdir):
    from pvdoi import DEFAULT_MANIFEST

    copy = workdir / "manifest.json"
    copy.write_bytes(DEFAULT_MANIFEST.read_bytes())
    url = f"{resolver.base_url}/github-raw/microsoft/solar-farms-mapping/main/data/{INDIA_NAME}"
    result = _add(url, "--manifest", str(copy), "--id", "india_again", "--write")
    assert result.exit_code == 0, result.output
    old, new = DEFAULT_MANIFEST.read_text().splitlines(), copy.read_text().splitlines()
    assert new[:len(old) - 3] == old[:-3] and new[len(old) - 3] == "    },"  # every line kept, one comma added
    raw = json.loads(copy.read_text())
    assert raw["datasets"][:-1] == json.loads(DEFAULT_MANIFEST.read_text())["datasets"]
    entry = raw["datasets"][-1]
    assert entry["repository"] == {"type": "url", "urls": [url]} and entry["doi"] == url
    assert (entry["expected_count"], entry["expected_crs"], entry["license"]) == (1363, "EPSG:4326", "unspecified")
    assert entry["columns"]["unified_id"] == {"from": ["fid"]} and "# guess: repository: a plain URL" in result.stdout


@pytest.mark.parametrize("url, repository", [
    ("https://zenodo.org/records/4059881", {"type": "zenodo", "record_id": 4059881}),
    ("https://zenodo.org/record/5005868", {"type": "zenodo", "record_id": 5005868}),
    ("https://figshare.com/articles/dataset/Distributed_Solar/3385780/4",
     {"type": "figshare", "article_id": 3385780, "version": 4}),
    ("https://figshare.com/articles/dataset/Distributed_Solar/3385780", {"type": "figshare", "article_id": 3385780}),
    ("https://github.com/qingfengxitu/ChinaPV", {"type": "github", "owner": "qingfengxitu", "repo": "ChinaPV"}),
    ("https://github.com/microsoft/solar-farms-mapping/tree/main/data",
     {"type": "github", "owner": "microsoft", "repo": "solar-farms-mapping", "ref": "main", "path": "data"}),
    ("https://example.org/pv/farms.geojson", {"type": "url", "urls": ["https://example.org/pv/farms.geojson"]}),
    ("https://journals.example.org/article/10.1038/s41597", None),
])
def test_landing_pages_map_to_repositories(url, repository):
    assert repository_of_url(url) == repository


def _one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and all(f in result.stderr for f in fragments), result.stderr


def test_errors_are_one_line_on_stderr(resolver, workdir):
    copy = _copy(workdir)
    text = Path(copy).read_text()
    _one_error_line(_add("10.5072/pvdoi.no-such-record", "--manifest", copy),
                    "DOI 10.5072/pvdoi.no-such-record resolves to nothing", "404")
    _one_error_line(_add("10.5072/pvdoi.journal-article", "--manifest", copy), "no Zenodo record, figshare article")
    _one_error_line(_add(NEW_DOI, "--manifest", copy, "--id", SMALL), f"dataset id '{SMALL}' exists already")
    _one_error_line(_add(NEW_DOI, "--manifest", copy, "--id", "Parks-GB"), "'Parks-GB' is not a safe identifier")
    assert resolver.count("/doi/") == 2  # an id that exists or is unsafe fails before any request
    _one_error_line(_add(NEW_DOI, "--manifest", copy, "--max-mb", "0.01"), "publishes no vector file",
                    f"skipped {PARKS_FILE}", "over --max-mb 0.01")
    assert Path(copy).read_text() == text

    assert _add(NEW_DOI, "--manifest", copy, "--write").exit_code == 0
    _one_error_line(_add(NEW_DOI, "--manifest", copy, "--write"), "exists already")  # the title's id, added once
    assert len(json.loads(Path(copy).read_text())["datasets"]) == 2

    resolver.remove_file(PARKS, PARKS_FILE)
    resolver.add_file(PARKS, "parks.csv", b"site_ref,kwp\nENG-SP-00001,12.5\n")
    _one_error_line(_add(NEW_DOI, "--manifest", copy, "--id", "no_vectors"),
                    "publishes no vector file", "README.txt", "parks.csv")
