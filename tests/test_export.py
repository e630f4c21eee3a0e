"""Results people can open: `pvdoi export` in each format read back, and `pvdoi docs` producing its site."""

from __future__ import annotations

import json

import geopandas as gpd
import pyarrow.parquet as pq
import pyogrio
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest_flow import pv_doi_ingest
from pvdoi.duckdb_ext import connect

pytestmark = pytest.mark.usefixtures("prefect_api")
INDIA, CHINA = "ind_pv_solar_farms_2022", "chn_med_res_pv_2024"


@pytest.fixture()
def built(repo, workdir):
    state = pv_doi_ingest(datasets=[INDIA, CHINA], data_dir=str(workdir / "data"), cache_path=str(workdir / "cache"),
                          overture=False, return_state=True)
    assert state.is_completed(), state.message
    return workdir / "data"


def _export(data_dir, *args: str):
    result = CliRunner().invoke(app, ["export", "--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    return result


def test_export_in_every_format_reads_back(built, tmp_path):
    con = connect(str(built / "eo_pv_data.duckdb"), read_only=True)
    expected = dict(con.execute("SELECT dataset_id, count(*) FROM curated.installations GROUP BY 1").fetchall())
    con.close()
    parquet = tmp_path / "out" / "installations.parquet"
    _export(built, "-o", str(parquet))
    frame = gpd.read_parquet(parquet)
    assert len(frame) == sum(expected.values()) and frame.crs.to_epsg() == 4326
    assert frame["license"].notna().all() and frame["doi"].notna().all()
    geo = json.loads(pq.read_schema(parquet).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and "covering" in geo["columns"]["geometry"]
    con = connect()
    order = [h for (h,) in con.execute(
        f"SELECT ST_Hilbert(geometry, ST_Extent(ST_MakeEnvelope(-180, -90, 180, 90))) FROM read_parquet('{parquet}')"
    ).fetchall()]
    con.close()
    assert order == sorted(order)  # rows along the Hilbert curve: row groups cover small areas

    for fmt, suffix in (("gpkg", "gpkg"), ("fgb", "fgb"), ("csv", "csv")):
        path = tmp_path / f"installations.{suffix}"
        _export(built, "--format", fmt, "-o", str(path), "--dataset", INDIA)
        info = pyogrio.read_info(path)
        assert info["features"] == expected[INDIA], fmt
        if fmt != "csv":
            assert pyogrio.read_dataframe(path).crs.to_epsg() == 4326, fmt


def test_export_errors_are_one_line(built, tmp_path):
    result = CliRunner().invoke(app, ["export", "--data-dir", str(built), "--format", "shp", "-o",
                                      str(tmp_path / "x.shp")])
    assert result.exit_code == 2 and "unknown format 'shp'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["export", "--data-dir", str(built), "--dataset", "nope", "-o",
                                      str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and "no installations match" in result.output
    assert not (tmp_path / "x.parquet").exists()


def test_docs_generates_the_site(built):
    result = CliRunner().invoke(app, ["docs", "--data-dir", str(built)])
    assert result.exit_code == 0, result.output
    index = built / "dbt_docs" / "index.html"
    assert index.exists() and (built / "dbt_docs" / "catalog.json").exists()
    catalog = json.loads((built / "dbt_docs" / "catalog.json").read_text())
    assert any(key.endswith(".installations") for key in catalog["nodes"])


def test_map_opens_offline_in_a_browser_and_shows_every_dataset(built, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.test_e2e_deploy import CHROMIUM, CHROMIUM_ARGS

    result = CliRunner().invoke(app, ["map", "--data-dir", str(built), "-o", str(tmp_path / "map.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "map.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing to fetch: it opens offline
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "map.html").as_uri())
        page.wait_for_function("window.pvdoiMapReady === true", timeout=30_000)
        legend = page.locator(".dataset").all_inner_texts()
        drawn = page.evaluate("window.pvdoiDrawn")
        page.locator("#legend input").first.uncheck()  # a dataset switched off is no longer drawn
        fewer = page.evaluate("window.pvdoiDrawn")
        browser.close()
    assert not errors and sorted(legend) == sorted([INDIA, CHINA])
    assert drawn > 0 and fewer < drawn
